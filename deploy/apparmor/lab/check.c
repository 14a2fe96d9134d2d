// The check program the lab runs inside nsjail (as the jailed program). One line per check:
//   CHECK <name> <succeeded|failed> (<errno>) -> PASS|FAIL
// then "SUMMARY pass=N fail=M" and "DONE"; exits 1 if any check failed.
// `check nosec` adds ptrace, mount and umount (the default seccomp policy kills those calls,
// so they reach AppArmor only in a run without seccomp).
// Built statically by run.sh: gcc -static -O2 -o check check.c
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef EXPECT_LABEL
#define EXPECT_LABEL "corral-job//&corral-nsjail (enforce)"
#endif

static int passed, failed;

static void res_detail(const char *name, int ok, const char *detail, int expect_ok) {
  int pass = (ok != 0) == (expect_ok != 0);
  printf("CHECK %-40s %s (%s) -> %s\n", name, ok ? "succeeded" : "failed", detail, pass ? "PASS" : "FAIL");
  if (pass) passed++; else failed++;
}

static void res(const char *name, int ok, int err, int expect_ok) {
  res_detail(name, ok, ok ? "-" : err ? strerror(err) : "no errno", expect_ok);
}

static void res_exit(const char *name, int status, int expect_ok) {
  char d[32];
  snprintf(d, sizeof d, "exit status %d", status);
  res_detail(name, status == 0, d, expect_ok);
}

static void res_label(const char *name, const char *label) {
  int pass = strcmp(label, EXPECT_LABEL) == 0;
  printf("CHECK %-40s \"%s\" -> %s\n", name, label, pass ? "PASS" : "FAIL");
  if (pass) passed++; else failed++;
}

static void read_label(const char *path, char *buf, size_t len) {
  buf[0] = 0;
  int fd = open(path, O_RDONLY);
  if (fd < 0) { snprintf(buf, len, "open %s: %s", path, strerror(errno)); return; }
  ssize_t n = read(fd, buf, len - 1);
  if (n < 0) { snprintf(buf, len, "read %s: %s", path, strerror(errno)); n = strlen(buf); }
  buf[n] = 0;
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == 0)) buf[--n] = 0;
  close(fd);
}

static void write_check(const char *name, const char *path, int expect_ok) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  int err = errno;
  int ok = fd >= 0 && write(fd, "x\n", 2) == 2;
  if (fd >= 0 && !ok) err = errno;
  res(name, ok, err, expect_ok);
  if (fd >= 0) close(fd);
}

static void read_check(const char *name, const char *path) {
  int fd = open(path, O_RDONLY);
  res(name, fd >= 0, errno, 1);
  if (fd >= 0) close(fd);
}

static void on_alarm(int s) { (void)s; }

// Waits up to 3 s for pid; returns its wait status, or -1 on timeout or error.
static int wait_child(pid_t pid) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;  // no SA_RESTART: the alarm interrupts waitpid
  sigaction(SIGALRM, &sa, 0);
  int st;
  alarm(3);
  pid_t r = waitpid(pid, &st, 0);
  alarm(0);
  return r == pid ? st : -1;
}

static pid_t idle_child(void) {
  fflush(stdout);
  pid_t c = fork();
  if (c == 0) { for (;;) pause(); }
  usleep(100000);
  return c;
}

// The job signals its own child: kill() must succeed and the child must die of that signal.
static void signal_check(const char *name, int sig) {
  pid_t c = idle_child();
  if (c < 0) { res(name, 0, errno, 1); return; }
  int r = kill(c, sig);
  int err = errno;
  int st = r == 0 ? wait_child(c) : -1;
  int ok = r == 0 && st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == sig;
  if (r == 0 && !ok) { printf("  (kill returned 0 but the child did not die of signal %d)\n", sig); err = 0; }  // "no errno"
  res(name, ok, err, 1);
  if (!ok) kill(c, SIGKILL);  // if even that is refused, nsjail's pid namespace ends it
}

