#ifndef IMBRIDGE_ADAPTERS_TEAMSPIRIT_TEAMSPIRIT_API_H_
#define IMBRIDGE_ADAPTERS_TEAMSPIRIT_TEAMSPIRIT_API_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "adapters/teamspirit/rate_limiter.h"
#include "common/http/http_client.h"

// TeamSpirit's wire format (../shared/teamspirit-api.md): the outgoing
// webhook's JSON, the REST calls of the bot API and the incoming webhook.
// This header and teamspirit_api.cc are the only places that know
// TeamSpirit's field names and paths; the rest of the adapter works on the
// plain structs below, so adjusting to a deployment whose server differs
// touches these two files (or only the config's `api_paths`).

namespace imbridge::adapters::teamspirit {

// A TeamSpirit person or bot.
struct TsUser {
  std::string id;
  std::string name;
  std::string avatar_url;
  bool is_bot = false;
};

// The person from another messenger a message was posted on behalf of.
struct TsAuthor {
  std::string external_id;
  std::string name;
  std::string avatar_url;
};

// A file as TeamSpirit describes it.
struct TsFile {
  std::string id;
  std::string name;
  std::string mime_type;
  uint64_t size = 0;
};

// A presence: status is "online", "away", "dnd" or "offline".
struct TsPresence {
  std::string status;
  std::string text;
};

// A message inside an outgoing-webhook event.
struct TsMessage {
  std::string id;
  std::string text;
  bool markdown = true;  // `format`: "markdown" (default) or "plain".
  std::string reply_to;
  std::string thread_id;
  std::vector<TsFile> files;
  std::optional<TsAuthor> author;
};

// The kinds of outgoing-webhook events.
enum class TsEventType {
  kUnknown,
  kMessageCreated,
  kMessageUpdated,
  kMessageDeleted,
  kPresenceChanged,
  kMemberJoined,
  kMemberLeft,
};

// One outgoing-webhook request.
struct TsWebhookEvent {
  std::string event_id;
  TsEventType type = TsEventType::kUnknown;
  std::string type_name;  // As sent, for logs and counters.
  absl::Time created_at = absl::InfinitePast();  // InfinitePast if absent.
  std::string chat_id;                           // Empty for presence.
  std::optional<TsUser> user;
  std::optional<TsMessage> message;
  std::optional<TsPresence> presence;
};

// Parses an outgoing-webhook body. kInvalidArgument when it is not JSON,
// not an object, lacks `event_id` or `type`, or when a known type lacks a
// field it must carry (`chat.id`, `user.id`, `message.id`, ...). An unknown
// `type` parses (type kUnknown) so that the caller can count and skip it.
absl::StatusOr<TsWebhookEvent> ParseWebhookEvent(absl::string_view body);

// A message to post with PostMessage().
struct TsNewMessage {
  std::string text;
  bool markdown = true;
  std::string reply_to;
  std::string thread_id;
  std::vector<std::string> file_ids;
  std::optional<TsAuthor> author;
  // TeamSpirit's idempotency key: the same token within 24 h returns the
  // first message instead of posting again.
  std::string client_token;
};

// The REST paths, relative to the base URL, with "{chat_id}",
// "{message_id}", "{file_id}" and "{external_id}" placeholders. Defaults are
// the documented paths.
struct TsApiPaths {
  std::string me = "/me";
  std::string chat = "/chats/{chat_id}";
  std::string members = "/chats/{chat_id}/members";
  std::string messages = "/chats/{chat_id}/messages";
  std::string message = "/chats/{chat_id}/messages/{message_id}";
  std::string files = "/files";
  std::string file_content = "/files/{file_id}/content";
  std::string presence = "/presence";
  std::string external_user = "/external-users/{external_id}";
};

// The bot API of one TeamSpirit bot.
//
// Every call passes through the bot's RateLimiter (and blocks while it
// makes the caller wait), then performs one HTTP request on the calling
// thread. Errors follow the contract: 429 (with Retry-After, which also
// pauses the limiter), 5xx and transport failures are retryable
// (RetryableError, code kUnavailable, with the retry-after); 400
// kInvalidArgument, 401 kUnauthenticated, 403 kPermissionDenied, 404
// kNotFound, 409 kFailedPrecondition, 413 kOutOfRange, other statuses
// kUnknown. Messages name the call and TeamSpirit's error code and message,
// never the API key.
//
// Thread-safe; calls may run concurrently.
class TeamSpiritApi {
 public:
  struct Options {
    // "https://ts.example.com/api/v1" (a trailing slash is ignored).
    std::string base_url;
    // Sent as "Authorization: Bearer <api_key>". Never logged.
    std::string api_key;
    TsApiPaths paths;
    // Time one call may take.
    absl::Duration timeout = absl::Seconds(30);
  };

