#!/usr/bin/env bash
# Installs missing Debian packages, configures (once) and builds imbridge into
# build/ with Ninja. Extra arguments are passed to ninja (targets).
# With CI=1 (.ci/run sets it) the build keeps only line tables (-g1) instead
# of full debug info: the same code (-O2, assertions off), backtraces still
# name file:line; and the tests' own code (tests/) is compiled at -O0 -g0
# and linked with lld (IMBRIDGE_QUICK_TEST_BUILD): every test still builds
# and runs against the -O2 libraries and binaries that ship. Both take less
# time (.ci/run says how much).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/install-deps.sh"
build="${IMBRIDGE_BUILD_DIR:-$root/build}"
cmake_args=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMBRIDGE_WERROR=ON)
if [ "${CI:-}" = 1 ]; then
  cmake_args+=("-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG"
    -DIMBRIDGE_QUICK_TEST_BUILD=ON)
fi
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" "${cmake_args[@]}" >/dev/null
fi
ninja -C "$build" "$@"
