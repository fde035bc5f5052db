#ifndef IMBRIDGE_ADAPTERS_WEBHOOK_OUTBOUND_H_
#define IMBRIDGE_ADAPTERS_WEBHOOK_OUTBOUND_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "adapters/common/delivery_handler.h"
#include "adapters/common/http_client.h"
#include "adapters/webhook/webhook_directory.h"
#include "imbridge/v1/router.pb.h"

namespace imbridge::adapters::webhook {

// The "type" of an outgoing webhook body for `event`: "message.posted",
// "message.edited", "message.deleted", "presence.changed", "member.joined"
// or "member.left" ("" for an event without a kind).
std::string OutgoingType(const v1::Event& event);

// The JSON body POSTed to an outgoing webhook for `delivery` (see
// docs/operations.md, "Outgoing webhooks"): type, webhook_id, link,
// event_key, delivery_id, idempotency_key, attempt, origin, sender, text,
// markdown (only when the text has formatting), message_id,
// target_message_ids, reply_to, thread_root, attachments (name, mime_type,
// size, kind), occurred_at (RFC 3339, UTC), plus presence for
// presence.changed. Pure; thread-safe.
std::string OutgoingBody(const v1::Delivery& delivery,
                         const std::string& webhook_id);

// Renders deliveries to outgoing webhooks: the target's chat id is the
// webhook id; its URL and secret come from the router (WebhookDirectory::
// GetOutgoing). The body is POSTed with
//   X-Imbridge-Timestamp: unix seconds
//   X-Imbridge-Signature: "v1=" + hex HMAC-SHA256(secret, ts + "." + body)
//   X-Imbridge-Event: the type;  Idempotency-Key: the delivery's key
// A 2xx answer is success: the native id is the answer's JSON "message_id"
// if it has one, else the delivery's idempotency key (nothing for edits,
// deletes and the rest). 429, 5xx, timeouts and connection failures are
// retryable (Retry-After honoured); other answers, unknown or revoked
// webhooks and bad URLs are permanent.
//
// Across restarts: a delivery is one POST and is not journaled. A POST whose
// answer the router never learnt (the adapter died, or the answer came after
// `timeout`) is made again on the router's retry with the same
// Idempotency-Key: at least once, deduplicated by the receiver
// (docs/webhook.md, "Deliveries across restarts").
//
// Thread-safe; Deliver() blocks for the HTTP call (up to `timeout`).
class OutgoingWebhooks : public DeliveryHandler {
 public:
  struct Options {
    // The adapter's accounts; deliveries for other accounts are refused.
    std::vector<std::string> accounts = {"default"};
    // Time for one POST.
    absl::Duration timeout = absl::Seconds(10);
    // CA bundle for HTTPS receivers; empty uses the system's.
    std::string ca_file;
  };

  // `directory` must outlive this object.
  OutgoingWebhooks(Options options, WebhookDirectory* directory);

  absl::StatusOr<std::vector<std::string>> Deliver(
      const v1::Delivery& delivery) override;

 private:
  const Options options_;
  WebhookDirectory* const directory_;
  HttpClient http_;
};

}  // namespace imbridge::adapters::webhook

#endif  // IMBRIDGE_ADAPTERS_WEBHOOK_OUTBOUND_H_
