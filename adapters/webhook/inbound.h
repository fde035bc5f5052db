#ifndef IMBRIDGE_ADAPTERS_WEBHOOK_INBOUND_H_
#define IMBRIDGE_ADAPTERS_WEBHOOK_INBOUND_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "adapters/common/inbound_pipeline.h"
#include "adapters/webhook/webhook_directory.h"
#include "common/http/http_server.h"
#include "imbridge/v1/events.pb.h"

namespace imbridge::adapters::webhook {

// A Slack-compatible incoming webhook body as the adapter understood it.
struct IncomingMessage {
  // `text` (mrkdwn unless "mrkdwn": false) followed by the attachments.
  v1::RichText text;
  // "username" and "icon_url"; empty when not given.
  std::string username;
  std::string icon_url;
};

// Why a body was refused: `reason` is the metrics label and the JSON error
// code ("bad_json", "no_text"), `message` says what is wrong.
struct PayloadError {
  std::string reason;
  std::string message;
};

// Parses the body of POST /hooks/<id>: a JSON object, or (for
// `application/x-www-form-urlencoded`) a form whose `payload` field holds
// the JSON. Accepts Slack's fields text, mrkdwn, username, icon_url and
// attachments (see AppendSlackAttachments); others are ignored. Returns
// false with *error for malformed input or when there is neither text nor
// an attachment with something to show. Pure; thread-safe.
bool ParseIncomingPayload(absl::string_view content_type,
                          absl::string_view body, IncomingMessage* message,
                          PayloadError* error);

// The event for `message` posted through incoming webhook `webhook_id` of
// `account`: MessagePosted in ChannelRef{webhook, account, webhook_id}, key
// IncomingEventKey(), message id `unique`, sender named by username
// (default "webhook").
v1::Event IncomingEvent(const std::string& account,
                        const std::string& webhook_id,
                        const std::string& unique,
                        const IncomingMessage& message, absl::Time now);

// "webhook:<account>:<webhook_id>:<unique>".
std::string IncomingEventKey(absl::string_view account,
                             absl::string_view webhook_id,
                             absl::string_view unique);

// One accepted request to an incoming webhook (its key checked, its body
// parsed): the webhook adapter's raw inbound input, which its connector
// (InboundConnector<IncomingPost>) routes and converts.
struct IncomingPost {
  std::string account;
  std::string webhook_id;
  // Identifies the request (from its Idempotency-Key, else random).
  std::string unique;
  IncomingMessage message;
  absl::Time received;
};

// The route of `post`: the webhook's lane, keyed by its event's key, and
// converted on the HTTP thread (convert_here: the conversion only builds
// the event).
InboundRoute IncomingRoute(const IncomingPost& post);

// Its conversion: the one IncomingEvent.
InboundConversion IncomingConversion(const IncomingPost& post);

// Serves incoming webhooks: `POST /hooks/<id>` with the API key in
// `Authorization: Bearer <key>`, or `POST /hooks/<id>/<key>`. Each request's
// key is checked with the router (WebhookDirectory::CheckIncomingKey, never
// cached); a valid request becomes a MessagePosted handed to the inbound
// pipeline (one lane per webhook, so the messages of one webhook reach the
// router in the order their keys were checked), and is answered 200
// {"ok":true} once the router has it. Refusals are answered with
// {"ok":false,"error":CODE,"message":...}: 401 missing_key/invalid_key
// (unknown id, wrong or revoked key, or a webhook of an account this
// adapter does not serve, or of the other direction), 400
// bad_json/no_text/invalid_event, 404 not_found (no id in the path), 503
// router_unavailable (also when too many messages wait), 500 not_stored, each
// counted with `count_rejection(reason)`. Keys are never logged. A valid
// request goes to the pipeline as an IncomingPost through `connector` (the
// WebhookAdapter).
//
// Thread-safe; handlers never block (the key check is asynchronous).
class IncomingWebhooks {
 public:
  using CountRejection = std::function<void(absl::string_view reason)>;

  // Serves the webhooks of `accounts` (at least one); a webhook the router
  // knows without an account is taken as the first's. `directory`,
  // `pipeline` and `connector` must outlive this object.
  IncomingWebhooks(std::vector<std::string> accounts,
                   WebhookDirectory* directory, InboundPipeline* pipeline,
                   InboundConnector<IncomingPost>* connector,
                   CountRejection count_rejection);

  // Registers POST /hooks/ on `server` (before it starts). This object must
  // outlive the server's handling of requests.
  void Register(HttpServer& server);

  // Answers one request (for Register's route).
  void Handle(HttpRequest request, std::shared_ptr<Responder> responder);

 private:
  void Refuse(const std::shared_ptr<Responder>& responder, int status,
              absl::string_view reason, absl::string_view code,
              absl::string_view message);
  void Accept(const std::string& account, const std::string& webhook_id,
              const HttpRequest& request, std::shared_ptr<Responder> responder);

  const std::vector<std::string> accounts_;
  WebhookDirectory* const directory_;
  InboundPipeline* const pipeline_;
  InboundConnector<IncomingPost>* const connector_;
  const CountRejection count_rejection_;
};

}  // namespace imbridge::adapters::webhook

#endif  // IMBRIDGE_ADAPTERS_WEBHOOK_INBOUND_H_
