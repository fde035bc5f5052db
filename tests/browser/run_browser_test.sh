#!/usr/bin/env bash
# ctest's browser test of the sandbox (tests/browser/sandbox_test.js).
# Installs what it needs: Debian's chromium (when missing and installable),
# node and npm, and playwright-core from the npm registry into the build
# tree (never the source tree). Exits 77 (ctest: skipped) only when
# /usr/bin/chromium is missing and cannot be installed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source_dir="${IMBRIDGE_SOURCE_DIR:-$(cd "$here/../.." && pwd)}"
build="${IMBRIDGE_BUILD_DIR:-$source_dir/build}"
artifacts="${IMBRIDGE_ARTIFACT_DIR:-$build/tests/browser}"
chromium=/usr/bin/chromium

# apt_install PACKAGE...: installs Debian packages as root or with sudo;
# fails when neither is possible.
apt_install() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null && sudo -n true 2>/dev/null || return 1
    sudo="sudo -n"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq || return 1
  $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if [ ! -x "$chromium" ]; then
  echo "browser test: $chromium is missing; installing Debian's chromium"
  apt_install chromium || true
  if [ ! -x "$chromium" ]; then
    echo "browser test: SKIPPED: $chromium is missing and cannot be installed"
    exit 77
  fi
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "browser test: installing node and npm"
  apt_install nodejs npm || { echo "browser test: cannot install node and npm" >&2; exit 1; }
fi

# playwright-core, pinned by package-lock.json, into the build tree.
deps="$artifacts/node"
mkdir -p "$deps"
if ! cmp -s "$here/package-lock.json" "$deps/package-lock.json" ||
   [ ! -f "$deps/node_modules/playwright-core/package.json" ]; then
  cp "$here/package.json" "$here/package-lock.json" "$deps/"
  echo "browser test: installing playwright-core into $deps"
  (cd "$deps" && npm ci --no-audit --no-fund --loglevel=error \
     --cache "$artifacts/npm-cache")
fi

export IMBRIDGE_SOURCE_DIR="$source_dir" IMBRIDGE_BUILD_DIR="$build" \
  IMBRIDGE_ARTIFACT_DIR="$artifacts" IMBRIDGE_CHROMIUM="$chromium"
export NODE_PATH="$deps/node_modules"
exec node "$here/sandbox_test.js"
