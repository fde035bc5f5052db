#ifndef IMBRIDGE_TESTS_INTEGRATION_SANITIZER_MEMORY_H_
#define IMBRIDGE_TESTS_INTEGRATION_SANITIZER_MEMORY_H_

#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

// Whether this binary (and so the whole tree: scripts/sanitize.sh asan builds
// every target with the same flags) is built with AddressSanitizer.
#if defined(__SANITIZE_ADDRESS__)
#define IMBRIDGE_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define IMBRIDGE_TEST_ASAN 1
#endif
#endif

namespace imbridge::testing {

// How much more a process's RSS may grow under AddressSanitizer than the
// bridge's own memory explains, in KiB; 0 in a build without ASan. Tests that
// bound a process's RSS growth (chaos, hostile clients) add it to their bound
// so that the ASan stage checks the same bound plus ASan's own cost, instead
// of skipping the check:
// - the quarantine: ASan keeps freed blocks out of reuse, up to
//   quarantine_size_mb of ASAN_OPTIONS (256 MiB by default on x86-64; the
//   memory a test churns through grows RSS up to that before any is reused);
// - each thread's own quarantine (thread_local_quarantine_size_kb, 1 MiB) and
//   the shadow memory of what those blocks touch: 64 MiB covers the ~40
//   threads of a router or adapter (gRPC's pollers and executors).
inline int64_t AsanRssSlackKib() {
#ifdef IMBRIDGE_TEST_ASAN
  int64_t quarantine_mib = 256;
  const char* options = std::getenv("ASAN_OPTIONS");
  for (absl::string_view option :
       absl::StrSplit(options == nullptr ? "" : options, ':')) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(option, absl::MaxSplits('=', 1));
    int64_t mib = 0;
    if (kv.first == "quarantine_size_mb" && absl::SimpleAtoi(kv.second, &mib) &&
        mib >= 0) {
      quarantine_mib = mib;
    }
  }
  return (quarantine_mib + 64) * 1024;
#else
  return 0;
#endif
}

// How many times longer than an optimized build a process under ASan may take
// to answer a "keeps serving" check: scripts/sanitize.sh builds at -O0 and
// ASan checks every memory access (measured: the router's slowest /healthz
// among 1000 connections being opened, 2.07 s at -O0 under ASan, tens of ms
// without). 1 in a build without ASan.
inline int AsanSlowdown() {
#ifdef IMBRIDGE_TEST_ASAN
  return 3;
#else
  return 1;
#endif
}

}  // namespace imbridge::testing

#endif  // IMBRIDGE_TESTS_INTEGRATION_SANITIZER_MEMORY_H_
