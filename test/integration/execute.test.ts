import { execFileSync } from "node:child_process";
import { readFile, readlink } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Status } from "@corral/client";
import { collect, job, startTestService, type TestService } from "../support/service.js";

/** The first process whose command line matches `pattern`, if any. */
function pgrep(pattern: string): string | undefined {
  try {
    return execFileSync("pgrep", ["-f", pattern], { encoding: "utf8" }).split("\n")[0] || undefined;
  } catch {
    return undefined;
  }
}

// A real service on loopback, real nsjail, run by whoever runs the tests (CI: an
// unprivileged user, which is the point: every sandbox here is built rootless).
let t: TestService;

beforeAll(async () => {
  process.env.CORRAL_TEST_SECRET = "the-service-environment-must-not-leak";
  t = await startTestService();
});

afterAll(async () => {
  await t?.stop();
});

const sh = (script: string): string[] => ["sh", "-c", script];

describe("Execute, end to end", () => {
  it("streams hello world and ends with exited-zero", async () => {
    const r = await collect(t.client, job(["echo", "hello, world"]));
    expect(r.stdout).toBe("hello, world\n");
    expect(r.stderr).toBe("");
    expect(r.finished.outcome?.status).toBe(Status.STATUS_EXITED_ZERO);
    expect(r.finished.usage?.stdoutBytes).toBe(13n);
    const kinds = r.events.map((e) => e.event?.$case);
    expect(kinds[0]).toBe("queued");
    expect(kinds[1]).toBe("started");
    expect(kinds.at(-1)).toBe("finished");
  });

  it("keeps stdout and stderr apart, each in order", async () => {
    const script = "for i in $(seq 1 200); do echo out$i; echo err$i >&2; done";
    const r = await collect(t.client, job(sh(script)));
    const lines = (n: string) => Array.from({ length: 200 }, (_, i) => `${n}${i + 1}\n`).join("");
    expect(r.stdout).toBe(lines("out"));
    expect(r.stderr).toBe(lines("err"));
    expect(r.finished.usage?.stderrBytes).toBe(BigInt(Buffer.byteLength(lines("err"))));
  });

  it.each([
    [0, Status.STATUS_EXITED_ZERO],
    [3, Status.STATUS_EXITED_NONZERO],
    [255, Status.STATUS_EXITED_NONZERO],
  ])("reports the program's own exit code %i", async (code, status) => {
    const r = await collect(t.client, job(sh(`exit ${code}`)));
    expect(r.finished.outcome).toMatchObject({ status, exitCode: code, signal: 0 });
  });

  it("reports a program killed by a signal with the signal's number", async () => {
    // A real fault: signals sent from inside to the jail's PID 1 are ignored by the kernel.
    const r = await collect(t.client, job(["python3", "-c", "import ctypes; ctypes.string_at(0)"]));
    expect(r.finished.outcome).toMatchObject({ status: Status.STATUS_SIGNALED, signal: 11, exitCode: 0 });
  });

  it("tells a program that cannot be started (set-up failure) from one that exits 255", async () => {
    const missing = await collect(t.client, job(["/no/such/program"]));
    expect(missing.finished.outcome?.status).toBe(Status.STATUS_SETUP_FAILURE);
    expect(missing.finished.outcome?.detail).toMatch(/no\/such\/program/);
    const notInPath = await collect(t.client, job(["no-such-program"]));
    expect(notInPath.finished.outcome?.status).toBe(Status.STATUS_SETUP_FAILURE);
    expect(notInPath.finished.outcome?.detail).toMatch(/not found in the sandbox's PATH/);
  });

  it("passes stdin through and closes it", async () => {
    const r = await collect(t.client, job(["sh", "-c", "wc -c; cat"], { stdin: Buffer.from("") }));
    expect(r.stdout.trim()).toBe("0");
    const big = Buffer.alloc(1 << 20, "x");
    const r2 = await collect(t.client, job(["wc", "-c"], { stdin: big }));
    expect(r2.stdout.trim()).toBe(String(1 << 20));
  });

  it("puts input files in the working directory with their modes", async () => {
    const files = [
      { path: "run.sh", content: Buffer.from("#!/bin/sh\necho ran from $(pwd)\n"), mode: 0o755 },
      { path: "data/in.txt", content: Buffer.from("payload\n"), mode: 0o600 },
    ];
    const r = await collect(
      t.client,
      job(sh("./run.sh && cat data/in.txt && stat -c %a data/in.txt run.sh"), {}, { files }),
    );
    expect(r.stdout).toBe("ran from /workspace\npayload\n600\n755\n");
  });

  it("streams 10 MiB of output intact", async () => {
    const r = await collect(t.client, job(["head", "-c", String(10 << 20), "/dev/zero"]));
    expect(r.finished.outcome?.status).toBe(Status.STATUS_EXITED_ZERO);
    expect(r.finished.usage?.stdoutBytes).toBe(BigInt(10 << 20));
    expect(r.stdout.length).toBe(10 << 20);
  });
});

describe("the sandbox, seen from inside", () => {
  it("runs the program as PID 1 of its own pid namespace", async () => {
    const r = await collect(t.client, job(["sh", "-c", "echo $$; ls /proc | grep -c '^[0-9]'"]));
    const [pid, count] = r.stdout.trim().split("\n").map(Number);
    expect(pid).toBe(1);
    expect(count).toBeLessThanOrEqual(3); // sh, ls, grep: nothing of the host
  });

  it("has no network interface but loopback", async () => {
    const r = await collect(t.client, job(["sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '"]));
    expect(r.stdout).toBe("lo\n");
  });

  it("has its own hostname", async () => {
    const r = await collect(t.client, job(["cat", "/proc/sys/kernel/hostname"]));
    expect(r.stdout).toBe("corral\n");
  });

  it("is not root on the host, and the service is not root either", async () => {
    expect(process.getuid?.()).not.toBe(0);
    // The stdin pipe belongs to the service's uid on the host; its namespace maps one uid.
    const r = await collect(
      t.client,
      job(["sh", "-c", "id -u; stat -L -c %u /proc/self/fd/0; wc -l < /proc/self/uid_map; cat /proc/self/uid_map"]),
    );
    const [uid, pipeOwner, mapLines, , , count] = r.stdout.trim().split(/\s+/).map(Number);
    expect(uid).toBe(process.getuid?.());
    expect(mapLines).toBe(1);
    expect(count).toBe(1);
    const { host } = await t.client.serverInfo();
    if (host?.jobUid === "subordinate")
      // The service's uid is not mapped in the job's namespace at all (the kernel shows it as
      // the overflow uid): the job is another host uid.
      expect(pipeOwner).toBe(65534);
    // The program sees the pipe as its own: it is the service's uid on the host.
    else expect(pipeOwner).toBe(uid);
  });

  it("runs as a host uid that is not the service's, nor another running job's, where the host has subordinate ids", async () => {
    const { host } = await t.client.serverInfo();
    expect(host?.jobUid).toMatch(/^(subordinate|service)$/);
    // Two sleeps at once, each with an argument unique to this test run, found on the host.
    const markers = [`2.${process.pid}1`, `2.${process.pid}2`];
    const running = markers.map((m) => collect(t.client, job(["sleep", m])));
    const uids: number[] = [];
    for (const m of markers) {
      let pid: string | undefined;
      await expect.poll(() => (pid = pgrep(`^sleep ${m}$`)), { timeout: 5000 }).toBeDefined();
      const status = await readFile(`/proc/${pid}/status`, "utf8");
      uids.push(Number(/^Uid:\s+(\d+)/m.exec(status)![1]));
    }
    await Promise.all(running);
    if (host?.jobUid === "subordinate") {
      for (const uid of uids) expect(uid).not.toBe(process.getuid?.());
      expect(uids[0]).not.toBe(uids[1]);
    } else expect(uids).toEqual([process.getuid?.(), process.getuid?.()]);
  });

  it("lives in namespaces that all differ from the service's", async () => {
    const kinds = ["user", "mnt", "pid", "net", "ipc", "uts", "cgroup"];
    const r = await collect(t.client, job(["sh", "-c", kinds.map((k) => `readlink /proc/self/ns/${k}`).join(";")]));
    const inside = r.stdout.trim().split("\n");
    expect(inside).toHaveLength(kinds.length);
    for (const [i, kind] of kinds.entries()) {
      const outside = await readlink(`/proc/self/ns/${kind}`);
      expect(inside[i], kind).toMatch(new RegExp(`^${kind}:\\[\\d+\\]$`));
      expect(inside[i], kind).not.toBe(outside);
    }
  });

  it("sees only the profile's paths, a read-only root and a writable /tmp", async () => {
    const r = await collect(
      t.client,
      job(
        sh(
          "ls /; touch /usr/x 2>/dev/null && echo usr-writable; touch /newfile 2>/dev/null && echo root-writable; echo t > /tmp/t && echo tmp-ok",
        ),
      ),
    );
    expect(r.stdout.split("\n").filter(Boolean).sort()).toEqual(
      ["bin", "dev", "lib", "lib64", "proc", "tmp", "tmp-ok", "usr", "workspace"].sort(),
    );
  });

  it("inherits nothing of the service's environment", async () => {
    const r = await collect(t.client, job(["env"], { env: { GIVEN: "yes" } }));
    expect(r.stdout).not.toContain("CORRAL_TEST_SECRET");
    expect(r.stdout).not.toContain("the-service-environment-must-not-leak");
    expect(r.stdout).toContain("GIVEN=yes\n");
    expect(r.stdout).toContain("PATH=/usr/local/bin:/usr/bin:/bin\n");
  });
});

describe("cleanup", () => {
  it("leaves no job folder behind, also after a cancelled job", async () => {
    const abort = new AbortController();
    const events = t.client.execute(job(["sleep", "30"]), { signal: abort.signal });
    const started = performance.now();
    await expect(
      (async () => {
        for await (const ev of events) if (ev.event?.$case === "started") setTimeout(() => abort.abort(), 200);
      })(),
    ).rejects.toMatchObject({ code: 1 }); // CANCELLED
    expect(performance.now() - started).toBeLessThan(5000);
    // The job's folder goes once nsjail has killed the jail; give it a moment.
    for (let i = 0; i < 50 && (await t.leftovers()).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await t.leftovers()).toEqual([]);
  });
});
