import { mkdtemp, readFile, writeFile, mkdir, chmod } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, Status } from "@corral/client";
import { corral, startServe } from "../support/cli.js";
import { job, startTestService, type TestService } from "../support/service.js";

// The `corral` command line, as a script would call it, against a real service.
let t: TestService;
let dir: string;
beforeAll(async () => {
  t = await startTestService();
  dir = await mkdtemp(path.join(tmpdir(), "corral-cli-"));
});
afterAll(async () => {
  await t?.stop();
});

describe("corral profiles", () => {
  it("lists the server's profiles with their limits and why each mount is there", async () => {
    const r = await corral(["profiles", "--server", t.address]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^default: A POSIX shell, coreutils and python3/m);
    expect(r.stdout).toMatch(/^ {2}limits: wall 10 s, cpu 10 s, memory 256 MiB, processes 64, output 64 MiB$/m);
    expect(r.stdout).toMatch(/^ {2}\/usr: sh, coreutils, python3/m);
  });
});

describe("corral doctor", () => {
  it("passes on a host set up by `npm run setup`", async () => {
    const r = await corral(["doctor"]);
    expect(r.stdout).toMatch(/^ok {4}nsjail: /m);
    expect(r.stdout).toMatch(/^ok {4}sandbox: a rootless sandbox/m);
    expect(r.stdout).toMatch(/^ok {4}cgroups: v[12]/m);
    expect(r.stdout).toMatch(/^ok {4}apparmor: /m);
    expect(r.stdout).toMatch(/^ok {4}overlay: overlayfs mounts inside a user namespace: workspaces are overlays$/m);
    expect(r.code).toBe(0);
  });

  it("names what is missing with its fix, and exits 1", async () => {
    const r = await corral(["doctor"], { env: { CORRAL_CGROUP_V2_PARENT: "/nonexistent/corral" } });
    expect(r.stdout).toMatch(
      /^FAIL {2}cgroups: memory, process and CPU-time limits unavailable: .*setup-host --user /m,
    );
    expect(r.code).toBe(1);
  });
});

describe("corral run", () => {
  it("passes output through, exits with the program's code and writes --result", async () => {
    const result = path.join(dir, "result.json");
    const r = await corral([
      "run",
      "--server",
      t.address,
      "--result",
      result,
      "--",
      "sh",
      "-c",
      "echo hi; echo oops >&2; exit 3",
    ]);
    expect(r).toEqual({ code: 3, stdout: "hi\n", stderr: "oops\n" });
    const json = JSON.parse(await readFile(result, "utf8")) as Record<string, unknown>;
    expect(json).toMatchObject({
      status: "STATUS_EXITED_NONZERO",
      exitCode: 3,
      signal: null,
      stdoutBytes: 3,
      stderrBytes: 5,
      truncated: false,
    });
    const figures = ["cpuTimeMs", "cpuUserMs", "cpuSystemMs", "wallTimeMs", "peakMemoryBytes", "peakProcesses"];
    for (const figure of [...figures, "workspaceBytes", "workspaceInodes"])
      expect(json[figure], figure).toBeTypeOf("number");
    expect(Object.keys(json).sort()).toEqual(
      [
        "status",
        "exitCode",
        "signal",
        "cpuTimeMs",
        "cpuUserMs",
        "cpuSystemMs",
        "wallTimeMs",
        "peakMemoryBytes",
        "peakProcesses",
        "stdoutBytes",
        "stderrBytes",
        "truncated",
        "workspaceBytes",
        "workspaceInodes",
      ].sort(),
    );
  });

  it("exits 128+N when signal N killed the program", async () => {
    const r = await corral(["run", "--server", t.address, "--", "python3", "-c", "import ctypes; ctypes.string_at(0)"]);
    expect(r.code).toBe(139);
  });

  it("exits 124 at the wall-time limit and says so on stderr", async () => {
    const r = await corral(["run", "--server", t.address, "--wall-time", "0.3", "--", "sleep", "5"]);
    expect(r.code).toBe(124);
    expect(r.stderr).toMatch(/STATUS_WALL_TIME_LIMIT/);
  });

  it("copies --dir (modes kept) and --file PATH:DEST, feeds --stdin and sets --env", async () => {
    const src = path.join(dir, "src");
    await mkdir(path.join(src, "sub"), { recursive: true });
    await writeFile(path.join(src, "sub", "tool.sh"), "#!/bin/sh\necho tool $GREETING\n");
    await chmod(path.join(src, "sub", "tool.sh"), 0o755);
    await writeFile(path.join(dir, "extra.txt"), "extra\n");
    await writeFile(path.join(dir, "in.txt"), "from stdin\n");
    const r = await corral([
      "run",
      "--server",
      t.address,
      "--dir",
      src,
      "--file",
      `${path.join(dir, "extra.txt")}:docs/e.txt`,
      "--stdin",
      path.join(dir, "in.txt"),
      "--env",
      "GREETING=hello",
      "--",
      "sh",
      "-c",
      "sub/tool.sh; cat docs/e.txt; cat",
    ]);
    expect(r).toEqual({ code: 0, stdout: "tool hello\nextra\nfrom stdin\n", stderr: "" });
  });

  it("exits 125 with the service's message for a refused request", async () => {
    const r = await corral(["run", "--server", t.address, "--profile", "nope", "--", "true"]);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/profile 'nope' does not exist/);
  });

  it("exits 2 for a usage error", async () => {
    const r = await corral(["run", "--server", t.address, "--memory", "lots", "--", "true"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--memory lots: expected a size/);
  });
});

