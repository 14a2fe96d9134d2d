import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Status } from "@corral/client";
import { collect, job, startTestService, type TestService } from "../support/service.js";

// Each case is a small program that tries one forbidden thing from inside a real sandbox of
// the real service. python3 with ctypes makes the raw calls (the default profile has no C
// compiler); machine code in an executable page makes the 32-bit and x32 calls.
let t: TestService;
beforeAll(async () => {
  t = await startTestService();
});
afterAll(async () => {
  await t?.stop();
});

const libc = "import ctypes, ctypes.util; libc = ctypes.CDLL(None, use_errno=True)";
const raw = (code: string) =>
  [
    "import ctypes, mmap",
    "m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)",
    `m.write(${code})`,
    "f = ctypes.CFUNCTYPE(ctypes.c_long)(ctypes.addressof(ctypes.c_char.from_buffer(m)))",
    "print('returned', f())",
  ].join("\n");

describe("the default seccomp policy", () => {
  it.each([
    ["unshare(CLONE_NEWUSER): a nested user namespace", `${libc}\nprint(libc.unshare(0x10000000))`],
    ["clone(CLONE_NEWUSER) through the raw syscall", `${libc}\nprint(libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0))`],
    ["clone(CLONE_NEWNET)", `${libc}\nprint(libc.syscall(56, 0x40000000 | 17, 0, 0, 0, 0))`],
    ["setns", `${libc}\nprint(libc.setns(0, 0))`],
    ["mount a tmpfs", `${libc}\nprint(libc.mount(b"none", b"/tmp", b"tmpfs", 0, None))`],
    ["umount2 of /proc", `${libc}\nprint(libc.umount2(b"/proc", 2))`],
    ["fsopen (the new mount API)", `${libc}\nprint(libc.syscall(430, b"tmpfs", 0))`],
    ["ptrace(PTRACE_TRACEME)", `${libc}\nprint(libc.ptrace(0, 0, 0, 0))`],
    ["process_vm_readv", `${libc}\nprint(libc.syscall(310, 1, 0, 0, 0, 0, 0))`],
    ["bpf", `${libc}\nprint(libc.syscall(321, 0, 0, 0))`],
    ["perf_event_open", `${libc}\nprint(libc.syscall(298, 0, 0, -1, -1, 0))`],
    ["keyctl", `${libc}\nprint(libc.syscall(250, 0, 0, 0, 0, 0))`],
    ["userfaultfd", `${libc}\nprint(libc.syscall(323, 0))`],
    ["io_uring_setup", `${libc}\nprint(libc.syscall(425, 8, 0))`],
    ["personality(ADDR_NO_RANDOMIZE)", `${libc}\nprint(libc.personality(0x0040000))`],
    ["clock_settime", `${libc}\nprint(libc.syscall(227, 0, 0))`],
    ["reboot", `${libc}\nprint(libc.syscall(169, 0, 0, 0, 0))`],
    ["a 32-bit call through int 0x80 (getpid)", raw(String.raw`b"\xb8\x14\x00\x00\x00\xcd\x80\xc3"`)],
    ["an x32 call (getpid | 0x40000000)", raw(String.raw`b"\xb8\x27\x00\x00\x40\x0f\x05\xc3"`)],
  ])("kills %s with the forbidden-syscall outcome", async (_name, program) => {
    const r = await collect(t.client, job(["python3", "-c", program]));
    expect(r.stdout, "the call must not return").toBe("");
    expect(r.finished.outcome).toMatchObject({ status: Status.STATUS_FORBIDDEN_SYSCALL, signal: 31 });
    expect(r.finished.outcome?.detail).toMatch(/^forbidden system call/);
  });

  it("answers clone3 with ENOSYS, and threads still start through clone", async () => {
    const program = [
      libc,
      "r = libc.syscall(435, 0, 0)",
      "print(r, ctypes.get_errno())",
      "import threading",
      "t = threading.Thread(target=lambda: print('thread ran')); t.start(); t.join()",
    ].join("\n");
    const r = await collect(t.client, job(["python3", "-c", program]));
    expect(r.stdout).toBe("-1 38\nthread ran\n");
    expect(r.finished.outcome?.status).toBe(Status.STATUS_EXITED_ZERO);
  });

  it("allows the harmless personality query and a plain 64-bit call", async () => {
    const r = await collect(
      t.client,
      job([
        "python3",
        "-c",
        `${libc}\nprint(libc.personality(0xffffffff))\n${raw(String.raw`b"\xb8\x27\x00\x00\x00\x0f\x05\xc3"`)}`,
      ]),
    );
    expect(r.stdout).toBe("0\nreturned 1\n");
  });
});

describe("policies at start-up", () => {
  it("refuses to start with a policy that does not compile, naming the profile and the file", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "corral-profiles-"));
    await mkdir(path.join(dir, "seccomp"));
    await writeFile(
      path.join(dir, "seccomp", "broken.kafel"),
      "POLICY p { KILL { no_such_call } }\nUSE p DEFAULT ALLOW\n",
    );
    const profile = JSON.parse(await readFile("sandbox-profiles/default.json", "utf8")) as object;
    await writeFile(
      path.join(dir, "strict.json"),
      JSON.stringify({ ...profile, seccompPolicy: "seccomp/broken.kafel" }),
    );
    await expect(startTestService({ CORRAL_PROFILES_DIR: dir })).rejects.toThrow(
      /strict\.json: seccompPolicy seccomp\/broken\.kafel does not compile: .*no_such_call/,
    );
  });
});
