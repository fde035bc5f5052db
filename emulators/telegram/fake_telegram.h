#ifndef IMBRIDGE_EMULATORS_TELEGRAM_FAKE_TELEGRAM_H_
#define IMBRIDGE_EMULATORS_TELEGRAM_FAKE_TELEGRAM_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "common/http/http_client.h"
#include "common/http/http_server.h"
#include "emulators/emulator_server.h"
#include "emulators/slow_answers.h"
#include "nlohmann/json.hpp"

namespace imbridge::fakes {

// A fake Telegram Bot API server for one bot, speaking the documented wire
// format on 127.0.0.1:
//  - methods at POST/GET /bot<token>/<method> with parameters in the query
//    string, a JSON body, a form-urlencoded body or multipart/form-data
//    (uploads); answers are the `{ok:true, result}` /
//    `{ok:false, error_code, description, parameters}` envelope; another
//    token gets 401 "Unauthorized";
//  - file downloads at GET /file/bot<token>/<file_path>;
//  - getMe, setWebhook, deleteWebhook, getWebhookInfo, getUpdates (long
//    poll honouring offset, limit and timeout; 409 while a webhook is set),
//    sendMessage, editMessageText, editMessageCaption, deleteMessage
//    (refused for messages older than 48 h), getFile (refused over 20 MB),
//    sendDocument/Photo/Video/Audio/Voice/Animation/Sticker and
//    sendMediaGroup, with Telegram's checks and error descriptions (text
//    length in UTF-16 units, entity ranges, unknown chats, replies, topics,
//    migrated groups answering 400 with migrate_to_chat_id).
//
// Simulated people act through PostMessage(), EditMessage(), UploadFile(),
// AddMember(), ... which store the message and emit the Update Telegram
// would: pushed to the webhook (with X-Telegram-Bot-Api-Secret-Token, in
// order, retried until answered 2xx) when one is set, else kept for
// getUpdates. Messages sent by the bot never produce updates, as on
// Telegram.
//
// Every API call is recorded (method, parameters, uploaded files, time);
// FailNext() injects errors (for example 429 with retry_after). Chat state
// can be read and watched with Subscribe().
//
// Thread-safe. Meant for tests and for an interactive sandbox.
class FakeTelegram {
 public:
  struct Options {
    std::string token = "123456789:AAFakeTelegramTokenForTests_0123456";
    std::string bot_first_name = "Bridge";
    std::string bot_username = "imbridge_bot";
    // Pause before re-sending an update whose webhook call failed.
    absl::Duration webhook_retry_delay = absl::Milliseconds(200);
    // Largest request accepted (uploads).
    size_t max_body_bytes = 64 << 20;
    // Port of the Bot API on 127.0.0.1; 0 picks a free one.
    uint16_t port = 0;
  };

  // A person (or bot) on the fake Telegram.
  struct User {
    int64_t id = 0;
    std::string first_name;
    std::string last_name;
    std::string username;
    bool is_bot = false;
  };

  // Optional parts of a message a person posts.
  struct PostOptions {
    int64_t reply_to = 0;     // message_id replied to
    int64_t thread_id = 0;    // forum topic (its first message's id)
    nlohmann::json entities;  // MessageEntity array (UTF-16 offsets)
  };

  // A file a person uploads.
  struct Upload {
    // "document", "photo", "video", "audio", "voice", "animation",
    // "sticker".
    std::string kind = "document";
    std::string name;
    std::string mime_type;
    std::string bytes;
    // When non-zero, the size Telegram reports (to simulate files over the
    // download limit without holding their bytes).
    uint64_t declared_size = 0;
    std::string caption;
    nlohmann::json caption_entities;
    std::string media_group_id;
    int64_t thread_id = 0;
    int64_t reply_to = 0;
  };

  // A message as the fake stores it.
  struct Message {
    int64_t chat_id = 0;
    int64_t message_id = 0;
    bool from_bot = false;  // sent by this bot through the API
    bool deleted = false;
    int edits = 0;
    int64_t date = 0;  // unix seconds
    // The Message object as the API returns it (text, entities, caption,
    // document/photo/..., reply_to_message, message_thread_id, ...).
    nlohmann::json json;

    std::string text() const;  // text or caption
  };

  // One API call the fake received.
  struct ApiCall {
    std::string method;
    // Parameters, merged from query and body; JSON-typed fields parsed.
    // File fields hold {"filename","content_type","size"}.
    nlohmann::json params;
    // Uploaded files by field name: their bytes.
    std::map<std::string, std::string> files;
    absl::Time at;
    int status = 0;  // HTTP status answered
  };

