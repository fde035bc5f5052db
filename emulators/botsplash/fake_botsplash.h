#ifndef IMBRIDGE_EMULATORS_BOTSPLASH_FAKE_BOTSPLASH_H_
#define IMBRIDGE_EMULATORS_BOTSPLASH_FAKE_BOTSPLASH_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/http/http_server.h"
#include "emulators/emulator_server.h"
#include "nlohmann/json.hpp"

namespace imbridge::emulators {

// An emulated Botsplash app with the Open API as documented
// (../shared/seeds/002, ../shared/platforms.md §4), on 127.0.0.1:
//  - Every call is under /open/v1/<app_id> and needs the API key (query
//    parameter `api_key`) or the Basic credentials: else 401
//    {"message": "Unauthorized"}.
//  - POST /listener/botsplash/<listener id> {visitor, args{message}}: the
//    listener must exist (else 404); creates or updates the visitor by
//    clientVisitorId (required, else 400) and sends args.message to the
//    customer; answers {success, requestId}.
//  - POST <upload path> multipart with the field "file": keeps it and
//    answers {"key": "<media key>"}; a file over `max_upload_bytes` gets 413.
//  - POST <direct message path> {text (required), visitor{clientVisitorId,
//    phoneNumber, agentClientUserId}, mediaKey}: the customer receives the
//    text (and the media of a known key; an unknown key gets 400). The
//    visitor is found by clientVisitorId; an unknown one is created when a
//    phoneNumber is given, else 400 "visitor not found". Answers the
//    visitor object.
//  - POST <update visitor path> with {idType} = clientVisitorId and
//    {idValue}: {updateOnly, agentUpdate, retainAccess, retainPhones,
//    visitor}: updates the visitor (agentClientUserId assigns it); an
//    unknown visitor with updateOnly gets 404. Answers the visitor object.
//  - GET /media/<key>: the stored media, for the customers' replies.
// Errors are {"message": "..."}. FailNext() answers the next calls with an
// error (429 with Retry-After on demand).
//
// The customer's side: what each visitor received (Received()), and
// ReplyAsCustomer() which POSTs a reply to the configured reply webhook with
// the shared secret, as Botsplash's partner webhook would.
//
// Thread-safe. For tests and the sandbox.
class FakeBotsplash {
 public:
  struct Options {
    std::string app_id = "fakeapp";
    std::string api_key = "fake-botsplash-api-key-0123";
    std::string username = "bsp-partner";
    std::string password = "fake-botsplash-password-0123";
    std::vector<std::string> listeners = {"lst-1"};
    // The paths the public docs do not give; the adapter's config names the
    // same ones.
    std::string direct_message_path = "/message/visitor";
    std::string update_visitor_path = "/visitor/{idType}/{idValue}";
    std::string upload_path = "/upload";
    uint64_t max_upload_bytes = 5 << 20;
    uint16_t port = 0;
  };

  struct Visitor {
    std::string client_visitor_id;
    std::string first_name;
    std::string last_name;
    std::string phone_number;
    std::string agent_client_user_id;
    std::string team_code;
    std::string listener_id;  // The listener that submitted it, if any.
    int updates = 0;          // Update-visitor calls.
  };

  // One message a customer received.
  struct Received {
    std::string client_visitor_id;
    std::string phone_number;
    std::string text;
    std::string media_key;  // "" without media.
    std::string media_name;
    std::string agent_client_user_id;  // The agent it was sent as.
    bool from_listener = false;        // The listener's args.message.
    int64_t seq = 0;                   // Order among Received and Reply.
  };

  // One reply a customer sent (ReplyAsCustomer).
  struct Reply {
    std::string id;
    std::string client_visitor_id;
    std::string text;
    std::string media_url;
    int status = 0;  // The webhook's answer; 0: no answer.
    int64_t seq = 0;
  };

  struct Media {
    std::string key;
    std::string name;
    std::string content_type;
    std::string bytes;
  };

  // One call the fake received (path after /open/v1/<app_id>).
  struct Call {
    std::string method;
    std::string path;
    nlohmann::json body;  // null for uploads.
    int status = 0;
  };

  FakeBotsplash();
  explicit FakeBotsplash(Options options);
  ~FakeBotsplash();  // Calls Stop().
  FakeBotsplash(const FakeBotsplash&) = delete;
  FakeBotsplash& operator=(const FakeBotsplash&) = delete;

  absl::Status Start();
  void Stop();
  // "http://127.0.0.1:<port>/open/v1": the adapter's base_url.
  std::string base_url() const;
  const Options& options() const { return options_; }

