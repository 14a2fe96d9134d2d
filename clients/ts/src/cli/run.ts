import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import type { Writable } from "node:stream";
import { once } from "node:events";
import {
  limits,
  Status,
  statusToJSON,
  Stream,
  type CollectedFile,
  type CorralClient,
  type ExecuteRequest,
  type ExecuteResponse,
  type InputFile,
  type Interaction,
  type JobFinished,
  type ProfileInfo,
} from "../index.js";
import { readDirFiles, readFileWithMode } from "./read-dir-files.js";
import { limitsFromFlags, parsePriority } from "./parse-units.js";
import { UsageError } from "./usage-error.js";
import { exitCodeOf } from "./exit-codes.js";
import { withClient } from "./with-client.js";

const num = (v: bigint | undefined): number | null => (v === undefined ? null : Number(v));

/** The `--result` JSON: one object, null where the server did not measure a figure. */
export function resultJson(f: JobFinished): Record<string, unknown> {
  const o = f.outcome;
  const u = f.usage;
  return {
    status: o ? statusToJSON(o.status) : null,
    exitCode:
      o && (o.status === Status.STATUS_EXITED_ZERO || o.status === Status.STATUS_EXITED_NONZERO) ? o.exitCode : null,
    signal: o && o.signal !== 0 ? o.signal : null,
    cpuTimeMs: num(u?.cpuTimeMs),
    cpuUserMs: num(u?.cpuUserMs),
    cpuSystemMs: num(u?.cpuSystemMs),
    wallTimeMs: num(u?.wallTimeMs),
    peakMemoryBytes: num(u?.peakMemoryBytes),
    peakProcesses: u?.peakProcesses ?? null,
    stdoutBytes: num(u?.stdoutBytes),
    stderrBytes: num(u?.stderrBytes),
    truncated: u ? u.outputTruncated : null,
    workspaceBytes: num(u?.workspaceBytes),
    workspaceInodes: num(u?.workspaceInodes),
  };
}

export async function buildRequest(
  args: string[],
): Promise<{ request: ExecuteRequest; server: string; result?: string; interactive: boolean }> {
  const { values: v, positionals: argv } = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      server: { type: "string" },
      profile: { type: "string", default: "default" },
      dir: { type: "string" },
      file: { type: "string", multiple: true, default: [] },
      stdin: { type: "string" },
      env: { type: "string", multiple: true, default: [] },
      "wall-time": { type: "string" },
      "cpu-time": { type: "string" },
      memory: { type: "string" },
      pids: { type: "string" },
      "output-limit": { type: "string" },
      result: { type: "string" },
      priority: { type: "string" },
      collect: { type: "string", multiple: true, default: [] },
      interactive: { type: "boolean", short: "i", default: false },
    },
  });
  if (argv.length === 0 && v.file.length !== 1)
    throw new UsageError(
      "run: give the program after `--` (corral run -- sh -c 'echo hi'), or one --file to build and run with the profile's commands",
    );
  const files: InputFile[] = v.dir ? await readDirFiles(v.dir) : [];
  for (const spec of v.file) {
    const cut = spec.indexOf(":");
    const src = cut < 0 ? spec : spec.slice(0, cut);
    const dest = cut < 0 ? src.split("/").pop()! : spec.slice(cut + 1);
    files.push({ path: dest, ...(await readFileWithMode(src)) });
  }
  const env: Record<string, string> = {};
  for (const kv of v.env) {
    const eq = kv.indexOf("=");
    if (eq <= 0) throw new UsageError(`--env ${kv}: expected NAME=VALUE`);
    env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  const stdin = v.stdin === undefined ? Buffer.alloc(0) : await readFile(v.stdin === "-" ? "/dev/stdin" : v.stdin);
  const stepLimits = limitsFromFlags(v);
  return {
    server: v.server ?? process.env.CORRAL_SERVER ?? "127.0.0.1:50051",
    result: v.result,
    interactive: v.interactive,
    request: {
      profile: v.profile,
      priority: v.priority === undefined ? 0 : parsePriority(v.priority),
      files,
      steps: [{ argv, env, stdin, limits: stepLimits, collect: v.collect }],
      // No argv: filled in by `withProfileCommands` from the profile's build and run commands.
    },
  };
}

