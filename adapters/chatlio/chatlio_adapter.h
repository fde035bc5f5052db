#ifndef IMBRIDGE_ADAPTERS_CHATLIO_CHATLIO_ADAPTER_H_
#define IMBRIDGE_ADAPTERS_CHATLIO_CHATLIO_ADAPTER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "adapters/chatlio/payload.h"
#include "adapters/common/account_set.h"
#include "adapters/common/adapter_runtime.h"
#include "adapters/common/connector.h"
#include "adapters/common/delivery_journal.h"
#include "adapters/common/inbound_pipeline.h"
#include "common/http/http_server.h"
#include "imbridge/v1/chatlio_config.pb.h"

namespace imbridge::adapters::chatlio {

inline constexpr uint16_t kDefaultPort = 7716;

// One verified Chatlio webhook of one account (the inbound pipeline's raw
// input).
struct ChatlioInput {
  std::string account;
  ChatlioWebhook webhook;
};

// The runtime link of a visitor's conversation (docs/chatlio.md, "Visitor
// conversations"): named "<link_prefix><conversationUUID>", with the
// visitor's Slack channel {slack, <slack_account>, <channel id>}, the
// configured support member, and the conversation's own Chatlio channel
// {chatlio, <account>, "conversation:<uuid>"} with direction out (it makes
// the link this adapter's: the router lets an adapter create only links
// with a channel of its own; it publishes nothing, and listens to the link
// for the Slack adapter's "channel archived" message).
v1::Link VisitorLink(const v1::ChatlioAccount& account,
                     const ChatlioWebhook& webhook);

// The thread root of a VisitorLink's support member (member 1): the copy, in
// the support chat, of the conversation's new-conversation notice
// (NoticeMessageId in the account's notices channel). std::nullopt when the
// support member names a thread_id of its own (it is linked as it is).
std::optional<v1::MemberThreadRoot> VisitorThreadRoot(
    const v1::ChatlioAccount& account, absl::string_view conversation_uuid);

// Checks a loaded config: router, http and log_level, at least one account,
// names valid and unique, webhook_secret present and at least 16 characters
// of [A-Za-z0-9_-], slack_workspace_url empty or http(s), slack_account
// and support (platform, account, chat_id) both or neither, link_prefix
// of [A-Za-z0-9._-]. Returns
// ConfigError(source, "field", reason) for the first problem.
absl::Status ValidateChatlioConfig(absl::string_view source,
                                   const v1::ChatlioAdapterConfig& config);

// The Chatlio connector (docs/chatlio.md): Chatlio's webhooks become
// messages of the account's notices channel {chatlio, <account>, "notices"}.
//
// Inbound: `POST /chatlio/<account>/<webhook_secret>[/<type>]` (type: a
// WebhookKindName). The secret is compared in constant time; an unknown
// account or a wrong secret is answered 404 and logged without the secret.
// A body that is not a JSON object is 400; a JSON object of no known shape
// (or of another type than the URL names) is answered 200, logged and
// counted in imbridge_chatlio_unknown_webhooks_total{account}; a body over
// http.max_body_bytes (1 MiB by default) is 413 (the HTTP server's). A known
// webhook goes through the InboundPipeline (one lane per conversation) as
// WebhookEvent(), the transcript's htmlBody copied into the blob store as
// its attachment, and is answered 200 only after the router's ack (503 to
// make Chatlio retry, 400 for an event the router refuses). The event key
// (WebhookEventKey) makes a repeated webhook one message: the router's
// deduplication is durable.
//
// Visitor conversations (accounts with slack_account and support): a
// new-conversation webhook naming the visitor's Slack channel records a
// pending visitor link in the journal's state
// ("chatlio/pending/<account>/<uuid>" = the channel id) before its notice
// is published, and the linker thread creates the conversation's
// VisitorLink as soon as the notice is stored: the support member narrowed
// to the thread rooted at the notice's copy in the support chat
// (VisitorThreadRoot), so that each visitor has a thread. The router
// creates the link at once, also before the copy is made (it parks the
// thread's deliveries until then: docs/protocol.md); the linker asks again
// while the router cannot be reached (UNAVAILABLE) or does not know the
// notice yet (NOT_FOUND), with a backoff from 0.2 s doubling to 10 s, also
// after a restart (the pending links are read back from the journal;
// creating the same link again is harmless). A notice whose
// copy cannot be made (dead-lettered; FAILED_PRECONDITION), one not in the
// router's message map after 10 minutes, or a router that does not resolve
// thread roots, gets the whole support chat linked instead: logged and
// counted in imbridge_chatlio_whole_chat_links_total{account}. A link the
// router refuses otherwise (a bad support member) is logged as an error,
// counted in imbridge_chatlio_link_errors_total{account}, and given up.
// The new-conversation notice then ends with kAnswerInThreadLine.
//
// The transcript deletes the link (or drops the pending one) and records
// the conversation as ended in the journal's state
// ("chatlio/ended/<account>/<uuid>"), so that a late or repeated
// new-conversation webhook does not link it again. The router being
// unreachable makes the transcript answered 503 (retried).
//
// A message of the Slack adapter saying that the visitor's channel was
// archived (message id "channel_archive:<ts>", docs/slack.md), delivered to
// the conversation's own channel, removes the link and ends the
// conversation as the transcript does.
//
// Outbound: nothing is sent to Chatlio (its visitors are answered in
// Slack): deliveries to a conversation's channel render nothing (no native
// ids) apart from the archive above; the notices channel is a link member
// with `direction: in`, and a delivery to it is refused as a permanent error
// saying so.
//
// Threading: see connector.h; webhook handlers never block. The linker is a
// thread of the adapter's own; Stop() joins it (after at most one link
// request in progress, up to 5 s).
class ChatlioAdapter : public MessengerConnector<ChatlioInput> {
 public:
  // Registers the webhook route on `runtime`. `config` must be valid
  // (ValidateChatlioConfig); `runtime` and `journal` (null: no state kept)
  // must outlive the adapter.
  ChatlioAdapter(const v1::ChatlioAdapterConfig& config,
                 AdapterRuntime* runtime, DeliveryJournal* journal);
  ~ChatlioAdapter() override;  // Calls Stop().