  // One webhook POST the fake made.
  struct WebhookAttempt {
    int64_t update_id = 0;
    int status = 0;  // 0: transport failure
    absl::Time at;
  };

  // An injected error.
  struct Failure {
    int error_code = 429;
    std::string description = "Too Many Requests: retry after 1";
    int retry_after = 0;  // parameters.retry_after when > 0
    int64_t migrate_to_chat_id = 0;
  };

  // What changed, for Subscribe().
  struct Change {
    std::string kind;  // "message", "edit", "delete", "update", "call"
    int64_t chat_id = 0;
    int64_t message_id = 0;
    std::string method;  // for "call"
  };

  FakeTelegram();
  explicit FakeTelegram(Options options);
  ~FakeTelegram();  // Calls Stop().

  FakeTelegram(const FakeTelegram&) = delete;
  FakeTelegram& operator=(const FakeTelegram&) = delete;

  absl::Status Start();
  void Stop();
  uint16_t port() const;
  // "http://127.0.0.1:<port>": the adapter's api_base_url.
  std::string base_url() const;
  const std::string& token() const { return options_.token; }
  int64_t bot_id() const { return bot_id_; }

  // Chats. `type` is "group", "supergroup", "channel" or "private".
  int64_t CreateChat(const std::string& type, const std::string& title,
                     bool is_forum = false);
  // Opens a forum topic; returns its message_thread_id (emits the
  // forum_topic_created service message).
  int64_t CreateTopic(int64_t chat_id, const std::string& name);
  // Turns a group into a supergroup; returns the new chat id. Emits the
  // service messages with migrate_to_chat_id (old chat) and
  // migrate_from_chat_id (new chat); the old id then answers sends with 400
  // and parameters.migrate_to_chat_id.
  int64_t MigrateToSupergroup(int64_t chat_id);

  User NewUser(const std::string& first_name, const std::string& last_name = "",
               const std::string& username = "");

  // People acting. Each returns the new message's id (0 on a bad chat).
  int64_t PostMessage(int64_t chat_id, const User& from,
                      const std::string& text, const PostOptions& options);
  int64_t PostMessage(int64_t chat_id, const User& from,
                      const std::string& text) {
    return PostMessage(chat_id, from, text, PostOptions());
  }
  bool EditMessage(int64_t chat_id, int64_t message_id, const std::string& text,
                   const nlohmann::json& entities = nlohmann::json());
  int64_t UploadFile(int64_t chat_id, const User& from, const Upload& upload);
  int64_t AddMember(int64_t chat_id, const User& user);
  int64_t RemoveMember(int64_t chat_id, const User& user);
  // Queues any update (update_id is assigned); returns its update_id.
  int64_t PushUpdate(nlohmann::json update);
  // Makes a stored message look `age` old (for deleteMessage's 48 h rule).
  void AgeMessage(int64_t chat_id, int64_t message_id, absl::Duration age);

  // Sets the webhook as setWebhook would (an empty url removes it).
  void SetWebhook(const std::string& url, const std::string& secret_token);

  // The next `count` calls of `method` fail with `failure`.
  void FailNext(const std::string& method, int count, Failure failure);
  // Slowness injection: calls of `method` take effect at once but are
  // answered `delay` later (zero: at once), as when Telegram is slow.
  void DelayAnswers(const std::string& method, absl::Duration delay);
  // Calls answered late that have not been answered yet.
  int delayed_answers_pending() const { return slow_.pending(); }
  // File downloads (GET /file/bot<token>/...) are answered `delay` after
  // the request came (a slow download); zero (the default) at once.
  void DelayDownloads(absl::Duration delay);

  // Inspection.
  std::vector<ApiCall> calls() const;
  std::vector<ApiCall> calls(const std::string& method) const;
  std::vector<WebhookAttempt> webhook_attempts() const;
  std::vector<Message> messages(int64_t chat_id) const;
  // Messages the bot sent (not deleted) in `chat_id`, in order.
  std::vector<Message> bot_messages(int64_t chat_id) const;
  absl::optional<Message> message(int64_t chat_id, int64_t message_id) const;
  // Updates not yet confirmed (polling) or delivered (webhook).
  size_t pending_updates() const;
  // Waits until `predicate` holds (checked on every change and every
  // 50 ms); false on timeout.
  bool WaitFor(const std::function<bool()>& predicate,
               absl::Duration timeout = absl::Seconds(30)) const;
  bool WaitForCalls(const std::string& method, size_t n,
                    absl::Duration timeout = absl::Seconds(30)) const;
  // Calls `fn` after every change, on the thread that made it (never with
  // the fake's lock held). Returns an id for Unsubscribe().
  int Subscribe(std::function<void(const Change&)> fn);
  void Unsubscribe(int id);

