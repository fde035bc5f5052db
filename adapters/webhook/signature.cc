#include "adapters/webhook/signature.h"

namespace imbridge::adapters::webhook {

constexpr TimestampedSignatureScheme kOutgoingWebhookSignature = {
    "X-Imbridge-Timestamp", "X-Imbridge-Signature", "v1=", TimestampDotBody};

}  // namespace imbridge::adapters::webhook
