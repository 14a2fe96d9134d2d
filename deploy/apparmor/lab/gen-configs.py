#!/usr/bin/env python3
"""Writes the lab's nsjail configs, mirroring server/src/sandbox/nsjail/build-config.ts.

Usage: gen-configs.py OUT_DIR KAFEL_FILE

Six configs: {direct,holder}-{seccomp,nosec}.cfg run /opt/lab/check; {direct,holder}-sleep.cfg
run `sleep 3`, so that init.sh can see with ps which label nsjail and its job run under.
  direct: nsjail started by the unprivileged user itself (ids mapped to themselves).
  holder: nsjail entered into an `unshare --user --map-root-user --mount` holder with nsenter;
          the jail's 1000 maps to the holder's 0 (the user's own uid on the host), as Corral's
          jailIds do.
  seccomp: Corral's default Kafel policy; nosec: none, so that ptrace and mount reach AppArmor.
"""
import os
import sys


def q(value):
    """Text-protobuf string literal (same escaping as build-config.ts quote())."""
    out = '"'
    for b in value.encode():
        if b in (0x22, 0x5C):
            out += "\\" + chr(b)
        elif 0x20 <= b < 0x7F:
            out += chr(b)
        else:
            out += "\\%03o" % b
    return out + '"'


MASKED_PROC_FILES = ["/proc/cmdline", "/proc/kallsyms", "/proc/modules", "/proc/kcore", "/proc/keys",
                     "/proc/key-users", "/proc/timer_list", "/proc/sched_debug", "/proc/latency_stats",
                     "/proc/sysrq-trigger"]
MASKED_PROC_DIRS = ["/proc/acpi", "/proc/scsi", "/proc/bus", "/proc/irq"]


def config(workspace, jail_ids, kafel, exec_path, argv):
    lines = ['name: "corral"', "mode: ONCE", 'hostname: "corral"', 'cwd: "/workspace"', "time_limit: 0",
             "log_level: INFO", "clone_newnet: true", "clone_newuser: true", "clone_newns: true",
             "clone_newpid: true", "clone_newipc: true", "clone_newuts: true", "clone_newcgroup: true"]
    if jail_ids:
        lines += ['uidmap { inside_id: "1000" outside_id: "0" count: 1 }',
                  'gidmap { inside_id: "1000" outside_id: "0" count: 1 }']
    lines += ["keep_env: false", "keep_caps: false", "disable_no_new_privs: false"]
    if kafel is not None:
        lines.append("seccomp_string: " + q(kafel))
    lines += ["nice_level: 0", "rlimit_as_type: HARD", "rlimit_nproc_type: HARD", "rlimit_core: 0",
              "rlimit_cpu: 10", "rlimit_fsize: 64", "rlimit_nofile: 1024", "rlimit_stack_type: VALUE",
              "rlimit_stack: 8"]
    for e in ["PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8", "TMPDIR=/tmp"]:
        lines.append("envar: " + q(e))
    lines.append('mount { dst: "/proc" fstype: "proc" rw: false }')
    lines += ['mount { src: "/dev/null" dst: %s is_bind: true rw: false mandatory: false }' % q(f)
              for f in MASKED_PROC_FILES]
    lines += ['mount { dst: %s fstype: "tmpfs" options: "size=0" rw: false mandatory: false }' % q(d)
              for d in MASKED_PROC_DIRS]
    # The profile's mounts: /usr read-only plus the merged-/usr symlinks, as the shipped profiles.
    lines += ['mount { src: "/usr" dst: "/usr" is_bind: true rw: false }',
              'mount { src: "usr/bin" dst: "/bin" is_symlink: true }',
              'mount { src: "usr/lib" dst: "/lib" is_symlink: true }',
              'mount { src: "usr/lib64" dst: "/lib64" is_symlink: true }']
    for dev, rw in [("/dev/null", True), ("/dev/zero", True), ("/dev/full", True), ("/dev/random", False),
                    ("/dev/urandom", False)]:
        lines.append('mount { src: %s dst: %s is_bind: true rw: %s }' % (q(dev), q(dev), "true" if rw else "false"))
    lines.append('mount { src: "/opt/lab" dst: "/opt/lab" is_bind: true rw: false }')
    # A writable place that is neither /workspace nor /tmp: corral-job must refuse writes there.
    lines.append('mount { src: "/home/corral/other" dst: "/rwother" is_bind: true rw: true }')
    lines.append('mount { src: %s dst: "/workspace" is_bind: true rw: true }' % q(workspace))
    lines.append('mount { dst: "/tmp" fstype: "tmpfs" options: "size=67108864,nr_inodes=16384,mode=1777" rw: true }')
    args = " ".join(("arg0: " if i == 0 else "arg: ") + q(a) for i, a in enumerate(argv))
    lines.append("exec_bin { path: %s %s }" % (q(exec_path), args))
    return "\n".join(lines) + "\n"


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: gen-configs.py OUT_DIR KAFEL_FILE")
    out, kafel_file = sys.argv[1], sys.argv[2]
    kafel = open(kafel_file, encoding="utf-8").read()
    os.makedirs(out, exist_ok=True)
    for scen, workspace, jail_ids in [("direct", "/home/corral/ws", False), ("holder", "/home/corral/hws/work", True)]:
        for sec in ("seccomp", "nosec"):
            argv = ["check"] if sec == "seccomp" else ["check", "nosec"]
            with open(os.path.join(out, "%s-%s.cfg" % (scen, sec)), "w") as f:
                f.write(config(workspace, jail_ids, kafel if sec == "seccomp" else None, "/opt/lab/check", argv))
        with open(os.path.join(out, "%s-sleep.cfg" % scen), "w") as f:
            f.write(config(workspace, jail_ids, kafel, "/usr/bin/busybox", ["sleep", "3"]))


if __name__ == "__main__":
    main()
