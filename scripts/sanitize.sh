#!/usr/bin/env bash
# Sanitizer builds (docs/development.md), one command each:
#   scripts/sanitize.sh asan [CTEST_ARGS...]
#     clang, ASan + UBSan + -Wthread-safety -Werror, the whole tree (every
#     test, and the fuzz targets when fuzz/ exists: IMBRIDGE_FUZZ=ON) into
#     build-asan/, then every test with ctest -j2.
#   scripts/sanitize.sh tsan [CTEST_ARGS...]
#     clang, TSan, only the router, the router client and the pipeline tests
#     (and the binaries they start) into build-tsan/, then those tests.
# Build dirs: IMBRIDGE_ASAN_BUILD_DIR / IMBRIDGE_TSAN_BUILD_DIR. Both keep
# line tables only (reports keep file:line). The ASan build is -O0: clang's
# back end is most of a sanitized compile, and -O0 takes 40-60 % less of it
# than -O1 (.ci/run has the figures). The TSan build stays -O1: -O0 saves
# only ~26 % there, and without inlining the top frame of a race inside
# gRPC's header code becomes a std:: helper (memcpy in std::swap of a
# std::function in grpcpp's interceptor_common.h), which tsan.supp's
# race_top:/usr/include/grpcpp/ no longer matches (2 router integration
# tests failed so at -O0). The runtime options and suppression
# files are in tools/sanitizers/ (each suppression says why); the exported
# *SAN_OPTIONS reach every process a test starts. Exit status is ctest's.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kind="${1:-}"
case "$kind" in
  asan | tsan) shift ;;
  *)
    echo "usage: $0 asan|tsan [ctest args...]" >&2
    exit 2
    ;;
esac
"$root/scripts/install-deps.sh"
sup="$root/tools/sanitizers"

# ASan at -O0, TSan at -O1 (see the header).
opt=-O0
[ "$kind" = tsan ] && opt=-O1
cmake_args=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=$opt -gline-tables-only"
  -DCMAKE_CXX_COMPILER=clang++ -DIMBRIDGE_WERROR=ON)
if command -v ccache >/dev/null 2>&1; then
  cmake_args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
# lld (install-deps.sh installs it) links the ~130 sanitized binaries in a
# fraction of ld.bfd's time (.ci/run has the figures).
if command -v ld.lld >/dev/null 2>&1; then
  cmake_args+=(-DCMAKE_EXE_LINKER_FLAGS=-fuse-ld=lld
    -DCMAKE_SHARED_LINKER_FLAGS=-fuse-ld=lld)
fi

if [ "$kind" = asan ]; then
  build="${IMBRIDGE_ASAN_BUILD_DIR:-$root/build-asan}"
  cmake_args+=("-DIMBRIDGE_SANITIZE=address,undefined" -DIMBRIDGE_THREAD_SAFETY=ON)
  [ -f "$root/fuzz/CMakeLists.txt" ] && cmake_args+=(-DIMBRIDGE_FUZZ=ON)
  targets=(all)
  # Every test: the four packaging tests (deb_package_test, helm_chart_test,
  # container_image_test, compose_stack_test) are not registered in a
  # sanitized build (tests/integration/deploy/CMakeLists.txt), so a -E given
  # here does not bring them back. The monitoring tests of label deploy run.
  tests=()
  # Sanitized processes run 2-5x slower: a test without its own TIMEOUT
  # gets 1500 s instead of scripts/test.sh's 600 s.
  timeout=1500
  export ASAN_OPTIONS="detect_leaks=1:detect_stack_use_after_return=0:strict_string_checks=1:check_initialization_order=1:abort_on_error=0:suppressions=$sup/asan.supp"
  export LSAN_OPTIONS="suppressions=$sup/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$sup/ubsan.supp"
else
  build="${IMBRIDGE_TSAN_BUILD_DIR:-$root/build-tsan}"
  cmake_args+=(-DIMBRIDGE_SANITIZE=thread)
  # The router, the router client and the inbound pipeline, with what their
  # tests start: the router binary and the webhook adapter.
  targets=(imbridge_tsan_absl_sync imbridge-router imbridge-adapter-webhook
    router_test store_test link_table_test delivery_policy_test
    committer_dispatcher_test
    event_validation_test capability_fit_test publish_sequencer_test
    router_client_test inbound_pipeline_test delivery_journal_test
    adapter_runtime_test router_integration_test reconnect_integration_test
    admin_integration_test)
  # Their GoogleTest suites (ctest names are Suite.Test).
  tests=(-R "^(RouterShutdownTest|RouterLinksTest|FitToTargetTest|CommitterTest|DispatcherTest|DeliveryPolicyTest|ValidateEventTest|LinkTableTest|PublishSequencerTest|ChannelKeyTest|StoreTest|SqliteStoreTest|PostgresStoreTest|DeliveryHandlerTest|RouterClientTest|InboundPipelineTest|DeliveryJournalTest|AdapterRuntimeTest|CommandLineTest|ValidateAdapterBasicsTest|RouterIntegrationTest|RouterOnEachStoreTest|ReconnectIntegrationTest|AdminIntegrationTest)\\.")
  timeout=1500
  # Debian's absl::Mutex is not instrumented: the preloaded library tells
  # TSan what it orders (tools/sanitizers/tsan_absl_sync.cc).
  tsan_preload="$build/tools/sanitizers/libimbridge_tsan_absl_sync.so"
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:history_size=4:suppressions=$sup/tsan.supp"
fi

if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" "${cmake_args[@]}" >/dev/null
fi
ninja -C "$build" "${targets[@]}"
# shellcheck source=scripts/test-tmpdir.sh
. "$root/scripts/test-tmpdir.sh"
[ "$kind" = tsan ] && export LD_PRELOAD="$tsan_preload"
cd "$build"
ctest --output-on-failure --timeout "$timeout" -j 2 "${tests[@]}" "$@"