// Runs argv in a child; returns its exit status (or -1), its stdout in out.
static int run_child(char *const argv[], char *out, size_t len) {
  int p[2];
  if (pipe(p) < 0) return -1;
  fflush(stdout);
  pid_t c = fork();
  if (c < 0) return -1;
  if (c == 0) {
    dup2(p[1], 1);
    close(p[0]);
    close(p[1]);
    execv(argv[0], argv);
    _exit(127);
  }
  close(p[1]);
  size_t n = 0;
  ssize_t k;
  while (n < len - 1 && (k = read(p[0], out + n, len - 1 - n)) > 0) n += k;
  out[n] = 0;
  while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == 0)) out[--n] = 0;
  close(p[0]);
  int st = wait_child(c);
  return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(int argc, char **argv) {
  int nosec = argc > 1 && strcmp(argv[1], "nosec") == 0;
  char buf[512];
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("uid=%d gid=%d pid=%d no_new_privs=%d mode=%s\n", getuid(), getgid(), getpid(),
         prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), nosec ? "nosec" : "seccomp");

  read_label("/proc/self/attr/current", buf, sizeof buf);
  printf("LABEL %s\n", buf);
  res_label("label of the job", buf);

  int s = socket(AF_INET, SOCK_STREAM, 0);
  res("socket(AF_INET) refused", s >= 0, errno, 0);
  if (s >= 0) close(s);
  s = socket(AF_INET6, SOCK_DGRAM, 0);
  res("socket(AF_INET6) refused", s >= 0, errno, 0);
  if (s >= 0) close(s);
  s = socket(AF_NETLINK, SOCK_RAW, 0);
  res("socket(AF_NETLINK) refused", s >= 0, errno, 0);
  if (s >= 0) close(s);
  int sv[2];
  int r = socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  res("socketpair(AF_UNIX) works", r == 0, errno, 1);
  if (r == 0) { close(sv[0]); close(sv[1]); }

  write_check("write /workspace/out works", "/workspace/out", 1);
  write_check("write /tmp/out works", "/tmp/out", 1);
  // /rwother is a read-write bind the job's uid owns: only AppArmor can refuse it.
  write_check("write /rwother/out refused", "/rwother/out", 0);
  read_check("read /workspace/input.txt works", "/workspace/input.txt");
  read_check("read /usr/bin/busybox works", "/usr/bin/busybox");

  signal_check("kill(own child, SIGTERM) works", SIGTERM);
  signal_check("kill(own child, SIGKILL) works", SIGKILL);

  if (nosec) {
    pid_t c = idle_child();
    r = ptrace(PTRACE_ATTACH, c, 0, 0);
    res("ptrace(ATTACH own child) refused", r == 0, errno, 0);
    if (r == 0) ptrace(PTRACE_DETACH, c, 0, 0);
    kill(c, SIGKILL);
    wait_child(c);
    r = mount("none", "/tmp", "tmpfs", 0, 0);
    res("mount(tmpfs on /tmp) refused", r == 0, errno, 0);
    r = umount2("/tmp", MNT_DETACH);
    res("umount(/tmp) refused", r == 0, errno, 0);
  }

  // A child that execs: the label must survive exec inside the job (corral-job's `rix`).
  char out[512];
  char *cat[] = {"/usr/bin/busybox", "cat", "/proc/self/attr/current", 0};
  r = run_child(cat, out, sizeof out);
  printf("CHILD LABEL %s\n", out);
  res_label("label of an exec'd child", r == 0 ? out : "(child failed)");
  char *sh_ok[] = {"/usr/bin/busybox", "sh", "-c", "echo hi > /workspace/child && echo hi > /tmp/child", 0};
  r = run_child(sh_ok, out, sizeof out);
  res_exit("child shell writes /workspace, /tmp", r, 1);
  char *sh_no[] = {"/usr/bin/busybox", "sh", "-c", "echo hi > /rwother/child", 0};
  r = run_child(sh_no, out, sizeof out);
  res_exit("child shell write /rwother refused", r, 0);

  printf("SUMMARY pass=%d fail=%d\n", passed, failed);
  printf("DONE\n");
  return failed ? 1 : 0;
}
