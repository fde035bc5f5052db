#ifndef IMBRIDGE_ADAPTERS_TEAMSPIRIT_SIGNATURE_H_
#define IMBRIDGE_ADAPTERS_TEAMSPIRIT_SIGNATURE_H_

#include "adapters/common/signature.h"

namespace imbridge::adapters::teamspirit {

// TeamSpirit's webhook signature (teamspirit-api.md), for
// VerifyTimestampedSignature() and SignTimestamped(): X-TeamSpirit-Signature
// is "v1=" + hex HMAC-SHA256 of "{ts}.{raw_body}", X-TeamSpirit-Timestamp
// the unix seconds.
extern const TimestampedSignatureScheme kTeamSpiritSignature;

}  // namespace imbridge::adapters::teamspirit

#endif  // IMBRIDGE_ADAPTERS_TEAMSPIRIT_SIGNATURE_H_
