#ifndef IMBRIDGE_ADAPTERS_SLACK_SLACK_API_H_
#define IMBRIDGE_ADAPTERS_SLACK_SLACK_API_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/http/http_client.h"
#include "nlohmann/json.hpp"

namespace imbridge::adapters::slack {

// Who the bot is in its workspace (auth.test plus bots.info).
struct BotIdentity {
  std::string team_id;
  std::string user_id;  // The bot user ("U…").
  std::string bot_id;   // "B…".
  std::string app_id;   // "A…".
  // The account's service user (auth.test with the user token), when it
  // has one: its posts in channels it posts in for the bridge are copies
  // only where the delivery journal knows them.
  std::string service_user_id;
};

// What users.info tells about a person.
struct SlackUser {
  std::string id;
  std::string name;          // The handle.
  std::string display_name;  // profile.display_name, else real_name, else name.
  std::string avatar_url;    // profile.image_192 (or image_72).
  bool is_bot = false;
};

// What conversations.info (or a channel_created event) tells about a
// channel.
struct SlackChannel {
  std::string id;
  std::string name;
  std::string creator;  // The user id that created it.
  bool is_archived = false;
};

// files.getUploadURLExternal's answer.
struct UploadTarget {
  std::string upload_url;
  std::string file_id;
};

// The Slack Web API client of one app installation (platforms.md 1.7, 1.8).
//
// Every method makes one or two blocking HTTPS calls on the calling thread,
// with its token in "Authorization: Bearer" (never in a URL, never logged):
// the bot token, or, for the client of an account's service user, the user
// token (the methods then act as that person: auth.test names the person,
// chat.postMessage posts as them). Failures are converted at this edge:
//   - HTTP 429, or ok:false with "ratelimited": retryable (kUnavailable)
//     with the Retry-After Slack sent (1 s when it sent none);
//   - ok:false with internal_error, fatal_error, service_unavailable,
//     request_timeout (and HTTP 5xx, transport failures, timeouts):
//     retryable;
//   - any other ok:false error (channel_not_found, not_in_channel,
//     is_archived, msg_too_long, invalid_auth, message_not_found,
//     cant_update_message, cant_delete_message, ...): kFailedPrecondition
//     with "slack <method>: <error>" (permanent);
//   - other HTTP statuses: kFailedPrecondition.
// Use IsRetryable()/RetryAfter() from delivery_handler.h on the result.
//
// Thread-safe: the object is immutable after construction; the HttpClient
// must outlive it.
class SlackApi {
 public:
  struct Options {
    // Web API base, without a trailing slash: "https://slack.com/api".
    std::string base_url = "https://slack.com/api";
    // The token sent as "Authorization: Bearer": the bot token, or a user
    // token for a client acting as the service user.
    std::string bot_token;
    // Hosts (name, or name:port) the token may be sent to for file
    // downloads; the base URL's host is always allowed.
    std::vector<std::string> file_hosts = {"files.slack.com"};
    // Time for one Web API call.
    absl::Duration timeout = absl::Seconds(10);
  };

  SlackApi(Options options, const HttpClient* http);

  // Calls `method` with a JSON body (chat.* methods). Returns the whole
  // response object on ok:true.
  absl::StatusOr<nlohmann::json> CallJson(absl::string_view method,
                                          const nlohmann::json& args) const;
  // Calls `method` with a form body (read methods, files.*), with `token`
  // instead of the bot token when not empty. `timeout` overrides the
  // default when not zero.
  absl::StatusOr<nlohmann::json> CallForm(
      absl::string_view method, const HttpHeaderList& fields,
      absl::string_view token = {},
      absl::Duration timeout = absl::ZeroDuration()) const;

  // auth.test, then bots.info for the app id.
  absl::StatusOr<BotIdentity> Identify() const;

