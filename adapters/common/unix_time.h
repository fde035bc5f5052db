#ifndef IMBRIDGE_ADAPTERS_COMMON_UNIX_TIME_H_
#define IMBRIDGE_ADAPTERS_COMMON_UNIX_TIME_H_

// Messengers' timestamps (Unix seconds, from untrusted payloads) as
// Event.occurred_at_ms.

#include <cstdint>

namespace imbridge::adapters {

// 9999-12-31 23:59:59 UTC.
inline constexpr int64_t kLastUnixSecond = 253402300799;

// `seconds` in milliseconds, or 0 (unknown) outside 1970-01-01 ..
// 9999-12-31: a larger value would overflow, and none is a real message's.
inline int64_t UnixSecondsToMillis(int64_t seconds) {
  return seconds < 0 || seconds > kLastUnixSecond ? 0 : seconds * 1000;
}

// The same for fractional seconds (Slack's "1700000000.000100"); NaN and
// infinities are unknown too.
inline int64_t UnixSecondsToMillis(double seconds) {
  if (!(seconds >= 0 && seconds <= static_cast<double>(kLastUnixSecond))) {
    return 0;
  }
  return static_cast<int64_t>(seconds * 1000);
}

}  // namespace imbridge::adapters

#endif  // IMBRIDGE_ADAPTERS_COMMON_UNIX_TIME_H_