  // The next `count` calls whose path starts with `path_prefix` ("" for
  // any) are answered `status` with {"message": message} (and Retry-After
  // for a 429 when `retry_after_seconds` > 0), changing nothing.
  void FailNext(const std::string& path_prefix, int count, int status,
                const std::string& message, int retry_after_seconds = 0);

  // The next call whose path starts with `path_prefix` is carried out (the
  // customer receives the message) but its answer is held back until
  // ReleaseHeld(): a crash between Botsplash's action and its answer.
  void HoldNextAnswer(const std::string& path_prefix);
  // Whether an answer is held now.
  bool holding() const;
  // Sends the held answer (if its connection is still open).
  void ReleaseHeld();

  // A visitor that exists in Botsplash already (a CRM lead).
  void AddVisitor(const Visitor& visitor);

  // Where customers' replies go: the adapter's reply webhook.
  void SetReplyWebhook(const std::string& url, const std::string& header,
                       const std::string& secret);
  // The customer `client_visitor_id` answers: POSTs {id, text, mediaUrl,
  // createdAt, visitor{clientVisitorId, firstName, lastName, phoneNumber}}
  // to the reply webhook. Returns the webhook's HTTP status.
  absl::StatusOr<int> ReplyAsCustomer(const std::string& client_visitor_id,
                                      const std::string& text,
                                      const std::string& media_url = "");
  // The replies customers sent, in order.
  std::vector<Reply> Replies() const;
  // Calls `fn` after every change (a visitor, a message received, a
  // reply), on the thread that made it, without locks held. Before Start().
  void AddListener(std::function<void()> fn);
  // Stores `bytes` as media a customer sends; returns its public URL.
  std::string AddCustomerMedia(const std::string& name,
                               const std::string& content_type,
                               const std::string& bytes);

  // Inspection.
  std::vector<Visitor> Visitors() const;
  std::optional<Visitor> GetVisitor(const std::string& id) const;
  // Messages received by `client_visitor_id` ("" for every customer).
  std::vector<Received> ReceivedBy(const std::string& client_visitor_id) const;
  std::optional<Media> GetMedia(const std::string& key) const;
  std::vector<Call> Calls(const std::string& path_prefix = "") const;
  // Waits until `predicate` holds (checked every 20 ms); false on timeout.
  static bool WaitFor(const std::function<bool()>& predicate,
                      absl::Duration timeout = absl::Seconds(30));

 private:
  struct Answer {
    int status = 200;
    nlohmann::json body;
    int retry_after = 0;
  };
  struct Failure {
    std::string prefix;
    int status;
    std::string message;
    int retry_after;
  };

  void Serve(HttpRequest request, std::shared_ptr<Responder> responder);
  void Notify();
  Answer Api(const std::string& path, const HttpRequest& request)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Answer Listener(const std::string& id, const nlohmann::json& body)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Answer Upload(const HttpRequest& request) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Answer DirectMessage(const nlohmann::json& body)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Answer UpdateVisitor(const std::string& id_type, const std::string& id_value,
                       const nlohmann::json& body)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Copies the known VisitorInfo fields of `j` into `v`.
  static void Merge(const nlohmann::json& j, Visitor* v);
  static nlohmann::json VisitorObject(const Visitor& v);

  const Options options_;
  fakes::EmulatorServer server_;
  mutable absl::Mutex mu_;
  std::map<std::string, Visitor> visitors_ ABSL_GUARDED_BY(mu_);
  std::vector<Received> received_ ABSL_GUARDED_BY(mu_);
  std::vector<Reply> replies_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void()>> listeners_;
  std::map<std::string, Media> media_ ABSL_GUARDED_BY(mu_);
  std::vector<Call> calls_ ABSL_GUARDED_BY(mu_);
  std::deque<Failure> failures_ ABSL_GUARDED_BY(mu_);
  std::string hold_prefix_ ABSL_GUARDED_BY(mu_);
  bool hold_armed_ ABSL_GUARDED_BY(mu_) = false;
  std::function<void()> held_ ABSL_GUARDED_BY(mu_);
  std::string reply_url_ ABSL_GUARDED_BY(mu_);
  std::string reply_header_ ABSL_GUARDED_BY(mu_);
  std::string reply_secret_ ABSL_GUARDED_BY(mu_);
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace imbridge::emulators

#endif  // IMBRIDGE_EMULATORS_BOTSPLASH_FAKE_BOTSPLASH_H_
