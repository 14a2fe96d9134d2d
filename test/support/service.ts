import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { onTestFinished } from "vitest";
import {
  createClient,
  limits,
  Stream,
  type ClientOptions,
  type CorralClient,
  type ExecuteRequest,
  type ExecuteResponse,
  type Step,
} from "@corral/client";
import { loadConfig, startService, type Service } from "@corral/server";

/** A real Corral service on 127.0.0.1:0 with its own scratch folder, and a client for it. */
export interface TestService {
  readonly service: Service;
  readonly client: CorralClient;
  readonly address: string;
  readonly scratchDir: string;
  /** Where job cgroups go, as the service's log says it ("none" without cgroups). */
  readonly cgroups: string;
  /** Names of this service's job cgroups now: between jobs, only the pool's spare ones. */
  jobCgroups(): Promise<string[]>;
  /** What is wrong with them between jobs: a cgroup with tasks, or more than the spares. */
  leftoverCgroups(): Promise<string[]>;
  /** What jobs left in the scratch folder, once their clean-up has had up to 5 s. */
  leftovers(): Promise<string[]>;
  stop(): Promise<void>;
}

/** Starts a service; `env` overrides config variables (CORRAL_*). */
export async function startTestService(
  env: Record<string, string> = {},
  opts: { log?: NodeJS.WritableStream; client?: ClientOptions } = {},
): Promise<TestService> {
  // The caller's folder if it names one: leftovers() must look where the service writes.
  const scratchDir = env.CORRAL_SCRATCH_DIR ?? (await mkdtemp(path.join(tmpdir(), "corral-test-")));
  // A fresh instance name: the service sweeps leftovers of its own instance at start, and
  // test files run in parallel.
  const instance = `test-${path.basename(scratchDir)}`;
  const config = loadConfig({
    ...process.env,
    CORRAL_LISTEN: "127.0.0.1:0",
    CORRAL_SCRATCH_DIR: scratchDir,
    CORRAL_INSTANCE: instance,
    ...env,
  });
  const logger = opts.log
    ? pino({ level: "info" }, opts.log)
    : pino({ level: process.env.CORRAL_TEST_LOG ?? "silent" });
  const service = await startService(config, logger);
  const address = `127.0.0.1:${service.port}`;
  let stopped = false;
  const shutdown = service.shutdown.bind(service);
  // A test may shut the service down itself; stop() then only cleans up.
  const watched = {
    ...service,
    shutdown: async (graceMs: number) => {
      stopped = true;
      await shutdown(graceMs);
    },
  };
  // The memory hierarchy (v1) or the v2 folder: every job cgroup has a folder there.
  const cgroupDir =
    service.cgroups.match(/^v1 at (.*)$/)?.[1]?.replace("{memory,pids,cpuacct}", "memory") ??
    service.cgroups.replace(/^v2 at /, "");
  const spares = config.concurrency + 1;
  // Sandboxes built ahead (CORRAL_WARM_*) hold a cgroup with nsjail in it and a workspace
  // folder each until a job takes them: not a job's leftovers, but never more than the pool.
  const warmMost = config.warm.sandboxes * (config.warm.profiles ?? ["default"]).length;
  const isWarm = (name: string): boolean => /^(job-)?warm-/.test(name);
  const jobCgroups = async (): Promise<string[]> =>
    (await readdir(cgroupDir, { withFileTypes: true }).catch(() => []))
      .filter((e) => e.isDirectory() && /^(job|warm)-/.test(e.name))
      .map((e) => e.name);
  // No retries: the tests see exactly what the server answered.
  const client = createClient(address, { retry: { attempts: 1 }, ...opts.client });
  const test: TestService = {
    service: watched,
    client,
    address,
    scratchDir,
    cgroups: service.cgroups,
    jobCgroups,
    async leftoverCgroups() {
      const all = await jobCgroups();
      const names = all.filter((n) => !isWarm(n));
      const problems = [];
      const warm = all.length - names.length;
      if (warm > warmMost) problems.push(`${warm} warm sandboxes' cgroups, more than the pool's ${warmMost}`);
      for (const name of names) {
        const procs = await readFile(path.join(cgroupDir, name, "cgroup.procs"), "utf8").catch(() => "");
        if (procs.trim()) problems.push(`${name} holds tasks ${procs.trim().replace(/\n/g, " ")}`);
      }
      if (names.length > spares) problems.push(`${names.length} job cgroups, more than the pool's ${spares} spares`);
      return problems;
    },
    async leftovers() {
      // A job's clean-up (its workspace) may outlast its call: give it 5 s.
      for (let waited = 0; ; waited += 50) {
        const all = await readdir(scratchDir).catch(() => []);
        const left = all.filter((n) => !isWarm(n));
        const warm = all.length - left.length;
        const found = warm > warmMost ? [...left, `${warm} warm sandboxes, more than the pool's ${warmMost}`] : left;
        if (found.length === 0 || waited >= 5000) return found;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    async stop() {
      client.close();
      if (!stopped) {
        stopped = true;
        await service.shutdown(0);
      }
      await rm(scratchDir, { recursive: true, force: true });
    },
  };
  // Started inside a test: stopped when it ends, even if an assertion failed first.
  try {
    onTestFinished(() => test.stop());
  } catch {
    // started in a hook: the file's afterAll stops it
  }
  return test;
}

export { limits };

/** A one-step request in the default profile. */
export function job(argv: string[], step: Partial<Step> = {}, rest: Partial<ExecuteRequest> = {}): ExecuteRequest {
  return {
    profile: "default",
    priority: 0,
    files: [],
    steps: [{ argv, env: {}, stdin: Buffer.alloc(0), limits: undefined, collect: [], ...step }],
    ...rest,
  };
}

/** Everything a job's stream said, collected. */
export interface Collected {
  readonly events: ExecuteResponse[];
  readonly stdout: string;
  readonly stderr: string;
  /** stdout and stderr chunks in arrival order, tagged. */
  readonly chunks: { stream: "out" | "err"; text: string }[];
  readonly finished: NonNullable<Extract<ExecuteResponse["event"], { $case: "finished" }>>["value"];
}

/** Runs a job to its end and collects its events. */
export async function collect(client: CorralClient, request: ExecuteRequest): Promise<Collected> {
  const events: ExecuteResponse[] = [];
  const chunks: Collected["chunks"] = [];
  for await (const ev of client.execute(request)) {
    events.push(ev);
    if (ev.event?.$case === "output")
      chunks.push({
        stream: ev.event.value.stream === Stream.STREAM_STDERR ? "err" : "out",
        text: Buffer.from(ev.event.value.data).toString(),
      });
  }
  const last = events.at(-1)?.event;
  if (last?.$case !== "finished") throw new Error(`stream ended without finished: ${JSON.stringify(last)}`);
  const join = (s: "out" | "err"): string =>
    chunks
      .filter((c) => c.stream === s)
      .map((c) => c.text)
      .join("");
  return { events, chunks, stdout: join("out"), stderr: join("err"), finished: last.value };
}
