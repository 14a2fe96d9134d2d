import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { limits, Status, type Limits } from "@corral/client";
import { collect, job, startTestService, type TestService } from "../support/service.js";

// Hostile programs. Each tries one thing and prints "BREACH: ..." if it got through, or
// "safe: ..." if it did not (a program the sandbox kills prints nothing, which is safe too).
// Every case runs through the real service; then the same programs run once outside any
// sandbox, directly as the test user (the control run), to prove they can report a breach
// where the host allows the thing they try. The control is a test fixture, never a product switch.

interface Case {
  readonly name: string;
  readonly program: string;
  /** Whether the host, outside a sandbox, lets the test user do this (the control run expects a breach). */
  readonly hostAllows: boolean;
  readonly limits?: Partial<Limits>;
}

const secret = `corral-secret-${randomBytes(6).toString("hex")}`;
const marker = `corral-daemon-${randomBytes(6).toString("hex")}`;
const abstract = `corral-abstract-${randomBytes(6).toString("hex")}`;
const canary = path.join(tmpdir(), `corral-canary-${randomBytes(6).toString("hex")}`);
let hostSleep: ChildProcess;
let tcp: Server;
let unix: ChildProcess;
let tcpPort = 0;

// Values known only once the fixtures run (a pid, a port) arrive as argv: pid=N port=N.
const py = (body: string) =>
  `import os, sys, socket, ctypes, errno\nARG = dict(a.split("=", 1) for a in sys.argv[1:])\n${body}`;
const args = (): string[] => [`pid=${hostSleep.pid}`, `port=${tcpPort}`];

const cases: Case[] = [
  {
    name: "read a host file outside the mounts (a canary)",
    hostAllows: true,
    program: py(`
try:
    print("BREACH: read", open(${JSON.stringify(canary)}).read())
except OSError as e:
    print("safe:", e)`),
  },
  {
    name: "write into a read-only mount",
    hostAllows: false,
    program: py(`
try:
    open("/usr/corral-was-here", "w").write("x"); print("BREACH: wrote /usr")
except OSError as e:
    print("safe:", e)`),
  },
  {
    name: "see and signal a process the test started on the host",
    hostAllows: true,
    program: py(`
try:
    os.kill(int(ARG["pid"]), 0); print("BREACH: host pid", ARG["pid"], "is reachable")
except OSError as e:
    print("safe:", e)`),
  },
  {
    name: "reach a TCP listener on the host's loopback",
    hostAllows: true,
    program: py(`
try:
    socket.create_connection(("127.0.0.1", int(ARG["port"])), timeout=2); print("BREACH: connected")
except OSError as e:
    print("safe:", e)`),
  },
  {
    name: "reach a host abstract unix socket",
    hostAllows: true,
    program: py(`
s = socket.socket(socket.AF_UNIX)
try:
    s.connect("\\0${abstract}"); print("BREACH: connected")
except OSError as e:
    print("safe:", e)`),
  },
  {
    name: "create a user namespace (to mount cgroupfs and raise its own limits)",
    hostAllows: true,
    program: py(`
libc = ctypes.CDLL(None, use_errno=True)
r = libc.unshare(0x10000000 | 0x20000)
print("BREACH: unshare(CLONE_NEWUSER|CLONE_NEWNS) succeeded" if r == 0 else "safe: unshare failed %d" % ctypes.get_errno())`),
  },
  {
    name: "mount a tmpfs",
    hostAllows: false,
    program: py(`
libc = ctypes.CDLL(None, use_errno=True)
r = libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)
print("BREACH: mounted" if r == 0 else "safe: mount failed %d" % ctypes.get_errno())`),
  },
  {
    name: "ptrace (PTRACE_TRACEME)",
    hostAllows: true,
    program: py(`
libc = ctypes.CDLL(None, use_errno=True)
r = libc.ptrace(0, 0, 0, 0)
print("BREACH: ptrace worked" if r == 0 else "safe: ptrace failed %d" % ctypes.get_errno())`),
  },
  {
    name: "a 32-bit system call through int 0x80",
    hostAllows: true,
    program: py(`
import mmap
m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
m.write(b"\\xb8\\x14\\x00\\x00\\x00\\xcd\\x80\\xc3")
r = ctypes.CFUNCTYPE(ctypes.c_long)(ctypes.addressof(ctypes.c_char.from_buffer(m)))()
print("BREACH: int 0x80 getpid returned %d" % r if r > 0 else "safe: %d" % r)`),
  },
  {
    name: "overwrite its own binary through /proc/self/exe",
    hostAllows: false,
    program: py(`
try:
    open("/proc/self/exe", "r+b").write(b"\\0"); print("BREACH: wrote its own binary")
except OSError as e:
    print("safe:", e)`),
  },
  {
    name: "read the service's environment",
    hostAllows: true,
    program: py(`
seen = [k for k, v in os.environ.items() if ${JSON.stringify(secret)} in v]
for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
    try:
        if ${JSON.stringify(secret)}.encode() in open("/proc/%s/environ" % pid, "rb").read(): seen.append(pid)
    except OSError:
        pass
print("BREACH: secret in", seen) if seen else print("safe: no secret anywhere")
`),
  },
  {
    name: "leave a daemonized process behind",
    hostAllows: true,
    program: py(`
import subprocess
subprocess.Popen(["python3", "-c", "import time; time.sleep(120)", "${marker}"], start_new_session=True,
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print("safe: started a daemon; the test looks for it after the job")`),
  },
  {
    name: "TIOCSTI: push characters into a terminal",
    hostAllows: false,
    program: py(`
import fcntl, termios
ok = []
for fd in (0, 1, 2):
    try:
        fcntl.ioctl(fd, termios.TIOCSTI, b"x"); ok.append(fd)
    except OSError:
        pass
try:
    fcntl.ioctl(os.open("/dev/tty", os.O_RDWR), termios.TIOCSTI, b"x"); ok.append("tty")
except OSError:
    pass
print("BREACH: TIOCSTI on", ok) if ok else print("safe: no terminal to push into")`),
  },
];

