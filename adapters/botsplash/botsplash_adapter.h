#ifndef IMBRIDGE_ADAPTERS_BOTSPLASH_BOTSPLASH_ADAPTER_H_
#define IMBRIDGE_ADAPTERS_BOTSPLASH_BOTSPLASH_ADAPTER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "adapters/botsplash/botsplash_api.h"
#include "adapters/botsplash/mapping.h"
#include "adapters/common/account_set.h"
#include "adapters/common/adapter_runtime.h"
#include "adapters/common/connector.h"
#include "adapters/common/delivery_journal.h"
#include "adapters/common/inbound_pipeline.h"
#include "common/executor.h"
#include "common/http/http_client.h"
#include "imbridge/v1/botsplash_config.pb.h"

namespace imbridge::adapters::botsplash {

inline constexpr uint16_t kDefaultPort = 7717;

// One customer reply that passed the webhook's checks.
struct BotsplashReply {
  std::string account;
  Reply reply;
};

// Checks a loaded config (docs/botsplash.md lists every rule).
absl::Status ValidateBotsplashConfig(absl::string_view source,
                                     const v1::BotsplashAdapterConfig& config);

// The binary: imbridge-adapter-botsplash, platform "botsplash", its default
// port, built as a BotsplashConnector (for RunAdapter).
AdapterProgram<v1::BotsplashAdapterConfig> BotsplashProgram();

// The Open API client options of `account` (base URL with the app, the
// credentials, pacing).
OpenApiClient::Options ClientOptions(const v1::BotsplashAccount& account);

// The Botsplash connector (docs/botsplash.md): a customer (a Botsplash
// visitor, reached over SMS or web chat) is the channel
// "visitor:<clientVisitorId>" of an account.
//
// Starting: `!bridge botsplash [<account>] start <phone> <first> [last]`
// (a chat command the router forwards) submits the visitor to the
// account's listener (StartConversation), remembers it (its phone and name
// in the adapter's state, "botsplash/visitor/<account>/<id>"), links the
// thread rooted at the command to "visitor:<id>" (a runtime link
// "botsplash-<account>-<id>") and answers in that thread. A command that
// comes again (same event key) gets its first answer again and does
// nothing else.
//
// Outbound: a posted message becomes "send direct message to visitor" with
// its text and the visitor's clientVisitorId and phone; each file up to
// carrier_limit_bytes is uploaded and sent with its mediaKey, a larger one
// as a link served by this adapter (public_url) or as a notice. A message
// of a user mapped to an agent first assigns the visitor to that agent
// (update visitor, once per change of agent). SMS cannot be edited or
// deleted: the connector implements neither, so the router skips edits and
// deletes (and logs it). Every delivery's steps go through the
// DeliveryJournal; a step whose call was cut by a crash is taken as sent (at
// most once: a customer never gets a text twice).
//
// Inbound: POSTs to each account's reply webhook, authenticated by a shared
// secret header (constant time; 401), JSON (400), mapped by the configured
// JSON paths (400 naming a missing field); a reply of a visitor the bridge
// does not know (neither started nor sent to by it, nor in the router's
// links at attach) is answered 200, counted in
// imbridge_botsplash_unknown_visitor_replies_total and dropped. Known
// replies go through the InboundPipeline (one lane per visitor) and are
// answered once the router stored them; a media URL is copied as a file.
//
// Threading: see connector.h. Webhook handlers do not block; file links are
// served on the connector's own threads.
class BotsplashConnector : public MessengerConnector<BotsplashReply>,
                           public FileMessages,
                           public ChatCommandHandler {
 public:
  BotsplashConnector(const v1::BotsplashAdapterConfig& config,
                     AdapterRuntime* runtime, DeliveryJournal* journal);
  ~BotsplashConnector() override;

  // Loads the known visitors from the state.
  absl::Status Init();

  std::vector<std::string> Accounts() const override {
    return accounts_.names();
  }
  absl::StatusOr<std::vector<std::string>> SendMessage(
      const v1::Delivery& delivery) override;
  absl::Status Start() override;
  void Stop() override;

  absl::StatusOr<InboundRoute> Route(const BotsplashReply& raw) override;
  absl::StatusOr<InboundConversion> Convert(const BotsplashReply& raw) override;

  std::vector<std::string> CommandWords() const override;
  v1::ChatCommandAnswer HandleChatCommand(
      const v1::ChatCommand& command) override;

  // `!bridge botsplash start ...` of `account`: `words` are the words
  // after "start". Submits the visitor to the listener (with `greeting` as
  // the listener's message when not empty) and records it. Returns the
  // visitor's clientVisitorId. kInvalidArgument with the usage for bad
  // words; the Open API's errors as they are.
  absl::StatusOr<std::string> StartConversation(
      absl::string_view account, const std::vector<std::string>& words,
      absl::string_view greeting);

 private:
  struct Account {
    v1::BotsplashAccount config;
    std::unique_ptr<OpenApiClient> api;
    ReplyMapping mapping;
  };

  void HandleReply(Account* account, HttpRequest request,
                   std::shared_ptr<Responder> responder);
  void HandleFile(Account* account, HttpRequest request,
                  std::shared_ptr<Responder> responder);
  // The visitor as the state knows it (its id at least).
  Visitor LoadVisitor(const Account& account, const std::string& id);
  absl::Status SaveVisitor(const Account& account, const Visitor& visitor);
  bool IsKnown(const Account& account, const std::string& visitor_id);
  // Assigns the visitor to `agent` unless the state says it is already.
  absl::Status AssignAgent(Account* account, Visitor* visitor,
                           const std::string& agent);
  std::string AgentOf(const Account& account, const v1::UserRef& user) const;
  // The link to a file over the carrier limit, or "" without public_url.
  std::string FileLink(const Account& account,
                       const v1::Attachment& attachment) const;
  std::string FileSignature(const Account& account,
                            absl::string_view blob_id) const;

  const v1::BotsplashAdapterConfig config_;
  AdapterRuntime* const runtime_;
  DeliveryJournal* const journal_;
  HttpClient http_;
  RuntimeInboundRouter inbound_router_;
  std::unique_ptr<InboundPipeline> pipeline_;
  AccountSet<Account> accounts_{"Botsplash"};
  // "<account>/<clientVisitorId>" of the visitors the adapter knows.
  mutable absl::Mutex mu_;
  absl::flat_hash_set<std::string> known_ ABSL_GUARDED_BY(mu_);
  // Serves file links (reads blobs from the router).
  std::unique_ptr<Executor> files_;
};

}  // namespace imbridge::adapters::botsplash

#endif  // IMBRIDGE_ADAPTERS_BOTSPLASH_BOTSPLASH_ADAPTER_H_
