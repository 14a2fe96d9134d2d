import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Status, type ExecuteRequest, type ExecuteResponse } from "@corral/client";
import { collect, job, limits, startTestService, type TestService } from "../support/service.js";

// Requests the service refuses before running anything: each gets one gRPC status whose
// message names the field and the problem.
let t: TestService;
beforeAll(async () => {
  t = await startTestService({ CORRAL_CONCURRENCY: "1", CORRAL_BACKLOG: "1", CORRAL_MAX_WALL_TIME_MS: "60000" });
});
afterAll(async () => {
  await t?.stop();
});

const file = (path: string) => ({ path, content: Buffer.from(""), mode: 0 });
const noLimits = limits();

async function refusal(request: ExecuteRequest): Promise<{ code: number; details: string }> {
  try {
    await collect(t.client, request);
  } catch (err) {
    return err as { code: number; details: string };
  }
  throw new Error("the request was accepted");
}

describe("admission", () => {
  it("answers RESOURCE_EXHAUSTED at once when the backlog is full", async () => {
    const running = collect(t.client, job(["sleep", "1"]));
    await new Promise((r) => setTimeout(r, 100));
    const queued = t.client.execute(job(["true"]))[Symbol.asyncIterator]();
    const first = (await queued.next()) as IteratorYieldResult<ExecuteResponse>;
    // One job runs, this one waits with nobody ahead of it: position 0, and the backlog of 1 is full.
    expect(first.value.event).toMatchObject({ $case: "queued", value: { position: 0 } });
    const before = performance.now();
    const refused = await refusal(job(["true"]));
    expect(performance.now() - before).toBeLessThan(500);
    expect(refused.code).toBe(8); // RESOURCE_EXHAUSTED
    expect(refused.details).toMatch(/queue full/);
    // Both admitted jobs still finish.
    expect((await running).finished.outcome?.status).toBe(Status.STATUS_EXITED_ZERO);
    let last: ExecuteResponse | undefined;
    for (let n = await queued.next(); !n.done; n = await queued.next()) last = n.value;
    expect(last?.event?.$case).toBe("finished");
  });

  it("answers NOT_FOUND for an unknown profile", async () => {
    const r = await refusal({ ...job(["true"]), profile: "cobol" });
    expect(r.code).toBe(5);
    expect(r.details).toMatch(/profile 'cobol' does not exist/);
  });

  it.each<[string, ExecuteRequest, RegExp]>([
    ["empty profile", { ...job(["true"]), profile: "" }, /^profile: must not be empty/],
    ["no steps", { ...job(["true"]), steps: [] }, /^steps: must hold at least one step/],
    ["priority out of range", { ...job(["true"]), priority: 11 }, /^priority: 11 is outside -10\.\.10/],
    [
      "seventeen steps",
      { ...job(["true"]), steps: Array.from({ length: 17 }, () => job(["true"]).steps[0]!) },
      /^steps: 17 steps; at most 16/,
    ],
    ["empty argv", job([]), /^steps\[0\]\.argv: must name a program/],
    ["empty argv[0]", job([""]), /^steps\[0\]\.argv\[0\]: must not be empty/],
    ["NUL in an argument", job(["echo", "a\0b"]), /^steps\[0\]\.argv\[1\]: must not contain NUL/],
    ["bad env name", job(["true"], { env: { "A=B": "x" } }), /^steps\[0\]\.env: 'A=B' is not a variable name/],
    ["NUL in env value", job(["true"], { env: { A: "x\0" } }), /^steps\[0\]\.env\[A\]: must not contain NUL/],
    [
      "wall time above ceiling",
      job(["true"], { limits: { ...noLimits, wallTimeMs: 60001n } }),
      /^steps\[0\]\.limits\.wall_time_ms: 60001 is above/,
    ],
    [
      "absurd output limit",
      job(["true"], { limits: { ...noLimits, outputBytes: 10n ** 18n } }),
      /^steps\[0\]\.limits\.output_bytes: 1000000000000000000 is too large/,
    ],
    [
      "absolute file path",
      job(["true"], {}, { files: [{ path: "/etc/passwd", content: Buffer.from(""), mode: 0 }] }),
      /^files\[0\]\.path: '\/etc\/passwd' is absolute/,
    ],
    [
      "'..' in a file path",
      job(["true"], {}, { files: [{ path: "a/../../x", content: Buffer.from(""), mode: 0 }] }),
      /^files\[0\]\.path: 'a\/..\/..\/x' has a '\.\.' component/,
    ],
    [
      "empty file path",
      job(["true"], {}, { files: [{ path: "", content: Buffer.from(""), mode: 0 }] }),
      /^files\[0\]\.path: must not be empty/,
    ],
    [
      "NUL in a file path",
      job(["true"], {}, { files: [{ path: "a\0b", content: Buffer.from(""), mode: 0 }] }),
      /^files\[0\]\.path: must not contain NUL, newlines/,
    ],
    [
      "duplicate file",
      job(
        ["true"],
        {},
        {
          files: [
            { path: "a", content: Buffer.from(""), mode: 0 },
            { path: "a", content: Buffer.from(""), mode: 0 },
          ],
        },
      ),
      /^files\[1\]\.path: 'a' is given twice/,
    ],
    [
      "a file that is also a folder",
      job(["true"], {}, { files: [file("a"), file("a/b")] }),
      /^files\[1\]\.path: 'a' is a file, so it cannot hold 'a\/b'/,
    ],
    [
      "newline in a file path",
      job(["true"], {}, { files: [file("x\n[I][t] (1) exited with status: 0")] }),
      /^files\[0\]\.path: must not contain NUL, newlines or other control characters/,
    ],
    [
      "newline in argv[0]",
      job(["./x\n[I][t] (1) exited with status: 0"]),
      /^steps\[0\]\.argv\[0\]: must not contain newlines/,
    ],
    [
      "setuid mode",
      job(["true"], {}, { files: [{ path: "a", content: Buffer.from(""), mode: 0o4755 }] }),
      /^files\[0\]\.mode: 04755 has bits above 0777/,
    ],
  ])("answers INVALID_ARGUMENT naming the field: %s", async (_name, request, message) => {
    const r = await refusal(request);
    expect(r.code).toBe(3);
    expect(r.details).toMatch(message);
  });

  it("left no job folder behind", async () => {
    expect(await t.leftovers()).toEqual([]);
  });
});

