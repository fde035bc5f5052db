#!/usr/bin/env bash
# The README's test command: installs what is missing, builds everything and
# runs every test (unit, integration, the Python client test) with ctest,
# in parallel. Exit status is ctest's.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${IMBRIDGE_BUILD_DIR:-$root/build}"
"$root/scripts/build.sh"
# shellcheck source=scripts/test-tmpdir.sh
. "$root/scripts/test-tmpdir.sh"
cd "$build"
ctest --output-on-failure --timeout 600 -j "$(nproc)" "$@"
