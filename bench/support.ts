import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir, totalmem } from "node:os";
import path from "node:path";
import pino from "pino";
import { format, resolveConfig } from "prettier";
import { createClient, Stream, type CorralClient, type ExecuteRequest, type JobFinished } from "@corral/client";
import { loadConfig, startService, type Service } from "@corral/server";

/**
 * A real service on loopback for a benchmark, with its own scratch folder and instance; `log`
 * takes its info-level log (JSON lines), else it logs warnings only.
 */
export async function startBenchService(
  env: Record<string, string> = {},
  log?: NodeJS.WritableStream,
): Promise<{ service: Service; client: CorralClient; stop(): Promise<void> }> {
  const scratch = await mkdtemp(path.join(tmpdir(), "corral-bench-"));
  const config = loadConfig({
    ...process.env,
    CORRAL_LISTEN: "127.0.0.1:0",
    CORRAL_SCRATCH_DIR: scratch,
    CORRAL_INSTANCE: `bench-${process.pid}-${path.basename(scratch)}`,
    ...env,
  });
  const service = await startService(config, log ? pino({ level: "info" }, log) : pino({ level: "warn" }));
  const client = createClient(`127.0.0.1:${service.port}`);
  return {
    service,
    client,
    async stop() {
      client.close();
      await service.shutdown(0);
      await rm(scratch, { recursive: true, force: true });
    },
  };
}

/**
 * `corral serve` as a process of its own, as operators run it (a benchmark's client then does
 * not share the service's event loop), with its own scratch folder and instance. Waits for its
 * "listening" log line and reads the port from it.
 */
export async function startServeProcess(
  env: Record<string, string> = {},
): Promise<{ process: ChildProcess; client: CorralClient; stop(): Promise<void> }> {
  const scratch = await mkdtemp(path.join(tmpdir(), "corral-bench-"));
  const serve = spawn(process.execPath, [path.resolve("clients/ts/dist/cli/main.js"), "serve"], {
    stdio: ["ignore", "ignore", "pipe"],
    env: {
      ...process.env,
      CORRAL_LISTEN: "127.0.0.1:0",
      CORRAL_SCRATCH_DIR: scratch,
      CORRAL_INSTANCE: path.basename(scratch),
      CORRAL_LOG_LEVEL: "info",
      ...env,
    },
  });
  let log = "";
  const port = await new Promise<string>((resolve, reject) => {
    serve.stderr.on("data", (d: Buffer) => {
      log += d.toString();
      const m = /"event":"listening","address":"127\.0\.0\.1:(\d+)"/.exec(log);
      if (m) resolve(m[1]!);
    });
    serve.once("close", () => reject(new Error(`corral serve ended before listening; its log:\n${log}`)));
  });
  // From here on the job log is not kept: a benchmark runs thousands of jobs.
  serve.stderr.removeAllListeners("data");
  serve.stderr.resume();
  const client = createClient(`127.0.0.1:${port}`);
  return {
    process: serve,
    client,
    async stop() {
      client.close();
      const closed = new Promise((r) => serve.once("close", r));
      serve.kill("SIGTERM");
      await closed;
      await rm(scratch, { recursive: true, force: true });
    },
  };
}

/** Runs a job to its end; returns its final event and its stdout. */
export async function runJob(
  client: CorralClient,
  request: ExecuteRequest,
): Promise<{ finished: JobFinished; stdout: string }> {
  let stdout = "";
  let finished: JobFinished | undefined;
  for await (const ev of client.execute(request)) {
    if (ev.event?.$case === "output" && ev.event.value.stream === Stream.STREAM_STDOUT)
      stdout += Buffer.from(ev.event.value.data).toString();
    if (ev.event?.$case === "finished") finished = ev.event.value;
  }
  if (!finished) throw new Error("no finished event");
  return { finished, stdout };
}

/** The p-th percentile (0 to 100) of a list of numbers. */
export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/** min, median and max of a list of numbers. */
export function spread(xs: number[]): { min: number; median: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return { min: s[0]!, median: s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2, max: s.at(-1)! };
}

/** One paragraph describing this machine, for the results file. */
export async function describeMachine(): Promise<string> {
  const kernel = execFileSync("uname", ["-r"], { encoding: "utf8" }).trim();
  const os = (await readFile("/etc/os-release", "utf8")).match(/^PRETTY_NAME="(.*)"$/m)?.[1] ?? "unknown";
  const cpu = cpus()[0]?.model ?? "unknown";
  return `${os}, kernel ${kernel}, ${cpus().length} x ${cpu}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
}

/** Writes `bench/results/<name>.md` and prints it. */
export async function writeResults(name: string, body: string): Promise<void> {
  const dir = path.resolve("bench", "results");
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${name}.md`);
  // Formatted as the repository's own Markdown is, so that `prettier --check` passes on it.
  const raw = `# ${name}\n\n${new Date().toISOString()} on ${await describeMachine()}\n\n${body}\n`;
  const text = await format(raw, { ...(await resolveConfig(file)), parser: "markdown" });
  await writeFile(file, text);
  process.stdout.write(text);
}
