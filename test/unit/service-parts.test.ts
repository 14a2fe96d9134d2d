import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../server/src/config.js";
import { FailedPreconditionError, QueueFullError } from "../../server/src/errors.js";
import type { LimitName } from "../../server/src/domain.js";
import { JobQueue } from "../../server/src/jobs/job-queue.js";
import { resolveLimits } from "../../server/src/jobs/resolve-limits.js";
import { ProfileError, loadProfiles } from "../../server/src/sandbox/profiles.js";
import { hostPathOf } from "../../server/src/sandbox/resolve-executable.js";
import { JobUids } from "../../server/src/sandbox/job-uids.js";
import { withinHardLimits } from "../../server/src/sandbox/warm-pool.js";
import { parseTokens } from "../../server/src/grpc/access.js";
import { createClient } from "@corral/client";

describe("loadConfig", () => {
  it("has defaults that need no environment", () => {
    const c = loadConfig({});
    expect(c.listen).toBe("127.0.0.1:50051");
    expect(c.concurrency).toBeGreaterThan(0);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it("refuses a non-loopback address without tokens or mutual TLS", () => {
    expect(() => loadConfig({ CORRAL_LISTEN: "0.0.0.0:50051" })).toThrow(
      /CORRAL_LISTEN: 0\.0\.0\.0:50051 is not a loopback address: set CORRAL_TOKENS_FILE with CORRAL_TLS_CERT and CORRAL_TLS_KEY, or CORRAL_TLS_CLIENT_CA/,
    );
    expect(() => loadConfig({ CORRAL_LISTEN: "0.0.0.0:50051", CORRAL_TOKENS_FILE: "/etc/corral/tokens" })).toThrow(
      /CORRAL_TOKENS_FILE with CORRAL_TLS_CERT/,
    );
    const tls = { CORRAL_TLS_CERT: "/c.pem", CORRAL_TLS_KEY: "/k.pem" };
    expect(loadConfig({ CORRAL_LISTEN: "0.0.0.0:50051", CORRAL_TOKENS_FILE: "/t", ...tls }).listen).toBe(
      "0.0.0.0:50051",
    );
    expect(() => loadConfig({ CORRAL_TLS_CERT: "/x.pem" })).toThrow(/CORRAL_TLS_KEY: TLS needs both/);
  });

  it("reports every problem at once", () => {
    const bad = () => loadConfig({ CORRAL_LISTEN: "nowhere", CORRAL_CONCURRENCY: "-1", CORRAL_LOG_LEVEL: "loud" });
    expect(bad).toThrow(ConfigError);
    expect(bad).toThrow(/CORRAL_LISTEN: .*HOST:PORT[\s\S]*CORRAL_CONCURRENCY[\s\S]*CORRAL_LOG_LEVEL/);
  });
});

describe("resolveLimits", () => {
  const defaults = {
    wallTimeMs: 10_000,
    cpuTimeMs: 5_000,
    memoryBytes: 1 << 28,
    processes: 64,
    outputBytes: 1000,
    fileSizeBytes: 1 << 20,
    openFiles: 256,
    stackBytes: 8 << 20,
  };
  const ceilings = { ...defaults, wallTimeMs: 60_000, outputBytes: 5000 };
  const none = new Set<LimitName>();
  it("takes the profile's defaults, lowered or raised up to the ceiling by the request", () => {
    expect(resolveLimits({}, defaults, ceilings, none, "l")).toEqual(defaults);
    expect(resolveLimits({ wallTimeMs: 5 }, defaults, ceilings, none, "l")).toEqual({ ...defaults, wallTimeMs: 5 });
    expect(resolveLimits({ outputBytes: 5000 }, defaults, ceilings, none, "l")).toEqual({
      ...defaults,
      outputBytes: 5000,
    });
  });
  it("caps a profile default at the server's ceiling", () => {
    expect(resolveLimits({}, { ...defaults, outputBytes: 9999 }, ceilings, none, "l").outputBytes).toBe(5000);
  });
  it("refuses a request above the ceiling, naming the limit", () => {
    expect(() => resolveLimits({ outputBytes: 5001 }, defaults, ceilings, none, "steps[0].limits")).toThrow(
      "steps[0].limits.output_bytes: 5001 is above this server's ceiling of 5000",
    );
    expect(() => resolveLimits({ memoryBytes: 1 << 29 }, defaults, ceilings, none, "l")).toThrow(/l\.memory_bytes/);
  });
  it("never runs a limit it cannot enforce", () => {
    const noCgroup = new Set<LimitName>(["cpuTimeMs", "memoryBytes", "processes"]);
    expect(() => resolveLimits({ cpuTimeMs: 1000 }, defaults, ceilings, noCgroup, "l")).toThrow(
      FailedPreconditionError,
    );
    expect(() => resolveLimits({ cpuTimeMs: 1000 }, defaults, ceilings, noCgroup, "l")).toThrow(
      /l\.cpu_time_ms: this host cannot enforce/,
    );
    expect(resolveLimits({ wallTimeMs: 10 }, defaults, ceilings, noCgroup, "l").wallTimeMs).toBe(10);
  });
});

describe("JobQueue", () => {
  const gate = () => {
    let open!: () => void;
    const p = new Promise<void>((r) => (open = r));
    return { p, open };
  };
  const never = () => new AbortController().signal;

  it("refuses past its backlog and drops a job aborted while it waits", async () => {
    const q = new JobQueue({ concurrency: 1, backlog: 1 });
    const g = gate();
    const first = q.admit(() => g.p, never(), { priority: 0 });
    const abort = new AbortController();
    let ran = false;
    const second = q.admit(() => Promise.resolve(void (ran = true)), abort.signal, { priority: 0 });
    expect([first.position, second.position]).toEqual([0, 0]);
    expect(() => q.admit(() => Promise.resolve(), never(), { priority: 0 })).toThrow(QueueFullError);
    abort.abort(new Error("gone"));
    await expect(second.done).rejects.toThrow("gone");
    expect(q.waiting).toBe(0);
    g.open();
    await first.done;
    expect(ran).toBe(false);
  });

  it("runs higher priorities first and tells waiting jobs when their place changes", async () => {
    const q = new JobQueue({ concurrency: 1, backlog: 10 });
    const g = gate();
    const order: string[] = [];
    const moves: string[] = [];
    const job = (name: string, priority: number) =>
      q.admit(() => Promise.resolve(void order.push(name)), never(), {
        priority,
        onPosition: (p) => moves.push(`${name}->${p}`),
      });
    const running = q.admit(() => g.p, never(), { priority: 0 });
    const a = job("a", 0);
    const b = job("b", 0);
    const urgent = job("urgent", 5);
    expect([running.position, a.position, b.position, urgent.position]).toEqual([0, 0, 1, 0]);
    expect(moves).toEqual([]); // told together, a moment later, not once per change
    await new Promise((r) => setTimeout(r, 300));
    expect(moves).toEqual(["a->1", "b->2"]); // pushed back by the urgent job
    g.open();
    await Promise.all([running.done, a.done, b.done, urgent.done]);
    expect(order).toEqual(["urgent", "a", "b"]);
  });
});

describe("loadProfiles", () => {
  it("names the file and the problem", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "corral-profiles-"));
    await writeFile(
      path.join(dir, "bad.json"),
      JSON.stringify({
        description: "x",
        mounts: [{ type: "bind", src: "/usr", dst: "/usr" }],
        env: { PATH: "/usr/bin" },
        tmpBytes: 1,
        limits: { wallTimeMs: 1, outputBytes: 1 },
      }),
    );
    await expect(loadProfiles(dir)).rejects.toThrow(ProfileError);
    await expect(loadProfiles(dir)).rejects.toThrow(/bad\.json: mounts\.0\.why/);
  });

  it("names the file when its seccomp policy is missing", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "corral-profiles-"));
    const good = JSON.parse(await readFile(path.resolve("sandbox-profiles/default.json"), "utf8")) as object;
    await writeFile(path.join(dir, "p.json"), JSON.stringify({ ...good, seccompPolicy: "seccomp/absent.kafel" }));
    await expect(loadProfiles(dir)).rejects.toThrow(/p\.json: seccompPolicy seccomp\/absent\.kafel: ENOENT/);
    await writeFile(path.join(dir, "p.json"), JSON.stringify({ ...good, seccompPolicy: "../../etc/passwd" }));
    await expect(loadProfiles(dir)).rejects.toThrow(/p\.json: seccompPolicy: must not contain '\.\.'/);
  });

  it("loads the shipped profiles", async () => {
    const profiles = await loadProfiles(path.resolve("sandbox-profiles"));
    expect(profiles.get("default")?.env.PATH).toContain("/usr/bin");
  });
});