  // chat.postMessage; returns the new message's ts. `username`, `icon_url`
  // and `thread_ts` are sent only when not empty. A non-empty
  // `delivery_key` is attached as message metadata
  // {event_type: "imbridge_delivery", event_payload: {key: <delivery_key>}},
  // for FindDelivery().
  absl::StatusOr<std::string> PostMessage(
      absl::string_view channel, absl::string_view text,
      absl::string_view username, absl::string_view icon_url,
      absl::string_view thread_ts, absl::string_view delivery_key = {}) const;
  // Looks for the message that PostMessage() posted with `delivery_key`, in
  // the channel's history (conversations.history) or, with a `thread_ts`,
  // in that thread (conversations.replies), among messages since `oldest`,
  // with include_all_metadata. Returns its ts, or std::nullopt when no such
  // message exists. Reads at most 10 pages of 200 messages.
  absl::StatusOr<std::optional<std::string>> FindDelivery(
      absl::string_view channel, absl::string_view thread_ts,
      absl::string_view delivery_key, absl::Time oldest) const;
  // chat.update.
  absl::Status UpdateMessage(absl::string_view channel, absl::string_view ts,
                             absl::string_view text) const;
  // chat.delete.
  absl::Status DeleteMessage(absl::string_view channel,
                             absl::string_view ts) const;

  // users.info, with a short timeout (`timeout`).
  absl::StatusOr<SlackUser> UserInfo(absl::string_view user_id,
                                     absl::Duration timeout) const;
  // users.getPresence: "active" or "away".
  absl::StatusOr<std::string> GetPresence(absl::string_view user_id) const;
  // users.setPresence of the token's own user: "auto" or "away".
  absl::Status SetPresence(absl::string_view presence) const;

  // conversations.info.
  absl::StatusOr<SlackChannel> ChannelInfo(absl::string_view channel) const;
  // conversations.join: the token's user becomes a member of `channel`
  // (already being one is fine).
  absl::Status JoinChannel(absl::string_view channel) const;

  // The external upload flow: files.getUploadURLExternal(filename, length),
  // the bytes POSTed to the upload URL, then files.completeUploadExternal
  // with channel_id, thread_ts (when not empty) and initial_comment (when
  // not empty). Returns the file id.
  absl::StatusOr<std::string> UploadFile(
      absl::string_view filename, absl::string_view title,
      absl::string_view content, absl::string_view channel_id,
      absl::string_view thread_ts, absl::string_view initial_comment) const;
  // files.delete.
  absl::Status DeleteFile(absl::string_view file_id) const;

  // Downloads a file from `url` (url_private_download) with the bot token,
  // refusing more than `max_bytes` (kOutOfRange). The token is sent only if
  // the URL's scheme is https (or the base URL's scheme) and its host is an
  // allowed file host; otherwise kPermissionDenied and nothing is fetched.
  // A redirect elsewhere is followed without the token (HttpClient drops
  // Authorization across hosts).
  absl::StatusOr<std::string> DownloadFile(absl::string_view url,
                                           uint64_t max_bytes,
                                           absl::Duration timeout) const;
  // True when DownloadFile would send the token to `url`.
  bool IsTrustedFileUrl(absl::string_view url) const;

  // apps.connections.open with the app-level token: the WebSocket URL for
  // Socket Mode.
  absl::StatusOr<std::string> OpenSocketConnection(
      absl::string_view app_token) const;

 private:
  absl::StatusOr<nlohmann::json> Finish(
      absl::string_view method,
      const absl::StatusOr<HttpResponse>& response) const;

  Options options_;
  const HttpClient* http_;
};

// The message metadata event_type of the bridge's posts.
inline constexpr char kDeliveryMetadataType[] = "imbridge_delivery";

// The error of an ok:false answer (or HTTP failure) of `method`, classified
// as described on SlackApi.
absl::Status SlackError(absl::string_view method, int http_status,
                        absl::string_view error, absl::Duration retry_after);

}  // namespace imbridge::adapters::slack

#endif  // IMBRIDGE_ADAPTERS_SLACK_SLACK_API_H_
