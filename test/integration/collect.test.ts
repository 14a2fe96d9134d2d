import { mkdtemp, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CollectedFile } from "@corral/client";
import { corral } from "../support/cli.js";
import { collect, job, startTestService, type TestService } from "../support/service.js";

// Files out: only regular files inside the workspace, read without following links; every other
// thing gets a per-file "not collected" with the reason, and no host content.
let t: TestService;
let canary: string;
beforeAll(async () => {
  t = await startTestService();
  canary = path.join(await mkdtemp(path.join(tmpdir(), "corral-canary-")), "secret.txt");
  await writeFile(canary, "HOST SECRET\n");
});
afterAll(async () => {
  await t?.stop();
});

async function run(script: string, paths: string[]): Promise<Map<string, CollectedFile>> {
  const r = await collect(t.client, job(["sh", "-c", script], { collect: paths }));
  const ev = r.events.find((e) => e.event?.$case === "stepFinished")?.event;
  const files = ev?.$case === "stepFinished" ? (ev.value.result?.files ?? []) : [];
  expect(files.map((f) => f.path)).toEqual(paths);
  return new Map(files.map((f) => [f.path, f]));
}

describe("collecting files after a step", () => {
  it("returns regular files with their content and mode, and reports a missing one", async () => {
    const files = await run("mkdir -p out; echo built > out/app; chmod 750 out/app; printf 'x' > log.txt", [
      "out/app",
      "log.txt",
      "nope",
    ]);
    expect(files.get("out/app")).toMatchObject({ collected: true, mode: 0o750 });
    expect(Buffer.from(files.get("out/app")!.content).toString()).toBe("built\n");
    expect(Buffer.from(files.get("log.txt")!.content).toString()).toBe("x");
    expect(files.get("nope")).toMatchObject({ collected: false, reason: "no such file" });
  });

  it("never follows a link the job left, to a host file, into /proc or through a parent folder", async () => {
    const files = await run(
      `ln -s ${canary} host; ln -s /proc/self/environ env; ln -s /etc dirlink; mkfifo fifo; mkdir d`,
      ["host", "env", "dirlink/passwd", "fifo", "d"],
    );
    expect(files.get("host")).toMatchObject({ collected: false, reason: "a symbolic link; not followed" });
    expect(files.get("env")).toMatchObject({ collected: false, reason: "a symbolic link; not followed" });
    expect(files.get("dirlink/passwd")).toMatchObject({
      collected: false,
      reason: expect.stringMatching(/'dirlink' is not a directory/) as string,
    });
    expect(files.get("fifo")).toMatchObject({ collected: false, reason: "a FIFO" });
    expect(files.get("d")).toMatchObject({ collected: false, reason: "a directory" });
    for (const f of files.values())
      expect(Buffer.from(f.collected ? f.content : []).toString()).not.toContain("HOST SECRET");
  });

  it("refuses a file over the per-file cap, by name", async () => {
    const files = await run("head -c 17000000 /dev/zero > big", ["big"]);
    expect(files.get("big")).toMatchObject({
      collected: false,
      reason: "17000000 bytes, over the 16777216-byte cap per file",
    });
  });

  it("checks the paths asked for like input paths", async () => {
    await expect(collect(t.client, job(["true"], { collect: ["../etc/passwd"] }))).rejects.toMatchObject({
      code: 3,
      details: expect.stringMatching(/^steps\[0\]\.collect\[0\]: '\.\.\/etc\/passwd' has a '\.\.' component/) as string,
    });
  });

  it("corral run --collect writes them next to the result", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "corral-collect-"));
    const args = [
      "run",
      "--server",
      t.address,
      "--result",
      path.join(dir, "r.json"),
      "--collect",
      "out/a.txt",
      "--collect",
      "missing",
      "--",
      "sh",
      "-c",
      "mkdir out; echo A > out/a.txt",
    ];
    const { stderr } = await corral(args);
    expect(await readFile(path.join(dir, "out", "a.txt"), "utf8")).toBe("A\n");
    expect((await stat(path.join(dir, "r.json"))).isFile()).toBe(true);
    expect(stderr).toBe("corral: not collected: missing: no such file\n");
  });
});
