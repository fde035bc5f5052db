#!/usr/bin/env bash
# Installs missing Debian packages, configures (once) and builds imbridge into
# build/ with Ninja. Extra arguments are passed to ninja (targets).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/install-deps.sh"
build="${IMBRIDGE_BUILD_DIR:-$root/build}"
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMBRIDGE_WERROR=ON >/dev/null
fi
ninja -C "$build" "$@"
