#ifndef IMBRIDGE_ADAPTERS_SLACK_INBOUND_H_
#define IMBRIDGE_ADAPTERS_SLACK_INBOUND_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "adapters/slack/slack_api.h"
#include "imbridge/v1/events.pb.h"
#include "nlohmann/json.hpp"

namespace imbridge::adapters::slack {

// Returns what is known about a Slack user id (at least the id itself as
// the display name). May block (users.info).
using UserLookup = std::function<SlackUser(absl::string_view user_id)>;

// Whether a message of the service user (BotIdentity::service_user_id,
// without bot_id) in `channel` is one of the bridge's copies, posted with
// the user token. May block. An error means "cannot tell now" (retryable).
using CopyCheck = std::function<absl::StatusOr<bool>(
    absl::string_view channel, const nlohmann::json& message)>;

// The result of converting one Events API callback.
struct InboundConversion {
  // Not OK when the callback cannot be converted now and should be tried
  // again (a CopyCheck failed); then nothing else is set.
  absl::Status status;
  // The bridge event, when the callback is relayed.
  std::optional<v1::Event> event;
  // Why it is not relayed, when `event` is empty ("own post",
  // "text unchanged", "unsupported subtype channel_join", ...).
  std::string ignored;
  // For channel_created: the new channel (no bridge event; the adapter may
  // join it).
  std::optional<SlackChannel> created_channel;
  // For a posted message with files: the URL to download each attachment
  // from (url_private_download), in the order of the attachments; empty for
  // a file Slack offers no URL for (the attachment then already has an
  // unavailable_reason).
  std::vector<std::string> file_urls;
};

// The `type` of an Events API request body (url_verification,
// event_callback, app_rate_limited, ...; "" when absent), read before the
// adapter dispatches on it. Errors: kInvalidArgument, with the reason, for a
// body that is not a JSON object or whose `type` is not a string (the
// request is then answered 400).
absl::StatusOr<std::string> EventsRequestType(const nlohmann::json& body);

// The message id prefix and text of the notice a channel_archive event
// becomes.
inline constexpr char kChannelArchivePrefix[] = "channel_archive:";
inline constexpr char kChannelArchivedText[] = "archived this channel";

// Converts the `event_callback` envelope `callback` (platforms.md 1.1, 1.3)
// of account `account` into a bridge event:
//   message (no subtype, thread_broadcast, file_share, me_message, and
//     bot_message of other bots) -> posted; `thread_ts` other than `ts`
//     becomes thread_root_id; mrkdwn -> RichText;
//   message_changed -> edited (ignored when the text did not change, as for
//     reply counts and unfurls);
//   message_deleted -> deleted (message_id = deleted_ts);
//   member_joined_channel / member_left_channel -> membership;
//   channel_archive -> posted: a notice "archived this channel" by the
//     archiving person, message id "channel_archive:<event_ts>" (see
//     docs/slack.md, "Channel events");
//   channel_created -> no event; `created_channel` describes the channel.
// The app's own posts (bot_id, app_id or bot user id of `self`) are
// ignored, and so are the service user's posts, edits and deletes that
// `is_copy` recognises as copies and the service user's own membership
// changes; other event types and subtypes are ignored too. The key is
// "slack:<account>:<event_id>"; native message ids are `ts` strings.
// Blocking only through `lookup`. Thread-safe.
InboundConversion ConvertEventCallback(const nlohmann::json& callback,
                                       absl::string_view account,
                                       const BotIdentity& self,
                                       const UserLookup& lookup,
                                       const CopyCheck& is_copy = nullptr);

}  // namespace imbridge::adapters::slack

#endif  // IMBRIDGE_ADAPTERS_SLACK_INBOUND_H_
