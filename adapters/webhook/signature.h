#ifndef IMBRIDGE_ADAPTERS_WEBHOOK_SIGNATURE_H_
#define IMBRIDGE_ADAPTERS_WEBHOOK_SIGNATURE_H_

#include "adapters/common/signature.h"

namespace imbridge::adapters::webhook {

// The signature of an outgoing webhook request (docs/webhook.md), for
// SignTimestamped(): X-Imbridge-Signature is "v1=" + hex
// HMAC-SHA256(secret, "{timestamp}.{body}"), X-Imbridge-Timestamp the unix
// seconds.
extern const TimestampedSignatureScheme kOutgoingWebhookSignature;

}  // namespace imbridge::adapters::webhook

#endif  // IMBRIDGE_ADAPTERS_WEBHOOK_SIGNATURE_H_