/** Writes collected files under `dir` (their paths were checked by the server), and says which were not. */
async function saveCollected(dir: string, files: readonly CollectedFile[]): Promise<void> {
  for (const f of files) {
    if (!f.collected) {
      process.stderr.write(`corral: not collected: ${f.path}: ${f.reason}\n`);
      continue;
    }
    const target = path.join(dir, f.path);
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, f.content, { mode: f.mode || 0o644 });
  }
}

/** The server's profile of that name, or a UsageError naming `--profile`. */
export async function findProfile(client: CorralClient, name: string): Promise<ProfileInfo> {
  const profile = (await client.listProfiles()).profiles.find((p) => p.name === name);
  if (!profile) throw new UsageError(`--profile ${name}: this server has no such profile (see corral profiles)`);
  return profile;
}

/**
 * `corral run --profile NAME --file SRC` with no argv: the source goes in under the profile's
 * file name, a build step (compiled languages) comes first, and the run step gets the stdin,
 * limits and collect paths given.
 */
export async function withProfileCommands(client: CorralClient, request: ExecuteRequest): Promise<ExecuteRequest> {
  const step = request.steps[0]!;
  if (step.argv.length > 0) return request;
  const profile = await findProfile(client, request.profile);
  if (profile.run.length === 0)
    throw new UsageError(`--profile ${request.profile}: it has no build and run commands; give argv after --`);
  const files = request.files.map((f, i) => (i === request.files.length - 1 ? { ...f, path: profile.sourceFile } : f));
  const build = profile.build.length
    ? [{ ...step, argv: profile.build, stdin: Buffer.alloc(0), limits: limits(), collect: [] }]
    : [];
  return { ...request, files, steps: [...build, { ...step, argv: profile.run }] };
}

/** `-i`: this process's stdin goes to the program as it comes; its end closes the program's. */
function passStdin(run: Interaction): Interaction {
  void (async () => {
    for await (const chunk of process.stdin as AsyncIterable<Buffer>) await run.write(chunk);
    run.closeStdin();
  })().catch(() => undefined); // the call's own end or error is reported by its events
  return run;
}

async function writeAll(out: Writable, data: Uint8Array): Promise<void> {
  if (!out.write(data)) await once(out, "drain");
}

/** `corral run`: runs one job, passes its output through and exits as the program did. */
export async function run(args: string[]): Promise<number> {
  const { request, server, result, interactive } = await buildRequest(args);
  try {
    return await withClient(server, async (client, signal) => {
      const job = await withProfileCommands(client, request);
      return followJob(
        interactive ? passStdin(client.interact(job, { signal })) : client.execute(job, { signal }),
        result,
      );
    });
  } finally {
    // The job is over: stop reading a terminal that would otherwise keep the process alive.
    if (interactive) process.stdin.destroy();
  }
}

/**
 * Passes a job's output through as it comes, saves collected files next to `result` (or in the
 * working directory), writes the `--result` JSON, and returns the exit code the job earns.
 */
export async function followJob(events: AsyncIterable<ExecuteResponse>, result?: string): Promise<number> {
  let finished: JobFinished | undefined;
  for await (const ev of events) {
    const e = ev.event;
    if (e?.$case === "output")
      await writeAll(e.value.stream === Stream.STREAM_STDERR ? process.stderr : process.stdout, e.value.data);
    else if (e?.$case === "stepFinished")
      await saveCollected(result ? path.dirname(result) : ".", e.value.result?.files ?? []);
    else if (e?.$case === "finished") finished = e.value;
  }
  if (!finished) throw new Error("the stream ended without a finished event");
  if (result) await writeFile(result, JSON.stringify(resultJson(finished), null, 2) + "\n");
  const o = finished.outcome;
  if (
    o &&
    o.status !== Status.STATUS_EXITED_ZERO &&
    o.status !== Status.STATUS_EXITED_NONZERO &&
    o.status !== Status.STATUS_SIGNALED
  )
    process.stderr.write(`corral: ${statusToJSON(o.status)}: ${o.detail}\n`);
  return exitCodeOf(finished);
}
