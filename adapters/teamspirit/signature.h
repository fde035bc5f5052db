#ifndef IMBRIDGE_ADAPTERS_TEAMSPIRIT_SIGNATURE_H_
#define IMBRIDGE_ADAPTERS_TEAMSPIRIT_SIGNATURE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "adapters/common/signature.h"

// TeamSpirit's webhook signatures (teamspirit-api.md): X-TeamSpirit-Signature
// is "v1=" + hex HMAC-SHA256 of "{ts}.{raw_body}", X-TeamSpirit-Timestamp
// the unix seconds. Failures caused by the request are kUnauthenticated, an
// empty or blank secret kInvalidArgument; no message contains the secret,
// the expected signature or the body. Pure; thread-safe.

namespace imbridge::adapters::teamspirit {

// Verifies an outgoing webhook of TeamSpirit, whose timestamp must be
// within `window` of `now`. `raw_body` must be the bytes exactly as
// received.
absl::Status VerifyTeamSpiritSignature(
    absl::string_view secret, absl::string_view timestamp_header,
    absl::string_view signature_header, absl::string_view raw_body,
    absl::Time now, absl::Duration window = kDefaultSignatureWindow);

// The X-TeamSpirit-Signature value ("v1=<hex>") for `body` signed at
// `timestamp` (unix seconds).
absl::StatusOr<std::string> SignTeamSpirit(absl::string_view secret,
                                           int64_t timestamp,
                                           absl::string_view body);

}  // namespace imbridge::adapters::teamspirit

#endif  // IMBRIDGE_ADAPTERS_TEAMSPIRIT_SIGNATURE_H_
