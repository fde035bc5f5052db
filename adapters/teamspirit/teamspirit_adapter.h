#ifndef IMBRIDGE_ADAPTERS_TEAMSPIRIT_TEAMSPIRIT_ADAPTER_H_
#define IMBRIDGE_ADAPTERS_TEAMSPIRIT_TEAMSPIRIT_ADAPTER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "adapters/common/account_set.h"
#include "adapters/common/adapter_runtime.h"
#include "adapters/common/connector.h"
#include "adapters/common/delivery_journal.h"
#include "adapters/common/inbound_pipeline.h"
#include "adapters/teamspirit/inbound.h"
#include "adapters/teamspirit/settings.h"
#include "common/http/http_client.h"
#include "imbridge/v1/teamspirit_config.pb.h"

namespace imbridge::adapters::teamspirit {

// The TeamSpirit adapter: every configured account in one process, as the
// messenger's connector. A bot account has its REST client (with its own
// rate limit), its outgoing-webhook route (`webhook_path`) and receiver, its
// identity (GET /me, retried until it works; a readiness check
// "teamspirit/<account>" until then) and its health presence; a send-only
// account has its incoming webhook. Deliveries go to the target account's
// renderer (TeamSpiritDeliverer or SendOnlyDeliverer, outbound.h), which
// records posts in the delivery journal. Inbound events of every account go
// through one InboundPipeline, one lane per account and chat.
//
// Capabilities: edits, deletes, threads, files and presence when at least
// one account is a bot (a send-only account takes those deliveries without
// effect), membership when a bot account has membership_notices.
//
// Threading: construct, Start() and Stop() from the main thread (the
// runtime does); the delivery methods are thread-safe.
class TeamSpiritAdapter : public MessengerConnector<TsInboundEvent>,
                          public MessageEditor,
                          public MessageDeleter,
                          public ThreadedMessages,
                          public FileMessages,
                          public PresenceRenderer,
                          public MembershipRenderer {
 public:
  // Registers the webhook routes and readiness checks on `runtime`.
  // `accounts` must be valid (AccountsFromConfig); `runtime` and `journal`
  // must outlive the adapter.
  TeamSpiritAdapter(std::vector<TeamSpiritSettings> accounts,
                    AdapterRuntime* runtime, DeliveryJournal* journal);
  ~TeamSpiritAdapter() override;  // Calls Stop().

  std::vector<std::string> Accounts() const override {
    return accounts_.names();
  }
  bool Offers(Capability capability) const override;
  // Starts identifying each bot and its health presence. Returns at once.
  absl::Status Start() override;
  // Stops identifying, answers the inbound work, sets each bot offline.
  // Idempotent.
  void Stop() override;

  // InboundConnector: the verified outgoing-webhook events of every bot
  // account, routed and converted by that account's WebhookReceiver (one
  // lane per account and chat).
  absl::StatusOr<InboundRoute> Route(const TsInboundEvent& raw) override;
  absl::StatusOr<InboundConversion> Convert(const TsInboundEvent& raw) override;

  absl::StatusOr<std::vector<std::string>> SendMessage(
      const v1::Delivery& delivery) override;
  absl::Status EditMessage(const v1::Delivery& delivery) override;
  absl::Status DeleteMessage(const v1::Delivery& delivery) override;
  absl::Status SendPresence(const v1::Delivery& delivery) override;
  absl::StatusOr<std::vector<std::string>> SendMembership(
      const v1::Delivery& delivery) override;

 private:
  struct Account;

  // The receiver of a bot account, or an error naming the account.
  absl::StatusOr<WebhookReceiver*> ReceiverOf(const std::string& account);
  // Renders `delivery` with its target account's renderer.
  absl::StatusOr<std::vector<std::string>> Render(const v1::Delivery& delivery);

  HttpClient http_;
  RuntimeInboundRouter inbound_router_;
  std::unique_ptr<InboundPipeline> pipeline_;
  AccountSet<Account> accounts_;
  bool stopped_ = false;
};

// The binary's program for RunAdapter(): platform "teamspirit", port 7711,
// a request timeout of 4.5 s (TeamSpirit waits 5 s; answering 503 before
// that makes it retry sooner), ValidateTeamSpiritConfig, and a
// TeamSpiritAdapter of the config's accounts.
AdapterProgram<v1::TeamSpiritAdapterConfig> TeamSpiritProgram();

}  // namespace imbridge::adapters::teamspirit

#endif  // IMBRIDGE_ADAPTERS_TEAMSPIRIT_TEAMSPIRIT_ADAPTER_H_
