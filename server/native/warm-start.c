/*
 * The first program of a warm sandbox (server/src/sandbox/warm-pool.ts): nsjail starts it,
 * with every namespace, mount, seccomp filter and rlimit already in place, before any job has
 * come. It waits for its one job on fd 4 and then becomes it with execve, so that the job's
 * program starts in a sandbox nobody used before, without waiting for nsjail to build one.
 *
 * The job arrives as NUL-terminated fields, read until the service closes fd 4:
 *   path, argc, argv[0..argc), envc, env[0..envc), cpu s, fsize bytes, nofile, stack bytes
 * The rlimits only lower those nsjail set (the server's ceilings) to the job's own.
 * fd 3 is nsjail's log: a failure here is written there in nsjail's line shape, tagged
 * [corral], which the service reads as "the program never ran" (parse-log.ts).
 * Built static by `npm run build`, so that it runs whatever a profile mounts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

enum { LOG_FD = 3, JOB_FD = 4 };

static void fail(const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  /* One line: a newline in the job's own argv must not add lines to nsjail's log. */
  for (char *c = msg; *c; c++)
    if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
  dprintf(LOG_FD, "[E][corral] warm sandbox: %s\n", msg);
  _exit(255);
}

/* The next field of the message, or a failure if there is none. */
static char *field(char **at, const char *end) {
  if (*at >= end) fail("the job message ends early");
  char *f = *at;
  char *nul = memchr(f, '\0', (size_t)(end - f));
  if (!nul) fail("the job message ends early");
  *at = nul + 1;
  return f;
}

static long number(char **at, const char *end) {
  char *f = field(at, end), *rest;
  errno = 0;
  long v = strtol(f, &rest, 10);
  if (errno || *rest || v < 0) fail("bad number '%s' in the job message", f);
  return v;
}

static void lower(int resource, const char *name, long value) {
  struct rlimit r = {(rlim_t)value, (rlim_t)value};
  if (setrlimit(resource, &r) != 0) fail("setrlimit(%s, %ld): %s", name, value, strerror(errno));
}

int main(void) {
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (!buf) fail("out of memory reading the job");
    ssize_t n = read(JOB_FD, buf + len, cap - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("reading the job: %s", strerror(errno));
    if (n == 0) break;
    len += (size_t)n;
    if (len == cap) buf = realloc(buf, cap *= 2);
  }
  close(JOB_FD);
  /* Closed without a job: the service is discarding this sandbox. */
  if (len == 0) _exit(0);

  char *at = buf, *end = buf + len;
  char *path = field(&at, end);
  long argc = number(&at, end);
  char **argv = calloc((size_t)argc + 1, sizeof *argv);
  if (!argv) fail("out of memory");
  for (long i = 0; i < argc; i++) argv[i] = field(&at, end);
  long envc = number(&at, end);
  char **envp = calloc((size_t)envc + 1, sizeof *envp);
  if (!envp) fail("out of memory");
  for (long i = 0; i < envc; i++) envp[i] = field(&at, end);
  lower(RLIMIT_CPU, "RLIMIT_CPU", number(&at, end));
  lower(RLIMIT_FSIZE, "RLIMIT_FSIZE", number(&at, end));
  lower(RLIMIT_NOFILE, "RLIMIT_NOFILE", number(&at, end));
  lower(RLIMIT_STACK, "RLIMIT_STACK", number(&at, end));

  fcntl(LOG_FD, F_SETFD, FD_CLOEXEC);
  execve(path, argv, envp);
  fail("execve('%s') failed: %s", path, strerror(errno));
}