 private:
  struct Chat {
    int64_t id = 0;
    std::string type;
    std::string title;
    bool is_forum = false;
    int64_t migrated_to = 0;
    int64_t next_message_id = 1;
    std::vector<Message> messages;  // by message_id - 1 is not assumed
  };
  struct StoredFile {
    std::string file_id;
    std::string file_unique_id;
    std::string path;
    std::string bytes;
    uint64_t size = 0;
  };
  struct PendingPoll {
    std::shared_ptr<Responder> responder;
    int64_t offset = 0;
    int limit = 100;
    absl::Time deadline;
  };
  struct Answer {
    int status = 200;
    nlohmann::json body;
  };

  void Serve(HttpRequest request, std::shared_ptr<Responder> responder);
  Answer Dispatch(const std::string& method, const nlohmann::json& params,
                  const std::map<std::string, std::string>& files,
                  const std::shared_ptr<Responder>& responder, bool* deferred,
                  size_t call_index);
  Answer SendMessageLocked(const nlohmann::json& p)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Answer SendFileLocked(const std::string& method, const nlohmann::json& p,
                        const std::map<std::string, std::string>& files)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Answer SendMediaGroupLocked(const nlohmann::json& p,
                              const std::map<std::string, std::string>& files)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Answer EditLocked(const std::string& method, const nlohmann::json& p)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Answer DeleteLocked(const nlohmann::json& p)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Answer GetFileLocked(const nlohmann::json& p)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Checks chat_id, migration, message_thread_id and reply_parameters of a
  // send; on success sets *chat and fills the common fields of *message.
  absl::optional<Answer> PrepareSendLocked(const nlohmann::json& p, Chat** chat,
                                           nlohmann::json* message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Chat* FindChatLocked(const nlohmann::json& chat_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Message* FindMessageLocked(int64_t chat_id, int64_t message_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  nlohmann::json ChatJsonLocked(const Chat& chat) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  nlohmann::json BotUserJson() const;
  static nlohmann::json UserJson(const User& user);
  // Stores a message in `chat` and returns it.
  Message& AddMessageLocked(Chat& chat, nlohmann::json message, bool from_bot)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stores a person's message and queues its update.
  int64_t PersonMessage(int64_t chat_id, const User* from,
                        nlohmann::json fields, int64_t thread_id,
                        int64_t reply_to);
  StoredFile& StoreFileLocked(std::string bytes, uint64_t size,
                              const std::string& extension)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int64_t QueueUpdateLocked(nlohmann::json update)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Notify(const Change& change);
  void PumpLoop();
  static Answer Error(int code, const std::string& description,
                      nlohmann::json parameters = nlohmann::json());
  static Answer Ok(nlohmann::json result);

  const Options options_;
  int64_t bot_id_ = 0;
  EmulatorServer server_;
  HttpClient http_;
  std::thread pump_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Duration download_delay_ ABSL_GUARDED_BY(mu_);
  // Threads that send delayed downloads; joined by Stop().
  std::vector<std::thread> delayed_ ABSL_GUARDED_BY(mu_);
  int64_t next_update_id_ ABSL_GUARDED_BY(mu_) = 700000001;
  int64_t next_user_id_ ABSL_GUARDED_BY(mu_) = 5000001;
  int64_t next_chat_seq_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t next_file_seq_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t next_group_seq_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<int64_t, Chat> chats_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, StoredFile> files_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::string> file_paths_
      ABSL_GUARDED_BY(mu_);  // path -> file_id
  std::deque<nlohmann::json> updates_ ABSL_GUARDED_BY(mu_);
  std::vector<PendingPoll> polls_ ABSL_GUARDED_BY(mu_);
  std::string webhook_url_ ABSL_GUARDED_BY(mu_);
  std::string webhook_secret_ ABSL_GUARDED_BY(mu_);
  std::vector<ApiCall> calls_ ABSL_GUARDED_BY(mu_);
  std::vector<WebhookAttempt> attempts_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::deque<Failure>> failures_ ABSL_GUARDED_BY(mu_);
  SlowAnswers slow_;
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<int, std::function<void(const Change&)>> subscribers_
      ABSL_GUARDED_BY(mu_);
  int next_subscriber_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace imbridge::fakes

#endif  // IMBRIDGE_EMULATORS_TELEGRAM_FAKE_TELEGRAM_H_
