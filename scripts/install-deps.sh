#!/usr/bin/env bash
# Installs the Debian bookworm packages imbridge needs to build, run and test.
# Idempotent: only packages that are missing are installed; a machine that has
# them all is left untouched (no apt-get update, no network).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libgrpc++-dev
  libabsl-dev libcurl4-openssl-dev libboost-dev libssl-dev libsqlite3-dev
  nlohmann-json3-dev libyaml-cpp-dev libgtest-dev libgmock-dev
  # The shipped processes' allocator (cmake/allocator.cmake).
  libjemalloc-dev
  # RE2's static archive: gRPC links it (cmake/static_grpc.cmake).
  libre2-dev
  python3 python3-grpcio python3-protobuf curl
  # Packaging and deployment tests (tests/integration/deploy): the .deb
  # (dpkg-shlibdeps, systemd-analyze), the container image and compose, and
  # the Helm chart rendered without helm (Go + sprig) and validated.
  dpkg-dev systemd buildah podman runc docker-compose
  golang-go golang-github-masterminds-sprig-dev golang-github-ghodss-yaml-dev
  python3-jsonschema python3-yaml python3-kubernetes
  # The PostgreSQL store (bridge/postgres_store.cc): libpq to build, and the
  # PostgreSQL 15 server its tests start in a temporary directory.
  libpq-dev postgresql
  # The monitoring tests (tests/integration/monitoring): Prometheus, promtool.
  prometheus
  # The sanitizer builds (scripts/sanitize.sh) and fuzz targets: Debian's
  # clang and its ASan/UBSan/TSan/libFuzzer runtimes (only recommended by
  # clang-14, so named here).
  clang libclang-rt-14-dev lld
)
if [ "${1:-}" = "--with-browser" ]; then
  # What the browser test needs is the commands; a machine may have Node.js
  # from elsewhere (NodeSource's nodejs bundles npm), so commands that exist
  # are not installed again.
  [ -x /usr/bin/chromium ] || packages+=(chromium)
  command -v node >/dev/null 2>&1 || packages+=(nodejs)
  command -v npm >/dev/null 2>&1 || packages+=(npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