describe("corral serve --print-config", () => {
  it("prints the effective config from the file named by CORRAL_CONFIG and the environment, which wins", async () => {
    const file = path.join(dir, "corral.json");
    await writeFile(file, JSON.stringify({ CORRAL_CONCURRENCY: 3, CORRAL_BACKLOG: 5 }));
    const r = await corral(["serve", "--print-config"], { env: { CORRAL_CONFIG: file, CORRAL_BACKLOG: "7" } });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ concurrency: 3, backlog: 7, listen: "127.0.0.1:50051" });
  });

  it("stops at start with every problem listed", async () => {
    const r = await corral(["serve"], { env: { CORRAL_CONCURRENCY: "none", CORRAL_LISTEN: "10.0.0.1:1" } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/CORRAL_CONCURRENCY: .*\n.*CORRAL_LISTEN: 10\.0\.0\.1:1 is not a loopback address/);
    const file = path.join(dir, "bad.json");
    await writeFile(file, JSON.stringify({ CORRAL_CONCURENCY: 3 }));
    const typo = await corral(["serve"], { env: { CORRAL_CONFIG: file } });
    expect(typo.stderr).toMatch(/unknown setting\(s\) CORRAL_CONCURENCY/);
  });
});

describe("corral serve", () => {
  it.each(["SIGTERM", "SIGINT"] as const)("on %s drains, cancels past the grace, logs it and exits 0", async (sig) => {
    const scratch = await mkdtemp(path.join(tmpdir(), "corral-serve-"));
    const serve = startServe({
      CORRAL_LISTEN: "127.0.0.1:0",
      CORRAL_SHUTDOWN_GRACE_MS: "300",
      CORRAL_SCRATCH_DIR: scratch,
      CORRAL_INSTANCE: path.basename(scratch),
    });
    const address = (await serve.waitFor(/"address":"([^"]+)"/))[1]!;
    const client = createClient(address);
    const events = client.execute(job(["sleep", "30"]))[Symbol.asyncIterator]();
    await events.next(); // queued
    await events.next(); // started
    serve.process.kill(sig);
    let last;
    for (let n = await events.next(); !n.done; n = await events.next()) last = n.value;
    client.close();
    expect(last?.event).toMatchObject({ $case: "finished", value: { outcome: { status: Status.STATUS_CANCELLED } } });
    expect(await serve.exited).toBe(0);
    expect(serve.log()).toMatch(/"event":"grace-over"/);
    expect(serve.log()).toMatch(/"releasedMs":\d+/);
    expect(serve.log()).toMatch(/"event":"stopped"/);
  });
});
