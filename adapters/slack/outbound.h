#ifndef IMBRIDGE_ADAPTERS_SLACK_OUTBOUND_H_
#define IMBRIDGE_ADAPTERS_SLACK_OUTBOUND_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "adapters/common/delivery_journal.h"
#include "adapters/common/stop_signal.h"
#include "adapters/common/token_bucket.h"
#include "adapters/slack/posts_in_flight.h"
#include "adapters/slack/slack_api.h"
#include "adapters/slack/user_channels.h"
#include "imbridge/v1/router.pb.h"

namespace imbridge::adapters::slack {

// Renders the router's deliveries for one Slack account (bridge -> Slack).
//
//   posted  -> chat.postMessage with `username` = the rendered sender name,
//              `icon_url` = the sender's avatar, the text as mrkdwn and
//              `thread_ts` = thread_root_target_id (else reply_to_target_id);
//              then each file by the external upload flow into the same
//              channel and thread, with "*<sender name>*" as the comment.
//              Native ids: the message's ts, then "file:<file id>" per file.
//              Files that the origin could not provide are named in the
//              text. Each step goes through the DeliveryJournal: a retried
//              or re-sent delivery skips the steps already done, also after
//              a restart. The text carries message metadata with the
//              idempotency key; a text step left open by a crash (intent
//              recorded, no ts) is looked up in conversations.history (or
//              .replies in a thread) and posted only if it is not there. A
//              file step left open is uploaded again (uploads carry no
//              metadata to find them by).
//   edited  -> chat.update of every ts id (file ids have no text; skipped).
//   deleted -> chat.delete of every ts id, files.delete of every file id;
//              an already removed message counts as done.
// In a channel the account's service user posts in (UserChannels), all of
// it goes out with the user token instead, as that person: Slack shows no
// custom name or icon for a person's post, so the text starts with
// "*<sender name>*: " (also after an edit); files carry the same comment.
// Such a delivery is registered in PostsInFlight until its ids are in the
// journal (the echo check waits for it).
// A post or upload answered `not_in_channel` makes the poster (the bot, or
// the service user) join the channel (conversations.join) and try once
// more.
// (Presence and membership: Slack cannot show other people's presence; the
// SlackAdapter does not implement those interfaces, so the router sends
// none.) The methods are the SlackAdapter's connector interfaces
// (adapters/common/connector.h) for this account.
// Writes to one channel are paced by a token bucket (about one per second).
// Errors come from SlackApi (retryable or permanent, with Retry-After); a
// pacing wait that Stop() ends is a retryable error, and its call is not
// made.
//
// Threading: the methods from any thread; it blocks for the Slack calls and
// the pacing waits.
class SlackOutbound {
 public:
  // Fetches a blob's bytes from the router (at most `max_bytes`).
  using BlobFetcher = std::function<absl::StatusOr<std::string>(
      const std::string& blob_id, uint64_t max_bytes)>;

  struct Options {
    std::string account;
    double messages_per_second = 1;
    double burst = 3;
    uint64_t max_file_bytes = 1ull << 30;
  };

  // The account's service user; all null when it has none.
  struct ServiceUser {
    // The client with the user token.
    const SlackApi* api = nullptr;
    // Where it posts.
    UserChannels* channels = nullptr;
    PostsInFlight* in_flight = nullptr;
  };

  // `api`, `journal` and the service user's objects must outlive the
  // SlackOutbound.
  SlackOutbound(Options options, const SlackApi* api, BlobFetcher blobs,
                DeliveryJournal* journal, ServiceUser service_user);

  // Posted: the message's ts, then "file:<id>" per file.
  absl::StatusOr<std::vector<std::string>> SendMessage(
      const v1::Delivery& delivery);
  // Edited.
  absl::Status EditMessage(const v1::Delivery& delivery);
  // Deleted.
  absl::Status DeleteMessage(const v1::Delivery& delivery);

  // Ends the pacing waits in progress and makes every later write that
  // would wait fail at once: the adapter is stopping. Calls already made
  // run to their end.
  void Stop() { stopping_.Stop(); }

 private:
  // Waits for a turn to write to `channel`; retryable when stopped first.
  absl::Status Pace(const std::string& channel);
  // The client that posts in `channel`: the service user's where
  // UserChannels selects it, else the bot's.
  absl::StatusOr<const SlackApi*> PosterFor(const std::string& channel);
  bool AsUser(const SlackApi* poster) const {
    return poster == service_user_.api && poster != nullptr;
  }

  const Options options_;
  const SlackApi* api_;
  const ServiceUser service_user_;
  BlobFetcher blobs_;
  // Per Slack channel.
  TokenBucket limiter_;
  StopSignal stopping_;
  DeliveryJournal* const journal_;
};

// The prefix of native ids that are Slack file ids rather than message ts.
inline constexpr char kFileIdPrefix[] = "file:";

// The delivery journal's target of `account`'s deliveries to `channel`
// ("slack/<account>/<channel>"), for DeliveryJournal::HasNativeId.
std::string JournalTarget(absl::string_view account, absl::string_view channel);

}  // namespace imbridge::adapters::slack

#endif  // IMBRIDGE_ADAPTERS_SLACK_OUTBOUND_H_
