#!/usr/bin/env bash
# The README's run command: installs what is missing, builds, writes an
# example config under run/ (once) and starts the router on it in the
# foreground. Ctrl-C stops it cleanly.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${IMBRIDGE_BUILD_DIR:-$root/build}"
"$root/scripts/build.sh" imbridge-router
run="$root/run"
mkdir -p "$run/data"
if [ ! -f "$run/router.yaml" ]; then
  token="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  sed -e "s|@DATA_DIR@|$run/data|" -e "s|@TOKEN@|$token|" \
    "$root/deploy/router.example.yaml" > "$run/router.yaml"
  echo "wrote $run/router.yaml (adapter token inside; keep it private)"
fi
echo "starting imbridge-router with $run/router.yaml (Ctrl-C stops it)"
exec "$build/bridge/imbridge-router" --config "$run/router.yaml"