  // `http` and `limiter` must outlive the client.
  TeamSpiritApi(Options options, const HttpClient* http, RateLimiter* limiter);

  // GET /me: the bot's own user.
  absl::StatusOr<TsUser> GetMe();

  // POST /chats/{chat_id}/messages: returns the message id (of the first
  // message when the client token was seen before).
  absl::StatusOr<std::string> PostMessage(absl::string_view chat_id,
                                          const TsNewMessage& message);

  // PATCH /chats/{chat_id}/messages/{id}.
  absl::Status EditMessage(absl::string_view chat_id,
                           absl::string_view message_id, absl::string_view text,
                           bool markdown);

  // DELETE /chats/{chat_id}/messages/{id}.
  absl::Status DeleteMessage(absl::string_view chat_id,
                             absl::string_view message_id);

  // POST /files (multipart, field "file"): `read` fills the buffer with up
  // to `max` bytes and returns how many (0 at the end); `size` is the total.
  absl::StatusOr<TsFile> UploadFile(
      absl::string_view name, absl::string_view mime_type, uint64_t size,
      std::function<absl::StatusOr<size_t>(char* buffer, size_t max)> read);

  // GET /files/{id}/content: streams the bytes to `sink`. Refuses (kOutOfRange)
  // a file over `max_bytes`.
  absl::Status DownloadFile(
      absl::string_view file_id, uint64_t max_bytes,
      const std::function<absl::Status(absl::string_view chunk)>& sink);

  // PUT /presence: the bot's own presence.
  absl::Status SetPresence(const TsPresence& presence);

  // PUT /external-users/{external_id}: creates or updates a person from
  // another messenger, with a presence when given.
  absl::Status PutExternalUser(absl::string_view external_id,
                               absl::string_view name,
                               absl::string_view avatar_url,
                               const std::optional<TsPresence>& presence);

 private:
  std::string Url(
      absl::string_view path_template,
      std::initializer_list<std::pair<absl::string_view, absl::string_view>>
          values) const;
  HttpHeaderList AuthHeaders() const;
  // Rate-limits, sends, and converts a non-2xx answer (or a transport
  // failure) to a Status.
  absl::StatusOr<HttpResponse> Call(HttpClientRequest request,
                                    absl::string_view what);

  Options options_;
  const HttpClient* http_;
  RateLimiter* limiter_;
};

// TeamSpirit's incoming webhook (send-only mode): posts text under a name
// and an icon. Retryable and permanent errors as for TeamSpiritApi.
// Thread-safe.
class TsIncomingWebhook {
 public:
  // `url` is secret and never logged. `http` and `limiter` must outlive this.
  TsIncomingWebhook(std::string url, const HttpClient* http,
                    RateLimiter* limiter,
                    absl::Duration timeout = absl::Seconds(30));

  absl::Status Post(absl::string_view text, absl::string_view username,
                    absl::string_view icon_url);

 private:
  std::string url_;
  const HttpClient* http_;
  RateLimiter* limiter_;
  absl::Duration timeout_;
};

// Converts TeamSpirit's answer `response` to call `what` into a Status (OK
// for 2xx). Exposed for tests.
absl::Status StatusFromResponse(const HttpResponse& response,
                                absl::string_view what);

// Percent-encodes `value` for use as one path segment.
std::string EscapePathSegment(absl::string_view value);

}  // namespace imbridge::adapters::teamspirit

#endif  // IMBRIDGE_ADAPTERS_TEAMSPIRIT_TEAMSPIRIT_API_H_
