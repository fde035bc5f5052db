#ifndef IMBRIDGE_ADAPTERS_TEAMSPIRIT_INBOUND_H_
#define IMBRIDGE_ADAPTERS_TEAMSPIRIT_INBOUND_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "adapters/common/inbound_pipeline.h"
#include "adapters/teamspirit/teamspirit_api.h"
#include "common/http/http_server.h"
#include "imbridge/v1/events.pb.h"
#include "imbridge/v1/router.pb.h"

namespace imbridge::adapters::teamspirit {

// The platform name the adapter announces and puts in every ChannelRef.
inline constexpr char kPlatform[] = "teamspirit";

// What translation needs to know about this adapter.
struct InboundContext {
  // The account name of the bot (ChannelRef.account, event key part).
  std::string account;
  // TeamSpirit user id of the bot itself (from GET /me).
  std::string bot_user_id;
  // Prefix of external-user ids the bridge creates.
  std::string external_user_prefix;
};

// The outcome of translating one outgoing-webhook event.
struct InboundTranslation {
  // The event to publish, when there is one. Its attachments carry name,
  // MIME type, size and kind but no blob id yet.
  std::optional<v1::Event> event;
  // The TeamSpirit files behind the event's attachments, in the same order.
  std::vector<TsFile> files;
  // Why nothing is published: "own_post" (the bot's own post or one it made
  // on behalf of someone), "unknown_type", ...
  std::string ignored_reason;
};

// Translates a parsed webhook event into the bridge's Event: the event key
// is "teamspirit:<account>:<event_id>", the channel
// {teamspirit, account, chat.id, ""} (chat id empty for presence), message
// ids are TeamSpirit message ids, markdown becomes RichText. Posts, edits
// and deletes by the bot itself, and posts carrying an `author` whose
// external id has the bridge's prefix, are ignored ("own_post"). Pure.
InboundTranslation TranslateWebhookEvent(const TsWebhookEvent& event,
                                         const InboundContext& context);

// One verified outgoing-webhook event with what translating it needs to
// know at the time it arrived: the raw input of the inbound pipeline.
struct TsInboundEvent {
  TsWebhookEvent event;
  InboundContext context;
};

// The outgoing-webhook endpoint: verifies and parses on the HTTP thread,
// then hands the event to the inbound pipeline, which translates it, copies
// its files into the blob store and publishes it in its chat's order; the
// answer to TeamSpirit waits for the router's acknowledgement.
//
// Answers:
//   401 missing or wrong X-TeamSpirit-Signature / X-TeamSpirit-Timestamp,
//       or a timestamp more than `signature_window` from now (checked in
//       constant time, before the body is parsed);
//   400 a body that is not a valid event, or an X-TeamSpirit-Event-Id that
//       differs from the body's event_id, or one translation failed on;
//   200 an event of an unknown type, or one the bridge ignores (its own
//       posts) — counted, nothing published;
//   503 while the bot's own user id is not known yet (GET /me has not
//       succeeded), when the pipeline is full, when a file could not be
//       fetched for a retryable reason, or when the router did not take the
//       event: TeamSpirit then retries;
//   500 when the router rejected or failed to store the event;
//   200 {"ok":true} once the router acknowledged (accepted, duplicate or
//       dropped as an echo).
// (413 for bodies over 1 MiB comes from the HttpServer itself.)
//
// Events of one chat are published in the order they arrived, a message
// waiting for its file included; a retry of an event still in progress
// joins it instead of copying again (both by the pipeline).
//
// As the pipeline's connector, Route() and Convert() may run on several
// threads at once. Threading: Handle() runs on the HTTP server's threads
// and never blocks. SetBotUserId() from any thread.
class WebhookReceiver : public InboundConnector<TsInboundEvent> {
 public:
  struct Options {
    // The outgoing webhook's secret. Never logged.
    std::string webhook_secret;
    std::string account;
    std::string external_user_prefix = "imb-";
    // Bigger files become attachments with an unavailable_reason (the
    // pipeline's own limit applies too).
    uint64_t max_file_bytes = 100ull << 20;
    absl::Duration signature_window = absl::Seconds(300);
    // The clock for timestamp checks (tests replace it).
    std::function<absl::Time()> clock = absl::Now;
  };

  // Counts a refused or skipped webhook request by reason.
  using RejectionCounter = std::function<void(absl::string_view reason)>;

  // `api` and `pipeline` must outlive the receiver; stop the pipeline
  // before destroying the receiver. The pipeline converts with `connector`
  // (the adapter, which hands the event back to this receiver's Route() and
  // Convert()), or with this receiver when it is null.
  WebhookReceiver(Options options, TeamSpiritApi* api,
                  InboundPipeline* pipeline, RejectionCounter count_rejection,
                  InboundConnector<TsInboundEvent>* connector = nullptr);

  // The bot's TeamSpirit user id, once known.
  void SetBotUserId(std::string id);

  // The HttpHandler for the outgoing-webhook route.
  void Handle(HttpRequest request, std::shared_ptr<Responder> responder);

  // InboundConnector: the lane is the chat (presence has one of its own),
  // the key the event id.
  absl::StatusOr<InboundRoute> Route(const TsInboundEvent& raw) override;
  // Translates; the files are downloaded from TeamSpirit.
  absl::StatusOr<InboundConversion> Convert(const TsInboundEvent& raw) override;

 private:
  const Options options_;
  TeamSpiritApi* const api_;
  InboundPipeline* const pipeline_;
  const RejectionCounter count_rejection_;
  InboundConnector<TsInboundEvent>* const connector_;
  absl::Mutex mu_;
  std::string bot_user_id_ ABSL_GUARDED_BY(mu_);
};

}  // namespace imbridge::adapters::teamspirit

#endif  // IMBRIDGE_ADAPTERS_TEAMSPIRIT_INBOUND_H_
