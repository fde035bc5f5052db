#ifndef IMBRIDGE_EMULATORS_TEAMSPIRIT_FAKE_TEAMSPIRIT_H_
#define IMBRIDGE_EMULATORS_TEAMSPIRIT_FAKE_TEAMSPIRIT_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/http/http_client.h"
#include "common/http/http_server.h"
#include "emulators/emulator_server.h"
#include "emulators/slow_answers.h"

namespace imbridge::fakes {

// A TeamSpirit server in memory, speaking ../shared/teamspirit-api.md:
//
// (a) the bot REST API under `api_prefix` on its own port: bearer-key
//     checks (401 bad key, 403 not a member of the chat or not the bot's own
//     message), idempotent `client_token` (the same token of the same bot
//     within `client_token_ttl` answers 200 with the first message and posts
//     nothing), external users and presence, file upload (multipart) and
//     download, text and file size limits (413), a per-bot rate limit (429
//     with Retry-After), JSON error bodies; and incoming webhooks at
//     /hooks/<token>;
// (b) simulated people who post, edit, delete, upload files, change
//     presence, join and leave; every change, including those the bots make
//     through the REST API, is sent as a signed outgoing webhook to the
//     registered URL, one event at a time and in order, retrying the same
//     event (same event_id, fresh signature) with backoff while the receiver
//     answers non-2xx or does not answer within `webhook_timeout`;
// (c) the state (chats, messages, files, external users, presences) to read,
//     and listeners called on every change;
// (d) a record of the API calls and webhook attempts, and failure injection:
//     the next N matching calls fail with a status (429 with Retry-After, 5xx,
//     ...), and the answer to the next message POST can be held back after
//     the message was created (a crash between the POST and its result).
//
// Thread-safe. Listeners run on the server's or the caller's thread, after
// the change, without locks held; they must not block for long.
class FakeTeamSpirit {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    uint16_t port = 0;  // 0 picks a free port.
    // Where the REST API lives; api_base_url() ends with it.
    std::string api_prefix = "/api/v1";
    // Requests per second per bot before 429 (0: unlimited).
    int rate_limit_per_second = 20;
    // Outgoing webhooks: time to wait for an answer, retry backoff, give-up
    // time (TeamSpirit: 5 s, growing backoff, 24 h).
    absl::Duration webhook_timeout = absl::Seconds(5);
    absl::Duration webhook_initial_backoff = absl::Milliseconds(200);
    absl::Duration webhook_max_backoff = absl::Seconds(5);
    absl::Duration webhook_give_up_after = absl::Hours(24);
    absl::Duration client_token_ttl = absl::Hours(24);
    size_t max_text_characters = 10000;
    uint64_t max_file_bytes = 100ull * 1000 * 1000;
    // How long a held POST answer waits for ReleaseHeld() at most.
    absl::Duration hold_limit = absl::Seconds(120);
  };

  struct Presence {
    std::string status;  // "online", "away", "dnd", "offline"; "" unknown.
    std::string text;
  };

  struct User {
    std::string id;
    std::string name;
    std::string avatar_url;
    bool is_bot = false;
    Presence presence;
  };

  struct Author {
    std::string external_id;
    std::string name;
    std::string avatar_url;
  };

  struct Message {
    std::string id;
    std::string chat_id;
    std::string user_id;  // The poster (a person, a bot, "hook:<token>").
    std::string text;
    std::string format = "markdown";
    std::string reply_to;
    std::string thread_id;
    std::vector<std::string> file_ids;
    std::optional<Author> author;
    std::string client_token;
    std::string username;  // Incoming webhook posts: the given name.
    std::string icon_url;  // Incoming webhook posts: the given icon.
    bool edited = false;
    bool deleted = false;
  };

  struct File {
    std::string id;
    std::string name;
    std::string mime_type;
    std::string content;
    std::string uploaded_by;
  };

  struct ExternalUser {
    std::string id;
    std::string name;
    std::string avatar_url;
    Presence presence;
    int updates = 0;  // PUTs received.
  };

  // One REST or incoming-webhook call as received.
  struct ApiCall {
    std::string method;
    std::string path;  // Without the API prefix: "/chats/c-1/messages".
    std::string body;  // Up to 4 KiB; empty for multipart.
    int status = 0;    // What the fake answered.
    std::string bot_id;
  };

  // One attempt to deliver an outgoing webhook.
  struct WebhookAttempt {
    std::string event_id;
    std::string type;
    int status = 0;  // 0: no answer (connection failed or timed out).
    absl::Time at;   // When it was answered (or failed).
  };

  // What changed, for listeners.
  struct Change {
    enum Kind {
      kMessageCreated,
      kMessageUpdated,
      kMessageDeleted,
      kFileUploaded,
      kUserPresence,
      kBotPresence,
      kExternalUser,
      kMemberJoined,
      kMemberLeft,
    };
    Kind kind;
    std::string chat_id;  // Messages and members.
    std::string id;       // Message, file, user or external-user id.
  };

  struct PostOptions {
    std::string reply_to;
    std::string thread_id;
    std::vector<std::string> file_ids;
    std::string format = "markdown";
  };

