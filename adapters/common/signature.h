#ifndef IMBRIDGE_ADAPTERS_COMMON_SIGNATURE_H_
#define IMBRIDGE_ADAPTERS_COMMON_SIGNATURE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

// The webhook signature schemes of Slack and TeamSpirit, built on the
// primitives of common/http/hmac.h.
//
// Contract for the whole file: every function is pure, thread-safe and
// non-blocking. Verification failures caused by the request (missing header,
// bad timestamp, stale timestamp, wrong signature) are kUnauthenticated (the
// adapter answers 401); an empty or whitespace-only secret is
// kInvalidArgument (a configuration error). No message ever contains the
// secret, the expected signature or the body.

namespace imbridge::adapters {

// The replay window that Slack and TeamSpirit both use.
inline constexpr absl::Duration kDefaultSignatureWindow = absl::Seconds(300);

// Verifies a Slack request (platforms.md 1.5): `signature_header` is
// X-Slack-Signature ("v0=" + hex HMAC of "v0:{ts}:{raw_body}"),
// `timestamp_header` is X-Slack-Request-Timestamp (unix seconds), which must
// be within `window` of `now`. `raw_body` must be the bytes exactly as
// received.
absl::Status VerifySlackSignature(
    absl::string_view signing_secret, absl::string_view timestamp_header,
    absl::string_view signature_header, absl::string_view raw_body,
    absl::Time now, absl::Duration window = kDefaultSignatureWindow);

// Verifies a TeamSpirit outgoing webhook (teamspirit-api.md):
// X-TeamSpirit-Signature is "v1=" + hex HMAC of "{ts}.{raw_body}", with
// X-TeamSpirit-Timestamp within `window` of `now`.
absl::Status VerifyTeamSpiritSignature(
    absl::string_view secret, absl::string_view timestamp_header,
    absl::string_view signature_header, absl::string_view raw_body,
    absl::Time now, absl::Duration window = kDefaultSignatureWindow);

// The X-TeamSpirit-Signature value ("v1=<hex>") for `body` signed at
// `timestamp` (unix seconds). kInvalidArgument for an empty or blank secret.
absl::StatusOr<std::string> SignTeamSpirit(absl::string_view secret,
                                           int64_t timestamp,
                                           absl::string_view body);

}  // namespace imbridge::adapters

#endif  // IMBRIDGE_ADAPTERS_COMMON_SIGNATURE_H_
