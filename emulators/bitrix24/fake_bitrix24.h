#ifndef IMBRIDGE_EMULATORS_BITRIX24_FAKE_BITRIX24_H_
#define IMBRIDGE_EMULATORS_BITRIX24_FAKE_BITRIX24_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "common/http/http_server.h"
#include "emulators/emulator_server.h"
#include "nlohmann/json.hpp"

namespace imbridge::emulators {

// An emulated Bitrix24 portal with the Chatbots 2.0 REST API, speaking the
// documented wire format (../shared/platforms.md §3) on 127.0.0.1:
//  - REST at POST/GET /rest/<user>/<code>/<method> (an inbound webhook;
//    another code gets 401 NO_AUTH_FOUND) or /rest/<method> with `auth`
//    (an OAuth access token) in the query or the JSON body. Parameters come
//    from the query string and a JSON body. Answers are the
//    `{result, time}` / `{error, error_description}` envelopes.
//  - OAuth refresh at GET /oauth/token/?grant_type=refresh_token&client_id=
//    &client_secret=&refresh_token=: a new access/refresh pair; the old
//    refresh token stops working. An access token past its lifetime (or
//    expired with ExpireAccessToken()) gets 401 `expired_token`.
//  - The leaky bucket: every REST call adds one to the portal's level,
//    which drains at `drain_per_second`; a call that finds the level at
//    `bucket_capacity` gets 503 QUERY_LIMIT_EXCEEDED and changes nothing.
//  - imbot.v2.Bot.register (code, type, eventMode, botToken, properties;
//    the same code again is refused with BOT_CODE_ALREADY_EXISTS),
//    imbot.v2.Bot.list, imbot.v2.Event.get (botId, offset, limit 1-1000:
//    the bot's events with eventId > offset, oldest first, with nextOffset =
//    the last eventId returned (or offset) and hasMore), imbot.v2.Chat.
//    Message.send (fields.message <= 20,000 characters, fields.replyId),
//    .update, .delete, imbot.v2.File.upload (fields.name, fields.content
//    base64 <= 100 MB, fields.message) and imbot.v2.File.download
//    (returns {downloadUrl}); downloads at GET /download/<file id>/<sig>
//    answer 404 unless User-Agent, Accept, Accept-Language and Referer are
//    sent, as Bitrix24's Nginx does.
//  - batch {halt, cmd{key: "method?query"}}: up to 50 commands (their
//    parameters a PHP-style query string, "fields[message]=..."; scalars
//    arrive as strings) made in order with the batch's authentication, for
//    one unit of the leaky bucket. The answer's result is {result{key:
//    result}, result_error{key: {error, error_description}}, result_total,
//    result_next, result_time}; an empty result_error is [] (PHP's empty
//    array). With halt=1 the commands after the first error are not made.
//    A batch inside a batch is refused.
//
// Events (in fetch mode, with real JSON types): ONIMBOTV2MESSAGEADD / UPDATE
// {bot, message{id, chatId, authorId, date, text, isSystem, uuid,
// params{files[{id, name, size, type}], replyId}}, chat{id, dialogId,
// title}, user{id, name, isBot}}, ONIMBOTV2MESSAGEDELETE {bot, messageId,
// chat}, ONIMBOTV2JOINCHAT / ONIMBOTV2CHATUSERADD / ONIMBOTV2CHATUSERDELETE
// {bot, chat, user}. A bot is sent events of the chats it is in, including
// its own messages (a bridge must drop those itself).
//
// Simulated people act through PostMessage(), EditMessage(), ... Every REST
// call is recorded; FailNext() injects errors. Thread-safe. For tests and
// the sandbox.
class FakeBitrix24 {
 public:
  struct Options {
    // The inbound webhook: /rest/<webhook_user>/<webhook_code>/.
    std::string webhook_user = "1";
    std::string webhook_code = "fakewebhookcode0123456789";
    // The OAuth application.
    std::string client_id = "local.fakeapp0123";
    std::string client_secret = "fakeclientsecret0123456789";
    absl::Duration access_token_lifetime = absl::Hours(1);
    // The leaky bucket (non-Enterprise plans: 2/s, blocked above 50).
    double drain_per_second = 2;
    double bucket_capacity = 50;
    uint16_t port = 0;
  };

  struct File {
    int64_t id = 0;
    std::string name;
    std::string bytes;
  };

  struct Message {
    int64_t id = 0;
    int64_t chat_id = 0;
    int64_t author_id = 0;
    std::string text;
    int64_t reply_id = 0;
    std::vector<int64_t> file_ids;
    bool deleted = false;
    int edits = 0;
    absl::Time date;  // When it was posted.
  };

  // One REST call the fake received.
  struct Call {
    std::string method;
    nlohmann::json params;
    int status = 0;
    absl::Time at;
    // A command of a `batch` request (recorded before the batch itself).
    bool batched = false;
  };

  FakeBitrix24();
  explicit FakeBitrix24(Options options);
  ~FakeBitrix24();  // Calls Stop().
  FakeBitrix24(const FakeBitrix24&) = delete;
  FakeBitrix24& operator=(const FakeBitrix24&) = delete;

  absl::Status Start();
  void Stop();
  std::string base_url() const;  // "http://127.0.0.1:<port>"
  // The inbound webhook URL, ending in "/".
  std::string webhook_url() const;
  // REST base for OAuth calls ("<base>/rest/") and the token endpoint.
  std::string rest_url() const;
  std::string oauth_url() const;
  const Options& options() const { return options_; }

  // The current OAuth pair (issued at Start() and by each refresh).
  std::string access_token() const;
  std::string refresh_token() const;
  // The current access token answers expired_token from now on.
  void ExpireAccessToken();
  int refreshes() const;