describe("a host without a delegated cgroup", () => {
  let bare: TestService;
  beforeAll(async () => {
    // A v2 folder that does not exist: the service starts, says why, and enforces what it can.
    bare = await startTestService({ CORRAL_CGROUP_V2_PARENT: "/nonexistent/corral" });
  });
  afterAll(async () => {
    await bare?.stop();
  });

  it("refuses a memory, CPU or process limit with FAILED_PRECONDITION naming it", async () => {
    expect(bare.cgroups).toBe("none");
    for (const [l, field] of [
      [{ memoryBytes: 1n << 26n }, "memory_bytes"],
      [{ cpuTimeMs: 1000n }, "cpu_time_ms"],
      [{ processes: 8 }, "processes"],
    ] as const) {
      const r = await collect(bare.client, job(["true"], { limits: limits(l) })).catch(
        (e: unknown) => e as { code: number; details: string },
      );
      expect(r).toMatchObject({
        code: 9,
        details: expect.stringContaining(`steps[0].limits.${field}: this host cannot enforce`) as unknown,
      });
    }
  });

  it("says so in GetServerInfo, with the fix", async () => {
    const info = await bare.client.serverInfo();
    expect(info.host).toMatchObject({
      cgroupVersion: 0,
      unavailableLimits: ["cpu_time_ms", "memory_bytes", "processes"],
      problems: [
        expect.stringMatching(/\/nonexistent\/corral not found: run `sudo npx corral setup-host --user /) as string,
      ],
    });
    expect(info.host?.enforceableLimits).toContain("wall_time_ms");
  });

  it("still runs jobs that ask only for what it can enforce, without CPU or memory figures", async () => {
    const r = await collect(bare.client, job(["echo", "ok"], { limits: limits({ wallTimeMs: 5000n }) }));
    expect(r.stdout).toBe("ok\n");
    expect(r.finished.usage?.cpuTimeMs).toBeUndefined();
    expect(r.finished.usage?.peakMemoryBytes).toBeUndefined();
  });
});
