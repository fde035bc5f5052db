#!/usr/bin/env bash
# Builds and runs the libFuzzer targets of fuzz/ under ASan and UBSan
# (docs/fuzzing.md).
#
#   scripts/fuzz.sh [TARGET|all] [SECONDS]   run one target (fuzz_slack_mrkdwn
#                                            or slack_mrkdwn) or all, SECONDS
#                                            each (default 60)
#   scripts/fuzz.sh --ci                     every target for CI_SECONDS_EACH
#   scripts/fuzz.sh --list                   the target names
#
# CI budget: CI_SECONDS_EACH (10) s per target, 17 targets: about 3
# minutes of fuzzing, plus the build (clang, ASan+UBSan: ~25 minutes from
# scratch on a loaded 2-core machine; nothing more when build-asan/ is
# reused, see below).
#
# Build dir: $IMBRIDGE_FUZZ_BUILD_DIR, else build-asan/ when it is configured
# with IMBRIDGE_FUZZ=ON (-O0 there, scripts/sanitize.sh: fewer executions a
# second, fine for CI's smoke run; long runs belong in build-fuzz/), else
# build-fuzz/ (configured here: clang, -O1 with assertions on,
# IMBRIDGE_FUZZ=ON, -fsanitize=address,undefined). Inputs the fuzzer finds go
# to <build>/fuzz-corpus/<target>/ (the seeds in fuzz/corpus/<name>/ are
# only read); a crashing input is written to <build>/fuzz-artifacts/<target>/
# and its path printed. Exit status: 0 when no target crashed, 1 otherwise.
# Extra libFuzzer flags can be passed in FUZZ_FLAGS (e.g. "-max_len=65536").
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The ASan build of scripts/sanitize.sh, when it was configured with the fuzz
# targets, is reused (CI builds once); otherwise build-fuzz/.
build="${IMBRIDGE_FUZZ_BUILD_DIR:-}"
if [ -z "$build" ]; then
  build="$root/build-fuzz"
  if grep -qs '^IMBRIDGE_FUZZ:BOOL=ON' "$root/build-asan/CMakeCache.txt"; then
    build="$root/build-asan"
  fi
fi
CI_SECONDS_EACH=10

targets() {
  sed -n 's/^imbridge_fuzz_target(\([a-z0-9_]*\).*/fuzz_\1/p' \
    "$root/fuzz/CMakeLists.txt"
}

mode=run
case "${1:-}" in
  --ci) mode=ci; shift ;;
  --list) targets; exit 0 ;;
  -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
esac
which="${1:-all}"
seconds="${2:-60}"
if [ "$mode" = ci ]; then which=all; seconds=$CI_SECONDS_EACH; fi
if [ "$which" != all ]; then which="fuzz_${which#fuzz_}"; fi
if [ "$which" != all ] && ! targets | grep -qx "$which"; then
  echo "fuzz.sh: no fuzz target '$which' (see scripts/fuzz.sh --list)" >&2
  exit 2
fi
if ! command -v clang++ >/dev/null; then
  echo "fuzz.sh: clang++ is missing (apt-get install clang libclang-rt-14-dev)" >&2
  exit 2
fi

sanitize="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
if [ ! -f "$build/build.ninja" ]; then
  launcher=()
  if command -v ccache >/dev/null; then
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
  fi
  CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMBRIDGE_FUZZ=ON \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
    -DCMAKE_CXX_FLAGS="$sanitize" -DCMAKE_EXE_LINKER_FLAGS="$sanitize" \
    "${launcher[@]}" >/dev/null
fi
if [ "$which" = all ]; then
  nice ninja -C "$build" -j2 fuzz
else
  nice ninja -C "$build" -j2 "$which"
fi

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=()
list="$which"
if [ "$which" = all ]; then list="$(targets)"; fi
for target in $list; do
  name="${target#fuzz_}"
  work="$build/fuzz-corpus/$target"
  artifacts="$build/fuzz-artifacts/$target/"
  mkdir -p "$work" "$artifacts"
  flags=(-max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048
         -print_final_stats=1 -artifact_prefix="$artifacts")
  if [ -f "$root/fuzz/dict/$name.dict" ]; then
    flags+=(-dict="$root/fuzz/dict/$name.dict")
  fi
  echo "== $target: ${seconds}s"
  log="$build/fuzz-$target.log"
  # shellcheck disable=SC2086
  if nice "$build/fuzz/$target" "${flags[@]}" ${FUZZ_FLAGS:-} "$work" \
      "$root/fuzz/corpus/$name" >"$log" 2>&1; then
    grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^#[0-9]+ *DONE' "$log" || true
  else
    failed+=("$target")
    tail -n 60 "$log"
    echo "!! $target crashed; input(s): $(ls -d "$artifacts"* 2>/dev/null | tr '\n' ' ')"
    echo "!! full log: $log"
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz.sh: crashes in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: no crash"
