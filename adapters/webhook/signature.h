#ifndef IMBRIDGE_ADAPTERS_WEBHOOK_SIGNATURE_H_
#define IMBRIDGE_ADAPTERS_WEBHOOK_SIGNATURE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace imbridge::adapters::webhook {

// The X-Imbridge-Signature value of an outgoing webhook request
// (docs/webhook.md): "v1=" + hex HMAC-SHA256(secret, "{timestamp}.{body}"),
// with X-Imbridge-Timestamp = `timestamp` (unix seconds).
// kInvalidArgument for an empty or blank secret. Pure; thread-safe.
absl::StatusOr<std::string> SignOutgoingWebhook(absl::string_view secret,
                                                int64_t timestamp,
                                                absl::string_view body);

}  // namespace imbridge::adapters::webhook

#endif  // IMBRIDGE_ADAPTERS_WEBHOOK_SIGNATURE_H_