/** Cases only the sandbox runs: on the bare host they would harm the machine. */
const bombs: Case[] = [
  {
    name: "fork bomb",
    hostAllows: false,
    limits: { processes: 16, wallTimeMs: 5000n },
    program: py("while True: os.fork()"),
  },
  {
    name: "memory bomb",
    hostAllows: false,
    limits: { memoryBytes: 64n << 20n },
    program: py("x = [bytearray(1 << 20) for _ in range(1 << 14)]"),
  },
  {
    name: "disk bomb in /tmp",
    hostAllows: false,
    limits: { fileSizeBytes: 1n << 30n },
    program: py(`
n = 0
try:
    with open("/tmp/fill", "wb") as f:
        while True: f.write(b"x" * (1 << 20)); f.flush(); n += 1
except OSError as e:
    print("safe: %s after %d MiB" % (errno.errorcode[e.errno], n))`),
  },
  {
    name: "inode bomb in /tmp",
    hostAllows: false,
    limits: { wallTimeMs: 20000n },
    program: py(`
n = 0
try:
    while True: open("/tmp/f%d" % n, "w").close(); n += 1
except OSError as e:
    print("safe: %s after %d files" % (errno.errorcode[e.errno], n))`),
  },
];

let t: TestService;
beforeAll(async () => {
  await writeFile(canary, "the canary's secret\n", { mode: 0o644 });
  hostSleep = spawn("sleep", ["600"], { stdio: "ignore" });
  tcp = createServer((s) => s.end());
  await new Promise<void>((r) => tcp.listen(0, "127.0.0.1", r));
  tcpPort = (tcp.address() as { port: number }).port;
  // Node cannot bind an abstract socket; python3 can.
  unix = spawn(
    "python3",
    [
      "-c",
      `import socket\ns = socket.socket(socket.AF_UNIX)\ns.bind("\\0${abstract}")\ns.listen()\nprint("up", flush=True)\nwhile True: s.accept()[0].close()`,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  await new Promise((r) => unix.stdout!.once("data", r));
  process.env.CORRAL_TEST_SECRET = secret; // the service's environment holds a secret
  t = await startTestService();
});

afterAll(async () => {
  hostSleep?.kill();
  tcp?.close();
  unix?.kill();
  spawnSync("pkill", ["-f", marker]);
  await rm(canary, { force: true });
  await t?.stop();
});

const daemonAlive = () => spawnSync("pgrep", ["-f", marker]).status === 0;

describe("hostile programs, through the real service", () => {
  it.each(cases.map((c) => [c.name, c] as const))("%s: fails safe", async (_name, c) => {
    const r = await collect(t.client, job(["python3", "-c", c.program, ...args()], { limits: limits(c.limits) }));
    expect(r.stdout, r.stderr).not.toMatch(/BREACH/);
    if (c.name.startsWith("leave a daemonized")) {
      expect(r.stdout).toMatch(/^safe: started a daemon/);
      expect(daemonAlive(), "a process outlived its job").toBe(false);
    }
  });

  it.each(bombs.map((c) => [c.name, c] as const))("%s: contained by its limit", async (_name, c) => {
    const r = await collect(t.client, job(["python3", "-c", c.program], { limits: limits(c.limits) }));
    expect(r.stdout).not.toMatch(/BREACH/);
    const status = r.finished.outcome?.status;
    if (c.name === "fork bomb") expect(status).toBe(Status.STATUS_PROCESS_LIMIT);
    if (c.name === "memory bomb") expect(status).toBe(Status.STATUS_MEMORY_LIMIT);
    // /tmp is a 64 MiB tmpfs (the default profile's tmpBytes).
    if (c.name.startsWith("disk bomb")) expect(r.stdout).toMatch(/^safe: ENOSPC after (\d|[1-5]\d|6[0-4]) MiB/);
    // ... with at most tmpInodes (16384) files in it.
    if (c.name.startsWith("inode bomb")) expect(r.stdout).toMatch(/^safe: ENOSPC after \d+ files/);
    expect(await t.leftoverCgroups()).toEqual([]);
  });
});

describe("control run: the same programs outside any sandbox, as the test user", () => {
  it.each(cases.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    const r = spawnSync("python3", ["-c", c.program, ...args()], {
      encoding: "utf8",
      timeout: 10_000,
      env: process.env,
    });
    if (c.name.startsWith("leave a daemonized")) {
      expect(daemonAlive(), "outside a sandbox the daemon survives").toBe(true);
      spawnSync("pkill", ["-f", marker]);
      return;
    }
    if (c.hostAllows) expect(r.stdout, `${r.stdout}${r.stderr}`).toMatch(/^BREACH/);
    else expect(r.stdout, `${r.stdout}${r.stderr}`).toMatch(/^safe/);
  });
});
