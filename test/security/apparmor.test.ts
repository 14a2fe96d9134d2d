import { spawnSync } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { APPARMOR_PARSER, APPARMOR_PROFILES, parserMajor, renderProfile } from "../../server/src/sandbox/apparmor.js";

// This kernel has no AppArmor: the profiles are compiled with apparmor_parser without loading
// them (-Q skips the kernel, -K the cache). Debian 12's parser (AppArmor 3.0) predates the
// `userns` rule Ubuntu 24.04 needs, so there the nsjail profile is checked with it masked.
const deployDir = path.resolve("deploy/apparmor");
const major = await parserMajor();

function compile(file: string): { ok: boolean; out: string } {
  const r = spawnSync(APPARMOR_PARSER, ["-Q", "-K", "-I", "/etc/apparmor.d", file], { encoding: "utf8" });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

describe(`AppArmor profiles, compiled with apparmor_parser ${major ?? "(missing: apt-get install apparmor)"}`, () => {
  it.each(APPARMOR_PROFILES.map((p) => [p]))("%s compiles", async (name) => {
    expect(major, "apparmor_parser is installed by `npm run setup`").toBeDefined();
    const dir = await mkdtemp(path.join(tmpdir(), "corral-apparmor-"));
    const text = await renderProfile(deployDir, name, "/opt/corral/.nsjail/nsjail/bin/nsjail", major!);
    if (/userns, \(masked/.test(text))
      console.log(`apparmor: ${name} checked with its userns rule MASKED (parser ${major} predates the rule)`);
    await writeFile(path.join(dir, name), text);
    const r = compile(path.join(dir, name));
    expect(r.ok, r.out).toBe(true);
  });

  it("fails a profile with a mistake (the check can fail)", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "corral-apparmor-"));
    await writeFile(path.join(dir, "bad"), "profile corral-bad { no_such_rule, }\n");
    expect(compile(path.join(dir, "bad")).ok).toBe(false);
  });

  it("attaches to the pinned nsjail's path, quoted, grants it user namespaces, and stacks corral-job", async () => {
    const text = await renderProfile(deployDir, "corral-nsjail", "/srv/my corral/nsjail", 4);
    expect(text).toMatch(/^@\{CORRAL_NSJAIL\} = "\/srv\/my corral\/nsjail"$/m);
    expect(text).toMatch(/^\s*userns,$/m);
    // Enforcing: an unconfined-flagged profile ignores its exec rules (deploy/apparmor/lab/).
    expect(text).not.toMatch(/flags=\(.*unconfined/);
    // Every exec is a stack naming this profile: under no_new_privs the kernel refuses a plain
    // transition, and the job would not start.
    const execs = text.split("\n").filter((l) => /^\s*[^#\s].*\bp?i?x\b.*->/.test(l));
    expect(execs).toEqual(["  /** px -> corral-nsjail//&corral-job,"]);
    // The job's processes carry the stacked label: corral-job lets them signal each other by it.
    const job = await renderProfile(deployDir, "corral-job", "/x", 4);
    expect(job).toMatch(/^\s*signal \(send, receive\) peer="corral-job\/\/&corral-nsjail",$/m);
  });
});