  FakeTeamSpirit();
  explicit FakeTeamSpirit(Options options);
  ~FakeTeamSpirit();  // Stop().

  FakeTeamSpirit(const FakeTeamSpirit&) = delete;
  FakeTeamSpirit& operator=(const FakeTeamSpirit&) = delete;

  absl::Status Start();
  // Stops serving and the webhook sender (queued webhooks are dropped).
  void Stop();

  uint16_t port() const;
  // "http://127.0.0.1:<port><api_prefix>".
  std::string api_base_url() const;

  // --- Setup ---------------------------------------------------------------
  // Registers a bot account; `api_key` authenticates its REST calls.
  void AddBot(const std::string& id, const std::string& name,
              const std::string& api_key);
  void AddUser(const std::string& id, const std::string& name,
               const std::string& avatar_url = "");
  // Creates a chat with members (people and bots).
  void AddChat(const std::string& id, const std::string& title,
               const std::vector<std::string>& members,
               const std::string& type = "group");
  // Registers the outgoing webhook every chat event is sent to.
  void SetOutgoingWebhook(const std::string& url, const std::string& secret);
  // Creates an incoming webhook posting into `chat_id`; returns its URL.
  std::string AddIncomingWebhook(const std::string& chat_id,
                                 const std::string& token);

  // --- Simulated people (each emits its outgoing webhook) -------------------
  absl::StatusOr<std::string> PostAsUser(const std::string& user_id,
                                         const std::string& chat_id,
                                         const std::string& text,
                                         const PostOptions& options);
  absl::StatusOr<std::string> PostAsUser(const std::string& user_id,
                                         const std::string& chat_id,
                                         const std::string& text) {
    return PostAsUser(user_id, chat_id, text, PostOptions());
  }
  absl::Status EditAsUser(const std::string& user_id,
                          const std::string& message_id,
                          const std::string& text);
  absl::Status DeleteAsUser(const std::string& user_id,
                            const std::string& message_id);
  // Stores a file the person is about to attach; returns its id.
  std::string UploadAsUser(const std::string& user_id, const std::string& name,
                           const std::string& mime_type,
                           const std::string& content);
  void SetUserPresence(const std::string& user_id, const std::string& status,
                       const std::string& text = "");
  void JoinChat(const std::string& user_id, const std::string& chat_id);
  void LeaveChat(const std::string& user_id, const std::string& chat_id);

  // --- State
  // ------------------------------------------------------------------ Messages
  // of a chat in posting order (deleted ones only when asked).
  std::vector<Message> Messages(const std::string& chat_id,
                                bool include_deleted = false) const;
  std::optional<Message> GetMessage(const std::string& id) const;
  std::optional<File> GetFile(const std::string& id) const;
  std::optional<ExternalUser> GetExternalUser(const std::string& id) const;
  std::vector<ExternalUser> ExternalUsers() const;
  // The bot's presence and every status it was set to, in order.
  Presence BotPresence(const std::string& bot_id) const;
  std::vector<std::string> BotPresenceHistory(const std::string& bot_id) const;
  std::vector<ApiCall> Calls() const;
  std::vector<WebhookAttempt> WebhookAttempts() const;
  // Webhooks not yet delivered (queued or being retried).
  size_t PendingWebhooks() const;

  // Registers a listener; returns a handle for RemoveListener().
  int AddListener(std::function<void(const Change&)> listener);
  void RemoveListener(int handle);

  // Polls `predicate` until it is true or `timeout` passes.
  static bool WaitUntil(const std::function<bool()>& predicate,
                        absl::Duration timeout = absl::Seconds(30));

  // --- Failure injection -----------------------------------------------------
  // The next `n` REST calls whose method equals `method` (any when empty) and
  // whose path contains `path_part` are answered `status` (429 carries
  // Retry-After: retry_after_seconds) without effect.
  void FailNext(int n, int status, int retry_after_seconds = 0,
                const std::string& method = "",
                const std::string& path_part = "");
  // An outage: every REST call (file downloads included) received within
  // `duration` from now is answered `status` (a 5xx) without effect, before
  // any FailNext() injection and the rate limit. Outgoing webhooks are still
  // sent. A later call replaces the window; a zero duration ends it.
  void FailFor(absl::Duration duration, int status = 503);
  // The next POST of a message is carried out, but its answer is held until
  // ReleaseHeld() (or hold_limit).
  void HoldNextPost();
  // Waits until a held POST was carried out; returns false on timeout.
  bool WaitForHeld(absl::Duration timeout = absl::Seconds(30)) const;
  // Sends the held answer (to a connection that may be gone).
  void ReleaseHeld();
  // Calls of `call` ("post_message": POST /chats/{id}/messages;
  // "upload_file": POST /files) take effect at once but are answered `delay`
  // later, as when TeamSpirit is slow to answer; zero (the default) answers
  // at once.
  void DelayAnswers(const std::string& call, absl::Duration delay);
  // Calls answered late that have not been answered yet.
  int delayed_answers_pending() const { return slow_.pending(); }
  // Answers to file downloads (GET /files/{id}/content) are sent `delay`
  // after the request came (a slow download); zero (the default) at once.
  void DelayDownloads(absl::Duration delay);