  // The leaky bucket's parameters, from now on.
  void SetBucket(double drain_per_second, double capacity);
  // The next `count` calls of `method` ("*": any request) fail with HTTP
  // `status` and `error`, after `after` calls that work. A command of a
  // batch counts as a call of its method.
  void FailNext(const std::string& method, int count, int status,
                const std::string& error, int after = 0);

  // Portal state.
  int64_t NewUser(const std::string& name);
  int64_t CreateChat(const std::string& title);
  // Adds a person (event CHATUSERADD) or, for a bot id, the bot (JOINCHAT).
  void AddToChat(int64_t chat_id, int64_t user_id);
  void RemoveFromChat(int64_t chat_id, int64_t user_id);
  // People acting; each returns the message id (0 for a bad chat).
  int64_t PostMessage(int64_t chat_id, int64_t user_id, const std::string& text,
                      int64_t reply_id = 0);
  int64_t PostFile(int64_t chat_id, int64_t user_id, const std::string& name,
                   const std::string& bytes, const std::string& text = "");
  bool EditMessage(int64_t message_id, const std::string& text);
  bool DeleteMessage(int64_t message_id);

  // Inspection.
  std::vector<Call> calls(const std::string& method = "") const;
  // Messages of `chat_id` in order, without the deleted ones unless
  // `with_deleted`; with `author` only that author's.
  std::vector<Message> messages(int64_t chat_id, int64_t author = 0,
                                bool with_deleted = false) const;
  // A user's (or bot's) name; "" for an unknown id.
  std::string user_name(int64_t id) const;
  absl::optional<Message> message(int64_t id) const;
  absl::optional<File> file(int64_t id) const;
  // The bot id registered with `code`, or 0.
  int64_t bot_id(const std::string& code) const;
  // Events not yet passed by the bot's last Event.get offset.
  size_t pending_events(int64_t bot_id) const;
  // The highest offset `bot_id` has asked Event.get for.
  int64_t last_offset(int64_t bot_id) const;
  // Calls `fn` after every change of the portal (a message, chat or member
  // changed by a person or by a REST call), on the thread that made it,
  // without the fake's lock held. Register before Start().
  void OnChange(std::function<void()> fn);

  // Waits until `predicate` holds (checked every 20 ms); false on timeout.
  bool WaitFor(const std::function<bool()>& predicate,
               absl::Duration timeout = absl::Seconds(30)) const;

 private:
  struct Bot {
    int64_t id = 0;
    std::string code;
    std::string type;
    std::string token;
    std::string name;
    int64_t acked_offset = 0;
  };
  struct Chat {
    int64_t id = 0;
    std::string title;
    std::vector<int64_t> members;
  };
  struct Event {
    int64_t id = 0;
    int64_t bot_id = 0;
    nlohmann::json json;
  };
  struct Answer {
    int status = 200;
    nlohmann::json body;
  };

  // Calls the OnChange listeners when it goes out of scope (declared
  // before the MutexLock, so after the lock is released).
  class NotifyOnExit {
   public:
    explicit NotifyOnExit(const FakeBitrix24* fake) : fake_(fake) {}
    ~NotifyOnExit();
    NotifyOnExit(const NotifyOnExit&) = delete;
    NotifyOnExit& operator=(const NotifyOnExit&) = delete;
    bool armed = true;

   private:
    const FakeBitrix24* const fake_;
  };

  void Serve(HttpRequest request, std::shared_ptr<Responder> responder);
  // A REST request: the bucket, authentication, injected failures, then
  // the method (Execute).
  Answer Rest(const std::string& method, const nlohmann::json& params,
              bool webhook_auth) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Answer Execute(const std::string& method, const nlohmann::json& params,
                 bool webhook_auth) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Answer Batch(const nlohmann::json& params, bool webhook_auth)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Pops the next injected failure of `method` (or of "*" when
  // `any_method`), if there is one.
  absl::optional<Answer> InjectedFailureLocked(const std::string& method,
                                               bool any_method)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Answer Refresh(const nlohmann::json& params)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void IssueTokensLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues `type` with `data` for every bot in `chat`.
  void EmitLocked(const Chat& chat, const std::string& type,
                  nlohmann::json data) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  nlohmann::json MessageJsonLocked(const Message& m) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  nlohmann::json UserJsonLocked(int64_t user_id) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static nlohmann::json ChatJson(const Chat& chat);
  int64_t AddMessageLocked(Message m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Answer Ok(nlohmann::json result) const;
  static Answer Error(int status, const std::string& code,
                      const std::string& description);

  const Options options_;
  fakes::EmulatorServer server_;

  mutable absl::Mutex mu_;
  double drain_per_second_ ABSL_GUARDED_BY(mu_);
  double bucket_capacity_ ABSL_GUARDED_BY(mu_);
  double bucket_level_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time bucket_at_ ABSL_GUARDED_BY(mu_);
  std::string access_token_ ABSL_GUARDED_BY(mu_);
  std::string refresh_token_ ABSL_GUARDED_BY(mu_);
  absl::Time access_expires_ ABSL_GUARDED_BY(mu_);
  int refreshes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 1001;
  std::map<int64_t, std::string> users_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, Bot> bots_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, Chat> chats_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, Message> messages_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, File> files_ ABSL_GUARDED_BY(mu_);
  std::deque<Event> events_ ABSL_GUARDED_BY(mu_);
  int64_t next_event_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::vector<Call> calls_ ABSL_GUARDED_BY(mu_);
  struct Failure {
    int status;
    std::string error;
  };
  std::map<std::string, std::deque<Failure>> failures_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void()>> listeners_;  // Set before Start().
};

}  // namespace imbridge::emulators

#endif  // IMBRIDGE_EMULATORS_BITRIX24_FAKE_BITRIX24_H_
