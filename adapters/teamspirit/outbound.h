#ifndef IMBRIDGE_ADAPTERS_TEAMSPIRIT_OUTBOUND_H_
#define IMBRIDGE_ADAPTERS_TEAMSPIRIT_OUTBOUND_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "adapters/common/bounded_cache.h"
#include "adapters/common/delivery_handler.h"
#include "adapters/common/delivery_journal.h"
#include "adapters/teamspirit/teamspirit_api.h"
#include "imbridge/v1/router.pb.h"

namespace imbridge::adapters::teamspirit {

// TeamSpirit's longest message text, in characters.
inline constexpr size_t kMaxTextCharacters = 10000;

// Streams a blob from the router's store to `write`; returns its metadata.
// Blocks. (RouterClient::GetBlob in the binary.)
using BlobFetcher = std::function<absl::StatusOr<v1::BlobMeta>(
    absl::string_view blob_id,
    const std::function<absl::Status(absl::string_view chunk)>& write)>;

// Told the outcome of every delivery (for the bot's health presence).
using DeliveryObserver = std::function<void(const absl::Status& outcome)>;

// The external-user id under which a person from another messenger is shown
// on TeamSpirit: "<prefix><platform>-<account>-<user id>".
std::string ExternalUserId(absl::string_view prefix, absl::string_view platform,
                           absl::string_view account,
                           absl::string_view user_id);

// Renders the router's deliveries through the bot API (bot mode).
//
//  - A new message becomes POST /chats/{id}/messages under an external user
//    (created or refreshed with PUT /external-users/{id} at most once an
//    hour per person, or when the name or avatar changes; the last 10,000
//    people are remembered, so one forgotten is put again) with
//    client_token = the delivery's idempotency key, so that a retry after a
//    crash returns the first message instead of posting again. Text over
//    10,000 characters becomes several messages (tokens "<key>", "<key>#2",
//    ...). Files are copied from the router's blob store with POST /files
//    and attached to the first message; files that cannot be copied become a
//    notice line. Replies and threads use the resolved target ids.
//  - An edit PATCHes each copy; a delete DELETEs each copy (a copy that is
//    already gone counts as done).
//  - A presence change updates the person's external user with the new
//    presence.
//  - Membership changes become a short notice when `membership_notices`.
//
// Posts and notices go through the delivery journal: the file copies are
// the steps of the record "<key>#files" (a file id, or the notice that
// replaces the file), the messages those of "<key>". After a restart a
// delivery resumes after its last recorded step: copied files are not
// uploaded again, posted parts not posted again, and a completed delivery
// returns its ids without a call. A post left open by a crash is made again
// with the same client_token (TeamSpirit answers with the message it
// created, if it did); an upload left open is made again (TeamSpirit has no
// lookup of files: the first copy, if any, stays unattached).
// Errors: retryable ones (429, 5xx, transport, blob store unavailable) are
// returned as RetryableError; others are permanent.
//
// Thread-safe: Deliver() runs concurrently for different targets.
class TeamSpiritDeliverer : public DeliveryHandler {
 public:
  struct Options {
    std::string external_user_prefix = "imb-";
    // Post under the bot with the sender's name in bold instead of under an
    // external user.
    bool post_as_bot = false;
    bool membership_notices = false;
    uint64_t max_file_bytes = 100ull << 20;
    // How long a created external user is trusted before it is PUT again.
    absl::Duration external_user_refresh = absl::Hours(1);
  };

  // `api` and `journal` must outlive the deliverer. `observer` may be
  // empty.
  TeamSpiritDeliverer(Options options, TeamSpiritApi* api, BlobFetcher blobs,
                      DeliveryJournal* journal, DeliveryObserver observer);

  absl::StatusOr<std::vector<std::string>> Deliver(
      const v1::Delivery& delivery) override;

 private:
  absl::StatusOr<std::vector<std::string>> DeliverInner(
      const v1::Delivery& delivery);
  absl::StatusOr<std::vector<std::string>> Post(const v1::Delivery& delivery);
  absl::Status Edit(const v1::Delivery& delivery);
  absl::Status Delete(const v1::Delivery& delivery);
  absl::Status Presence(const v1::Delivery& delivery);
  absl::StatusOr<std::vector<std::string>> Membership(
      const v1::Delivery& delivery);
  // The author to post under (creating the external user when needed), or
  // nullopt when posting as the bot.
  // Copies the delivery's attachments (through the journal); returns the
  // file ids to attach and appends the notices of the others to `text`.
  absl::StatusOr<std::vector<std::string>> CopyAttachments(
      const v1::Delivery& delivery, std::string* text);
  absl::StatusOr<std::optional<TsAuthor>> AuthorFor(
      const v1::Delivery& delivery, const v1::UserRef& sender);
  // Copies one attachment to TeamSpirit; returns its file id, or an empty id
  // with *notice set when it cannot be had for good.
  absl::StatusOr<std::string> CopyAttachment(const v1::Attachment& attachment,
                                             std::string* notice);
  std::string RenderText(const v1::Delivery& delivery, const v1::RichText& text,
                         bool with_name) const;

  struct KnownUser {
    std::string name;
    std::string avatar_url;
    absl::Time refreshed;
  };

  const Options options_;
  TeamSpiritApi* const api_;
  const BlobFetcher blobs_;
  DeliveryJournal* const journal_;
  const DeliveryObserver observer_;
  absl::Mutex mu_;
  // External users put recently, by external id.
  static constexpr size_t kKnownUsers = 10000;
  BoundedCache<std::string, KnownUser> known_users_ ABSL_GUARDED_BY(mu_){
      kKnownUsers};
};

// Renders new messages through TeamSpirit's incoming webhook (send-only
// mode): the text with the sender's name and avatar as username and icon,
// attachments as notice lines. Nothing else can be rendered; other kinds
// succeed without effect (the adapter does not announce them). The parts of
// a long text are the steps of the delivery's journal record, so a restart
// does not post the parts already posted. There is no idempotency key in
// this mode: a part left open by a crash between the POST and its answer is
// posted again (it may appear twice), and a warning says so.
//
// Thread-safe.
class SendOnlyDeliverer : public DeliveryHandler {
 public:
  // `webhook` and `journal` must outlive the deliverer. `observer` may be
  // empty.
  SendOnlyDeliverer(TsIncomingWebhook* webhook, DeliveryJournal* journal,
                    DeliveryObserver observer);

  absl::StatusOr<std::vector<std::string>> Deliver(
      const v1::Delivery& delivery) override;

 private:
  TsIncomingWebhook* const webhook_;
  DeliveryJournal* const journal_;
  const DeliveryObserver observer_;
};

// A notice line for a file that is not copied ("[file: report.pdf, 47 KB:
// reason]"), escaped for markdown.
std::string FileNotice(const v1::Attachment& attachment,
                       absl::string_view reason);

}  // namespace imbridge::adapters::teamspirit

#endif  // IMBRIDGE_ADAPTERS_TEAMSPIRIT_OUTBOUND_H_
