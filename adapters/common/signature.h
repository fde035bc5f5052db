#ifndef IMBRIDGE_ADAPTERS_COMMON_SIGNATURE_H_
#define IMBRIDGE_ADAPTERS_COMMON_SIGNATURE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

// The timestamped HMAC scheme that the messengers' own request signatures
// (adapters/<messenger>/signature.h) are built on, over the primitives of
// common/http/hmac.h.
//
// Contract for the whole file: every function is pure, thread-safe and
// non-blocking. Verification failures caused by the request (missing header,
// bad timestamp, stale timestamp, wrong signature) are kUnauthenticated (the
// adapter answers 401); an empty or whitespace-only secret is
// kInvalidArgument (a configuration error). No message ever contains the
// secret, the expected signature or the body.

namespace imbridge::adapters {

// The replay window that Slack, TeamSpirit and the webhook adapter use.
inline constexpr absl::Duration kDefaultSignatureWindow = absl::Seconds(300);

// The shape that Slack's, TeamSpirit's and the webhook adapter's request
// signatures share: a timestamp header (unix seconds) and a signature
// header `prefix` + hex HMAC-SHA256(secret, signed_text(timestamp, body)).
// Each messenger's folder defines its scheme (adapters/<messenger>/
// signature.h); this is the one implementation of the checks.
struct TimestampedSignatureScheme {
  absl::string_view timestamp_header;  // e.g. "X-Slack-Request-Timestamp"
  absl::string_view signature_header;  // e.g. "X-Slack-Signature"
  absl::string_view prefix;            // e.g. "v0="
  // The text that is signed, from the timestamp header's value and the raw
  // body.
  std::string (*signed_text)(absl::string_view timestamp,
                             absl::string_view body);
};

// "{timestamp}.{body}": the signed text of TeamSpirit's and the webhook
// adapter's outgoing schemes.
std::string TimestampDotBody(absl::string_view timestamp,
                             absl::string_view body);

// Verifies a request signed with `scheme`: `timestamp_header` and
// `signature_header` are the headers' values as received (empty when
// absent), `raw_body` the body's bytes exactly as received; the timestamp
// (1 to 12 ASCII digits) must be within `window` of `now`.
absl::Status VerifyTimestampedSignature(
    const TimestampedSignatureScheme& scheme, absl::string_view secret,
    absl::string_view timestamp_header, absl::string_view signature_header,
    absl::string_view raw_body, absl::Time now,
    absl::Duration window = kDefaultSignatureWindow);

// The signature header's value for `body` signed with `scheme` at
// `timestamp` (unix seconds). kInvalidArgument for an empty or blank
// secret.
absl::StatusOr<std::string> SignTimestamped(
    const TimestampedSignatureScheme& scheme, absl::string_view secret,
    int64_t timestamp, absl::string_view body);

}  // namespace imbridge::adapters

#endif  // IMBRIDGE_ADAPTERS_COMMON_SIGNATURE_H_
