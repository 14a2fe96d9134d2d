import { describe, expect, it } from "vitest";
import { buildNsjailConfig, quote } from "../../server/src/sandbox/nsjail/build-config.js";

describe("quote", () => {
  it.each([
    ["plain", '"plain"'],
    ['say "hi"', '"say \\"hi\\""'],
    ["back\\slash", '"back\\\\slash"'],
    ["line\nbreak", '"line\\012break"'],
    ["é", '"\\303\\251"'],
  ])("%j -> %s", (input, want) => {
    expect(quote(input)).toBe(want);
  });
});

describe("buildNsjailConfig", () => {
  const config = buildNsjailConfig({
    execPath: "/usr/bin/sh",
    argv: ["sh", "-c", 'echo "$X"'],
    env: { PATH: "/usr/bin", X: "a b" },
    mounts: [
      { type: "bind", src: "/usr", dst: "/usr", rw: false, why: "" },
      { type: "symlink", src: "usr/bin", dst: "/bin", why: "" },
    ],
    workspaceDir: "/scratch/job-1/work",
    workdir: "/workspace",
    tmpBytes: 1048576,
    tmpInodes: 100,
    rlimits: { cpuSeconds: 3, fileSizeMiB: 64, openFiles: 256, stackMiB: 8 },
    seccompPolicy: "POLICY p {\n  KILL { ptrace }\n}\nUSE p DEFAULT ALLOW\n",
  });
  const lines = config.split("\n");

  it("writes nsjail 3.6's non-zero proto2 defaults explicitly", () => {
    // time_limit defaults to 600 s, rlimit_fsize to 1 MiB, rlimit_nofile to 32, nice to 19,
    // rlimit_stack_type to SOFT (the value ignored).
    for (const line of [
      "time_limit: 0",
      "rlimit_fsize: 64",
      "rlimit_nofile: 256",
      "rlimit_cpu: 3",
      "rlimit_stack: 8",
      "rlimit_stack_type: VALUE",
      "nice_level: 0",
      "rlimit_as_type: HARD",
      "keep_env: false",
    ])
      expect(lines).toContain(line);
  });

  it("asks for every namespace", () => {
    for (const ns of ["net", "user", "ns", "pid", "ipc", "uts", "cgroup"])
      expect(lines).toContain(`clone_new${ns}: true`);
  });

  it("mounts in order: /proc, the profile's, the workspace, then /tmp", () => {
    const mounts = lines.filter((l) => l.startsWith("mount {") && !l.includes('dst: "/proc/'));
    expect(mounts).toEqual([
      'mount { dst: "/proc" fstype: "proc" rw: false }',
      'mount { src: "/usr" dst: "/usr" is_bind: true rw: false }',
      'mount { src: "usr/bin" dst: "/bin" is_symlink: true }',
      'mount { src: "/scratch/job-1/work" dst: "/workspace" is_bind: true rw: true }',
      'mount { dst: "/tmp" fstype: "tmpfs" options: "size=1048576,nr_inodes=100,mode=1777" rw: true }',
    ]);
  });

  it("carries the seccomp policy as one quoted string", () => {
    expect(lines).toContain('seccomp_string: "POLICY p {\\012  KILL { ptrace }\\012}\\012USE p DEFAULT ALLOW\\012"');
  });

  it("passes argv and env as given, each variable with its '='", () => {
    expect(lines).toContain('exec_bin { path: "/usr/bin/sh" arg0: "sh" arg: "-c" arg: "echo \\"$X\\"" }');
    expect(lines).toContain('envar: "X=a b"');
  });
});
