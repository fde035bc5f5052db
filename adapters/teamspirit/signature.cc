#include "adapters/teamspirit/signature.h"

namespace imbridge::adapters::teamspirit {

constexpr TimestampedSignatureScheme kTeamSpiritSignature = {
    "X-TeamSpirit-Timestamp", "X-TeamSpirit-Signature",
    "v1=", TimestampDotBody};

}  // namespace imbridge::adapters::teamspirit
