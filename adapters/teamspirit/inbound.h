#ifndef IMBRIDGE_ADAPTERS_TEAMSPIRIT_INBOUND_H_
#define IMBRIDGE_ADAPTERS_TEAMSPIRIT_INBOUND_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "adapters/common/webhook_server.h"
#include "adapters/teamspirit/teamspirit_api.h"
#include "common/executor.h"
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

// The attachment kind for a MIME type ("image/png" -> IMAGE, ...).
v1::Attachment::Kind AttachmentKindFor(absl::string_view mime_type);

// Where the receiver hands its work: the router (AdapterRuntime and
// RouterClient in the binary; an in-memory double in tests).
class EventSink {
 public:
  virtual ~EventSink() = default;

  // Queues `event` for the router. `done` runs once, on any thread, with
  // the router's acknowledgement, or with an error when the event could not
  // be queued. Must not block.
  virtual void Publish(
      v1::Event event,
      std::function<void(absl::StatusOr<v1::PublishAck>)> done) = 0;

  // Stores a file in the router's blob store; blocks. `read` fills up to
  // `max` bytes and returns how many (0 at the end).
  virtual absl::StatusOr<v1::BlobRef> PutBlob(
      const v1::BlobMeta& meta,
      const std::function<absl::StatusOr<size_t>(char* buffer, size_t max)>&
          read) = 0;

  // Counts a refused or skipped webhook request by reason.
  virtual void CountRejection(absl::string_view reason) = 0;
};

// The outgoing-webhook endpoint: verifies, parses, filters, copies files
// into the blob store and publishes, answering TeamSpirit only when the
// router has the event.
//
// Answers:
//   401 missing or wrong X-TeamSpirit-Signature / X-TeamSpirit-Timestamp,
//       or a timestamp more than `signature_window` from now (checked in
//       constant time, before the body is parsed);
//   400 a body that is not a valid event, or an X-TeamSpirit-Event-Id that
//       differs from the body's event_id;
//   200 an event of an unknown type, or one the bridge ignores (its own
//       posts) — counted, nothing published;
//   503 while the bot's own user id is not known yet (GET /me has not
//       succeeded), when a file could not be fetched for a retryable reason,
//       or when the router did not take the event: TeamSpirit then retries;
//   500 when the router rejected or failed to store the event;
//   200 {"ok":true} once the router acknowledged (accepted, duplicate or
//       dropped as an echo).
// (413 for bodies over 1 MiB comes from the WebhookServer itself.)
//
// A retry of an event still being processed (a slow file copy) waits for
// the first attempt's outcome instead of copying again.
//
// Threading: Handle() runs on the HTTP server's threads and never blocks;
// file copies run on `executor`. SetBotUserId() from any thread.
class WebhookReceiver {
 public:
  struct Options {
    // The outgoing webhook's secret. Never logged.
    std::string webhook_secret;
    std::string account;
    std::string external_user_prefix = "imb-";
    // Bigger files become attachments with an unavailable_reason.
    uint64_t max_file_bytes = 100ull << 20;
    absl::Duration signature_window = absl::Seconds(300);
    // The clock for timestamp checks (tests replace it).
    std::function<absl::Time()> clock = absl::Now;
  };

  // `api`, `sink` and `executor` must outlive the receiver (and every task
  // it posted: destroy the executor first).
  WebhookReceiver(Options options, TeamSpiritApi* api, EventSink* sink,
                  Executor* executor);

  // The bot's TeamSpirit user id, once known.
  void SetBotUserId(std::string id);

  // The WebhookHandler for the outgoing-webhook route.
  void Handle(HttpRequest request, std::shared_ptr<Responder> responder);

 private:
  // Responders waiting for one event (a retry joins the first attempt).
  struct Pending {
    std::vector<std::shared_ptr<Responder>> responders;
  };

  // Fetches the files of `translation` into the blob store and fills in the
  // attachments. Retryable failures are returned; files that cannot be had
  // for good become attachments with an unavailable_reason.
  absl::Status CopyFiles(InboundTranslation* translation);
  absl::Status CopyFile(const TsFile& file, v1::Attachment* attachment);
  void PublishAndAnswer(const std::string& event_id, v1::Event event);
  // Answers every responder waiting for `event_id` and forgets it.
  void Finish(const std::string& event_id, int status, std::string body);

  const Options options_;
  TeamSpiritApi* const api_;
  EventSink* const sink_;
  Executor* const executor_;
  absl::Mutex mu_;
  std::string bot_user_id_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Pending> pending_ ABSL_GUARDED_BY(mu_);
};

}  // namespace imbridge::adapters::teamspirit

#endif  // IMBRIDGE_ADAPTERS_TEAMSPIRIT_INBOUND_H_
