#ifndef IMBRIDGE_ADAPTERS_SLACK_SIGNATURE_H_
#define IMBRIDGE_ADAPTERS_SLACK_SIGNATURE_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "adapters/common/signature.h"

namespace imbridge::adapters::slack {

// Verifies a Slack request (platforms.md 1.5): `signature_header` is
// X-Slack-Signature ("v0=" + hex HMAC of "v0:{ts}:{raw_body}"),
// `timestamp_header` is X-Slack-Request-Timestamp (unix seconds), which must
// be within `window` of `now`. `raw_body` must be the bytes exactly as
// received. kUnauthenticated when the request fails the check,
// kInvalidArgument for an empty or blank secret; no message contains the
// secret, the expected signature or the body. Pure; thread-safe.
absl::Status VerifySlackSignature(
    absl::string_view signing_secret, absl::string_view timestamp_header,
    absl::string_view signature_header, absl::string_view raw_body,
    absl::Time now, absl::Duration window = kDefaultSignatureWindow);

}  // namespace imbridge::adapters::slack

#endif  // IMBRIDGE_ADAPTERS_SLACK_SIGNATURE_H_
