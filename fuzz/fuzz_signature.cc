// Fuzzes request signature checking: the timestamp and signature headers
// and the body of a request, as an attacker controls them, checked with
// Slack's (v0=, "v0:{ts}:{body}") and TeamSpirit's (v1=, "{ts}.{body}")
// schemes over the one implementation in adapters/common/signature.h.
//
// Properties: a random request never passes (unless its header is the
// right signature); a request signed with TeamSpirit's scheme passes its
// check at its own time, and fails once one byte of the body or the
// signature changes.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "adapters/slack/signature.h"
#include "adapters/teamspirit/signature.h"
#include "fuzz/fuzz_support.h"

namespace slack = imbridge::adapters::slack;
namespace teamspirit = imbridge::adapters::teamspirit;
using imbridge::fuzz::Check;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider provider(data, size);
  const std::string secret = provider.ConsumeRandomLengthString(64);
  const std::string timestamp = provider.ConsumeRandomLengthString(24);
  const std::string signature = provider.ConsumeRandomLengthString(80);
  // Timestamps are 1 to 12 digits (adapters/common/signature.h).
  const int64_t now_seconds =
      provider.ConsumeIntegralInRange<int64_t>(0, 999'999'999'999);
  const std::string body = provider.ConsumeRemainingBytesAsString();
  const absl::Time now = absl::FromUnixSeconds(now_seconds);

  absl::Status slack_status = imbridge::adapters::VerifyTimestampedSignature(
      slack::kSlackSignature, secret, timestamp, signature, body, now);
  absl::Status ts_status = imbridge::adapters::VerifyTimestampedSignature(
      teamspirit::kTeamSpiritSignature, secret, timestamp, signature, body,
      now);
  Check(slack_status.code() != absl::StatusCode::kUnknown &&
            ts_status.code() != absl::StatusCode::kUnknown,
        "verification answers a known code");

  absl::StatusOr<std::string> signed_ts = imbridge::adapters::SignTimestamped(
      teamspirit::kTeamSpiritSignature, secret, now_seconds, body);
  if (!signed_ts.ok()) {
    Check(!ts_status.ok(), "a blank secret never verifies");
    return 0;
  }
  Check(ts_status.ok() ==
            (timestamp == absl::StrCat(now_seconds) && signature == *signed_ts),
        "only the right signature at the right time verifies");
  const std::string ts_header = absl::StrCat(now_seconds);
  Check(imbridge::adapters::VerifyTimestampedSignature(
            teamspirit::kTeamSpiritSignature, secret, ts_header, *signed_ts,
            body, now)
            .ok(),
        "a signed request verifies");
  std::string forged = *signed_ts;
  forged.back() = forged.back() == '0' ? '1' : '0';
  Check(!imbridge::adapters::VerifyTimestampedSignature(
             teamspirit::kTeamSpiritSignature, secret, ts_header, forged, body,
             now)
             .ok(),
        "a changed signature fails");
  Check(!imbridge::adapters::VerifyTimestampedSignature(
             teamspirit::kTeamSpiritSignature, secret, ts_header, *signed_ts,
             body + "x", now)
             .ok(),
        "a changed body fails");
  return 0;
}