describe("JobUids", () => {
  it("takes uids in turn, never one still held, and gives 0 to all without subordinate ids", () => {
    const uids = new JobUids(3);
    expect([uids.take(), uids.take(), uids.take()]).toEqual([1, 2, 3]);
    uids.release(2);
    expect(uids.take()).toBe(2); // 1 and 3 are still held: a long job keeps its uid its own
    expect(() => uids.take()).toThrow(/all 3 subordinate uids are held/);
    uids.release(1);
    expect(uids.take()).toBe(1);
    const none = new JobUids(0);
    expect([none.take(), none.take()]).toEqual([0, 0]);
  });
});

describe("withinHardLimits", () => {
  const limitsText = [
    "Limit                     Soft Limit           Hard Limit           Units     ",
    "Max cpu time              unlimited            unlimited            seconds   ",
    "Max file size             unlimited            3000000              bytes     ",
    "Max stack size            8388608              unlimited            bytes     ",
    "Max open files            1024                 20000                files     ",
  ].join("\n");
  it("lowers the ceilings a warm sandbox starts with to the service's hard rlimits, in nsjail's units", () => {
    const ceilings = {
      wallTimeMs: 1,
      cpuTimeMs: 3_600_000,
      memoryBytes: 1,
      processes: 1,
      outputBytes: 1,
      fileSizeBytes: 4 * 2 ** 30,
      openFiles: 65_536,
      stackBytes: 2 ** 30,
    };
    expect(withinHardLimits(ceilings, limitsText)).toEqual({
      ...ceilings,
      fileSizeBytes: 2 << 20, // whole MiB below the hard 3,000,000 bytes
      openFiles: 20_000,
    });
  });
});