 private:
  struct Bot {
    std::string id;
    double tokens = 0;
    absl::Time refilled;
  };
  struct Chat {
    std::string id;
    std::string title;
    std::string type;
    std::set<std::string> members;
  };
  struct Failure {
    int remaining = 0;
    int status = 500;
    int retry_after_seconds = 0;
    std::string method;
    std::string path_part;
  };
  struct OutgoingWebhook {
    std::string event_id;
    std::string type;
    std::string body;
    absl::Time first_attempt = absl::InfinitePast();
    absl::Time next_attempt = absl::InfinitePast();
    absl::Duration backoff;
  };
  struct ClientToken {
    std::string message_id;
    absl::Time at;
  };

  void HandleApi(HttpRequest request, std::shared_ptr<Responder> responder);
  void HandleIncomingHook(HttpRequest request,
                          std::shared_ptr<Responder> responder);
  // The answer to one API call; status 0 means "hold the responder".
  struct Answer {
    Answer() = default;
    Answer(int status, std::string body,
           std::string content_type = "application/json")
        : status(status),
          body(std::move(body)),
          content_type(std::move(content_type)) {}
    int status = 200;
    std::string body;
    std::string content_type = "application/json";
    HttpHeaderList headers;
  };
  // Routes one authenticated API call.
  Answer Route(const std::string& bot_id, const HttpRequest& request,
               const std::vector<std::string>& segments);
  Answer PostMessage(const std::string& bot_id, const std::string& chat_id,
                     const std::string& body);
  Answer EditMessage(const std::string& bot_id, const std::string& chat_id,
                     const std::string& message_id, const std::string& body);
  Answer DeleteMessage(const std::string& bot_id, const std::string& chat_id,
                       const std::string& message_id);
  Answer UploadFile(const std::string& bot_id, const HttpRequest& request);
  Answer DownloadFile(const std::string& file_id);
  Answer SetBotPresence(const std::string& bot_id, const std::string& body);
  Answer PutExternalUser(const std::string& external_id,
                         const std::string& body);

  // The message `message_id` that `poster` may edit or delete: not deleted,
  // in `chat_id` (any chat when empty), posted by `poster`. kNotFound when
  // there is no such message, kPermissionDenied when someone else posted it.
  absl::StatusOr<Message*> FindMessageLocked(const std::string& poster,
                                             const std::string& message_id,
                                             const std::string& chat_id = "")
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The REST answer to FindMessageLocked()'s error: 404 or 403.
  static Answer MessageError(const absl::Status& error);
  // Builds and queues a chat event webhook (mu_ held).
  void QueueMessageEvent(const std::string& type, const Message& message,
                         const std::string& actor_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void QueueEvent(const std::string& type, std::string body_without_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string UserJson(const std::string& user_id) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool TakeRateToken(const std::string& bot_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Notify(const Change& change);
  void SenderLoop();

  const Options options_;
  EmulatorServer server_;
  HttpClient http_;
  SlowAnswers slow_;

  mutable absl::Mutex mu_;
  std::map<std::string, std::string> api_keys_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Bot> bots_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, User> users_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Chat> chats_ ABSL_GUARDED_BY(mu_);
  std::vector<Message> messages_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, File> files_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, ExternalUser> external_users_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<std::string>> bot_presence_history_
      ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, std::string>, ClientToken> client_tokens_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> incoming_hooks_ ABSL_GUARDED_BY(mu_);
  std::vector<ApiCall> calls_ ABSL_GUARDED_BY(mu_);
  std::vector<WebhookAttempt> attempts_ ABSL_GUARDED_BY(mu_);
  std::vector<Failure> failures_ ABSL_GUARDED_BY(mu_);
  absl::Time outage_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int outage_status_ ABSL_GUARDED_BY(mu_) = 503;
  bool hold_next_post_ ABSL_GUARDED_BY(mu_) = false;
  bool held_ready_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<Responder> held_ ABSL_GUARDED_BY(mu_);
  Answer held_answer_ ABSL_GUARDED_BY(mu_);
  std::string webhook_url_ ABSL_GUARDED_BY(mu_);
  std::string webhook_secret_ ABSL_GUARDED_BY(mu_);
  std::deque<OutgoingWebhook> outgoing_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Duration download_delay_ ABSL_GUARDED_BY(mu_);
  // Threads that send delayed download answers; joined by Stop().
  std::vector<std::thread> delayed_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;

  absl::Mutex listeners_mu_;
  std::map<int, std::function<void(const Change&)>> listeners_
      ABSL_GUARDED_BY(listeners_mu_);
  int next_listener_ ABSL_GUARDED_BY(listeners_mu_) = 0;

  std::thread sender_;
};

}  // namespace imbridge::fakes

#endif  // IMBRIDGE_EMULATORS_TEAMSPIRIT_FAKE_TEAMSPIRIT_H_