  std::vector<std::string> Accounts() const override {
    return accounts_.names();
  }
  absl::StatusOr<std::vector<std::string>> SendMessage(
      const v1::Delivery& delivery) override;
  // Answers the inbound work in progress. Idempotent.
  void Stop() override;

  absl::StatusOr<InboundRoute> Route(const ChatlioInput& raw) override;
  absl::StatusOr<InboundConversion> Convert(const ChatlioInput& raw) override;

 private:
  // A visitor link the linker has still to create.
  struct PendingLink {
    const v1::ChatlioAccount* account = nullptr;
    std::string uuid;
    std::string channel_id;
    // When this process first knew of it, and when to ask next.
    absl::Time since;
    absl::Time next_attempt;
    absl::Duration backoff;
  };

  void HandleWebhook(HttpRequest request, std::shared_ptr<Responder> responder);
  // The visitor link's part of converting `raw`: a retryable error when the
  // journal or the router cannot be used now.
  absl::Status UpdateVisitorLink(const v1::ChatlioAccount& account,
                                 const ChatlioWebhook& webhook);
  // Records the pending link of a new conversation (journal and memory).
  absl::Status AddPendingLink(const v1::ChatlioAccount& account,
                              const ChatlioWebhook& webhook);
  // Reads the journal's pending links back (at start).
  void LoadPendingLinks();
  // Wakes the linker to try every pending link now.
  void KickLinker();
  void LinkerLoop();
  // One attempt for the pending link `key`; false to try again later.
  bool TryLink(const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(link_mu_);
  // Forgets pending link `key` (journal and memory).
  absl::Status DropPendingLink(const std::string& key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(link_mu_);

  AccountSet<const v1::ChatlioAccount> accounts_{"Chatlio"};
  AdapterRuntime* const runtime_;
  DeliveryJournal* const journal_;
  RuntimeInboundRouter inbound_router_;
  InboundPipeline pipeline_;
  bool stopped_ = false;

  // Held while a visitor link is created or deleted: the transcript's
  // deletion waits for a creation in progress.
  absl::Mutex link_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  absl::Mutex mu_;
  // By "<account>/<uuid>".
  absl::flat_hash_map<std::string, PendingLink> pending_ ABSL_GUARDED_BY(mu_);
  bool kicked_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread linker_;
};

// The binary's program for RunAdapter(): platform "chatlio", port 7716,
// ValidateChatlioConfig, and a ChatlioAdapter.
AdapterProgram<v1::ChatlioAdapterConfig> ChatlioProgram();

}  // namespace imbridge::adapters::chatlio

#endif  // IMBRIDGE_ADAPTERS_CHATLIO_CHATLIO_ADAPTER_H_