describe("hostPathOf", () => {
  const mounts = [
    { type: "bind" as const, src: "/usr", dst: "/usr", rw: false, why: "" },
    { type: "bind" as const, src: "/opt/py", dst: "/usr/local", rw: false, why: "" },
  ];
  it("maps through the longest matching bind", () => {
    expect(hostPathOf("/usr/bin/sh", mounts)).toBe("/usr/bin/sh");
    expect(hostPathOf("/usr/local/bin/python", mounts)).toBe("/opt/py/bin/python");
    expect(hostPathOf("/usrx/bin", mounts)).toBeUndefined();
  });
});

describe("parseTokens", () => {
  it("refuses a misspelt field and an empty profile list, which would otherwise allow every profile", () => {
    const h = "sha256:" + "c".repeat(64);
    expect(() => parseTokens(`${h} name=x profile=c\n`, "t")).toThrow(
      /t:1: unknown field\(s\) profile: only name= and profiles=/,
    );
    expect(() => parseTokens(`${h} name=x profiles=\n`, "t")).toThrow(/t:1: profiles= lists no profile/);
  });

  it("the client will not send a token in cleartext off loopback", () => {
    expect(() => createClient("10.0.0.1:50051", { token: "t" })).toThrow(
      /refusing to send a bearer token in cleartext/,
    );
    expect(() => createClient("127.0.0.1:50051", { token: "t" }).close()).not.toThrow();
  });

  it("reads hashes, names and profile limits, and reports every bad line by number", () => {
    const ok = parseTokens(`# comment\nsha256:${"a".repeat(64)} name=ci profiles=c,cpp\n`, "tokens");
    expect(ok).toEqual([{ name: "ci", sha256: Buffer.alloc(32, 0xaa), profiles: new Set(["c", "cpp"]) }]);
    expect(() => parseTokens("plain-token name=x\nsha256:" + "b".repeat(64) + "\n", "tokens")).toThrow(
      /tokens:1: expected sha256:<64 lower-case hex digits> first\n\s+tokens:2: give the token a name=/,
    );
  });
});
