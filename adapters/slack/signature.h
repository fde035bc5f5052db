#ifndef IMBRIDGE_ADAPTERS_SLACK_SIGNATURE_H_
#define IMBRIDGE_ADAPTERS_SLACK_SIGNATURE_H_

#include "adapters/common/signature.h"

namespace imbridge::adapters::slack {

// Slack's request signature (platforms.md 1.5), for
// VerifyTimestampedSignature(): X-Slack-Signature is "v0=" + hex HMAC-SHA256
// of "v0:{ts}:{raw_body}", X-Slack-Request-Timestamp the unix seconds.
extern const TimestampedSignatureScheme kSlackSignature;

}  // namespace imbridge::adapters::slack

#endif  // IMBRIDGE_ADAPTERS_SLACK_SIGNATURE_H_
