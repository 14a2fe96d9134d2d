#!/usr/bin/env bash
# AppArmor lab: proves, in a Debian 12 guest (kernel 6.1, AppArmor 3.0) booted under qemu, that
# the repository's profiles (deploy/apparmor/corral-job, corral-nsjail) put every program nsjail
# runs under the stacked label `corral-job//&corral-nsjail (enforce)`, and that the label holds:
# no network sockets, no writes outside /workspace and /tmp, no ptrace, no mount, while the
# job's own processes may still signal each other. See README.md.
#
#   sudo deploy/apparmor/lab/run.sh               # build the guest if needed, boot it, check
#   sudo deploy/apparmor/lab/run.sh --build-only  # only build or refresh the guest's disk
#
# Environment:
#   LAB_DIR       work folder (default /var/tmp/corral-apparmor-lab); the guest's root file
#                 system is kept there in root/ and reused; delete the folder to rebuild it.
#   PROFILES_DIR  where corral-job and corral-nsjail are read (default REPO/deploy/apparmor)
#   NSJAIL_DIR    the pinned nsjail tree (default REPO/.nsjail, from scripts/install-nsjail.sh)
#   MIRROR        Debian mirror for debootstrap (default http://deb.debian.org/debian)
#   LAB_TIMEOUT   seconds the guest may run (default 900)
#
# Exits 0 only if every check in the guest passed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$(dirname "$0")/../../.." && pwd)
LAB_DIR=${LAB_DIR:-/var/tmp/corral-apparmor-lab}
PROFILES_DIR=${PROFILES_DIR:-$REPO/deploy/apparmor}
NSJAIL_DIR=${NSJAIL_DIR:-$REPO/.nsjail}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
LAB_TIMEOUT=${LAB_TIMEOUT:-900}
KAFEL=$REPO/sandbox-profiles/seccomp/default.kafel
ROOTFS=$LAB_DIR/root
IMAGE=$LAB_DIR/image.ext4
# Inside the guest: the profile's default @{CORRAL_NSJAIL}, as `corral setup-host` would write it.
GUEST_NSJAIL_DIR=/opt/corral/.nsjail
GUEST_NSJAIL=$GUEST_NSJAIL_DIR/nsjail/bin/nsjail
# The guest's packages. nsjail needs libstdc++6, libgcc-s1, zlib1g and libc6 (it vendors libnl
# and libprotobuf); the checks need busybox, util-linux (setpriv, unshare, nsenter), procps
# (ps -o label), uidmap; the kernel and its initrd come with linux-image-amd64.
PACKAGES=linux-image-amd64,apparmor,busybox,util-linux,uidmap,libstdc++6,libgcc-s1,zlib1g,kmod,systemd-sysv,procps

build_only=0
case "${1:-}" in
  --build-only) build_only=1 ;;
  "") ;;
  *) echo "usage: $0 [--build-only]" >&2; exit 2 ;;
esac

