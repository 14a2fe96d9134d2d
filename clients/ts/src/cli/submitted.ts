import { parseArgs } from "node:util";
import type { ExecuteResponse, WatchResponse } from "../index.js";
import { parseCount } from "./parse-units.js";
import { buildRequest, followJob, withProfileCommands } from "./run.js";
import { withClient } from "./with-client.js";
import { UsageError } from "./usage-error.js";

/** `corral submit [run options] -- ARGV`: queues the job and prints its id. */
export async function submit(args: string[]): Promise<number> {
  const { request, server, interactive } = await buildRequest(args);
  if (interactive) throw new UsageError("submit: -i needs a terminal attached to the job; use corral run -i");
  return withClient(server, async (client, signal) => {
    const id = await client.submit(await withProfileCommands(client, request), { signal });
    process.stdout.write(`${id}\n`);
    return 0;
  });
}

/** The job's events out of a watch; dropped output is reported on stderr where it was. */
async function* eventsOf(items: AsyncIterable<WatchResponse>): AsyncIterable<ExecuteResponse> {
  for await (const r of items) {
    if (r.item?.$case === "event") yield r.item.value;
    else if (r.item?.$case === "dropped")
      process.stderr.write(
        `corral: ${r.item.value.bytes} bytes of output were dropped here (events ${r.item.value.fromOffset} to ${r.item.value.toOffset - 1n}): the server keeps a bounded amount of each job's output\n`,
      );
  }
}

/** `corral watch ID [--from N]`: follows a submitted job as `run` would, exit code included. */
export async function watch(args: string[]): Promise<number> {
  const { values: v, positionals } = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: { server: { type: "string" }, from: { type: "string" }, result: { type: "string" } },
  });
  if (positionals.length !== 1) throw new UsageError("watch: give the job's id (from corral submit)");
  const fromOffset = v.from === undefined ? 0 : parseCount(v.from, "--from");
  return withClient(v.server, (client, signal) =>
    followJob(eventsOf(client.watch(positionals[0]!, { fromOffset, signal })), v.result),
  );
}

/** `corral cancel ID`: stops a submitted job. */
export async function cancel(args: string[]): Promise<number> {
  const { values: v, positionals } = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: { server: { type: "string" } },
  });
  if (positionals.length !== 1) throw new UsageError("cancel: give the job's id (from corral submit)");
  return withClient(v.server, async (client, signal) => {
    await client.cancel(positionals[0]!, { signal });
    return 0;
  });
}