say() { printf 'apparmor-lab: %s\n' "$*"; }
die() { printf 'apparmor-lab: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root: sudo $0"
for f in "$PROFILES_DIR/corral-job" "$PROFILES_DIR/corral-nsjail" "$KAFEL"; do
  [ -f "$f" ] || die "missing $f"
done
[ -x "$NSJAIL_DIR/nsjail/bin/nsjail" ] || die "no nsjail in $NSJAIL_DIR: run scripts/install-nsjail.sh first"

# 1. Host tools.
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v debootstrap >/dev/null || need+=(debootstrap)
{ command -v mkfs.ext4 && command -v debugfs; } >/dev/null || need+=(e2fsprogs)
command -v gcc >/dev/null || need+=(gcc)
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || need+=(libc6-dev)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# 2. The guest's root file system: debootstrap once, reused while the package list is the same.
mkdir -p "$LAB_DIR"
stamp=$ROOTFS/.corral-lab-packages
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$PACKAGES" ]; then
  say "debootstrap Debian 12 into $ROOTFS (a few minutes; log: $LAB_DIR/debootstrap.log)"
  rm -rf "$ROOTFS" "$ROOTFS.new"
  debootstrap --variant=minbase --include="$PACKAGES" bookworm "$ROOTFS.new" "$MIRROR" \
    >"$LAB_DIR/debootstrap.log" 2>&1 || die "debootstrap failed; see $LAB_DIR/debootstrap.log"
  chroot "$ROOTFS.new" useradd --create-home --uid 1000 --shell /bin/sh corral
  echo corral-lab >"$ROOTFS.new/etc/hostname"
  echo "$PACKAGES" >"$ROOTFS.new/.corral-lab-packages"
  mv "$ROOTFS.new" "$ROOTFS"
fi
kernel=$(ls "$ROOTFS"/boot/vmlinuz-* | sort -V | tail -1)
initrd=$(ls "$ROOTFS"/boot/initrd.img-* | sort -V | tail -1)
[ -f "$kernel" ] && [ -f "$initrd" ] || die "no kernel or initrd in $ROOTFS/boot"

# 3. This run's files: nsjail, the check program, the rendered profiles, the configs, init.
rm -rf "$ROOTFS/lab" "$ROOTFS/opt/lab" "$ROOTFS/opt/corral"
mkdir -p "$ROOTFS/lab/profiles" "$ROOTFS/opt/lab" "$ROOTFS/opt/corral"
cp -a "$NSJAIL_DIR" "$ROOTFS$GUEST_NSJAIL_DIR"
gcc -static -O2 -Wall -o "$ROOTFS/opt/lab/check" "$here/check.c"
python3 "$here/gen-configs.py" "$ROOTFS/lab/cfg" "$KAFEL"
install -m 0755 "$here/init.sh" "$ROOTFS/lab/init.sh"

# Rendered as server/src/sandbox/apparmor.ts renderProfile does: the nsjail path filled in,
# `userns,` masked where the guest's parser is older than 4.0.
major=$(chroot "$ROOTFS" /usr/sbin/apparmor_parser --version | sed -n 's/.*version \([0-9][0-9]*\)\..*/\1/p' | head -1)
[ -n "$major" ] || die "cannot read the guest's apparmor_parser version"
for p in corral-job corral-nsjail; do
  sed -E "s|^@\\{CORRAL_NSJAIL\\} = .*\$|@{CORRAL_NSJAIL} = \"$GUEST_NSJAIL\"|" "$PROFILES_DIR/$p" |
    if [ "$major" -lt 4 ]; then sed -E 's/^([[:space:]]*)userns,/\1# userns, (masked: AppArmor parser older than 4.0)/'; else cat; fi \
      >"$ROOTFS/lab/profiles/$p"
done
say "profiles from $PROFILES_DIR (guest parser $major.x), nsjail from $NSJAIL_DIR"

rm -f "$IMAGE"
mkfs.ext4 -q -F -d "$ROOTFS" "$IMAGE" 3G
if [ "$build_only" = 1 ]; then
  say "guest disk ready: $IMAGE"
  exit 0
fi

# 4. Boot. TCG, not KVM: nested KVM on the hosts this was written on fails with
#    "failed to set MSR 0x10a". The guest's init runs the checks and powers off.
say "booting the guest (qemu TCG; about 35 s on 2 cores; console: $LAB_DIR/boot.log)"
start=$(date +%s)
rc=0
timeout "$LAB_TIMEOUT" qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 2048 -nographic -no-reboot \
  -kernel "$kernel" -initrd "$initrd" \
  -append "root=/dev/vda rw console=ttyS0 loglevel=4 apparmor=1 security=apparmor init=/lab/init.sh" \
  -drive "file=$IMAGE,format=raw,if=virtio" >"$LAB_DIR/boot.log" 2>&1 || rc=$?
say "guest ran $(($(date +%s) - start)) s (qemu exit status $rc)"

# 5. Results.
results=$LAB_DIR/results.txt
debugfs -R "cat /lab/results.txt" "$IMAGE" >"$results" 2>/dev/null || true
echo
cat "$results"
echo
runs=$(grep -c '^RUN .*: PASS$' "$results" || true)
fails=$(grep -E '^RUN .*: FAIL|-> FAIL$' "$results" || true)
expected=8 # 2 profile loads, 2 ways x (seccomp, nosec, labels)
if [ ! -s "$results" ] || ! grep -q '^=== LAB END' "$results"; then
  die "FAILED: the guest produced no complete result (see $LAB_DIR/boot.log)"
elif [ -n "$fails" ] || [ "$runs" -ne "$expected" ]; then
  printf '%s\n' "$fails" >&2
  die "FAILED: $runs of $expected runs passed (results: $results)"
fi
say "PASSED: all $expected runs (results: $results)"
