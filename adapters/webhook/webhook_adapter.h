#ifndef IMBRIDGE_ADAPTERS_WEBHOOK_WEBHOOK_ADAPTER_H_
#define IMBRIDGE_ADAPTERS_WEBHOOK_WEBHOOK_ADAPTER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "adapters/common/adapter_runtime.h"
#include "adapters/common/connector.h"
#include "adapters/common/inbound_pipeline.h"
#include "adapters/webhook/inbound.h"
#include "adapters/webhook/outbound.h"
#include "adapters/webhook/webhook_directory.h"
#include "imbridge/v1/webhook_config.pb.h"

namespace imbridge::adapters::webhook {

// The generic webhook adapter as a connector: every configured account in
// one process. Incoming webhooks (POST /hooks/<id>, IncomingWebhooks) of
// each account publish into their links through one InboundPipeline (one
// lane per webhook), whose raw input is an IncomingPost that this connector
// routes and converts (on the HTTP thread: the conversion only builds the
// event); deliveries to outgoing webhooks of each account are
// POSTed by OutgoingWebhooks. The webhooks themselves are kept by the router
// (GrpcWebhookDirectory). Capabilities: edits, deletes, threads, files
// (metadata only), and presence / membership when relay_presence /
// relay_membership.
//
// Threading: construct, Start() and Stop() from the main thread (the
// runtime does); the delivery methods are thread-safe.
class WebhookAdapter : public MessengerConnector<IncomingPost>,
                       public MessageEditor,
                       public MessageDeleter,
                       public ThreadedMessages,
                       public FileMessages,
                       public PresenceRenderer,
                       public MembershipRenderer {
 public:
  // Registers POST /hooks/ on `runtime`. `config` must be valid
  // (ValidateWebhookConfig); `runtime` must outlive the adapter.
  WebhookAdapter(const v1::WebhookAdapterConfig& config,
                 AdapterRuntime* runtime);
  ~WebhookAdapter() override;  // Calls Stop().

  std::vector<std::string> Accounts() const override { return accounts_; }
  bool Offers(Capability capability) const override;
  // Waits for the key checks in progress, then answers the inbound work.
  // Idempotent.
  void Stop() override;

  // IncomingRoute() and IncomingConversion() (inbound.h).
  absl::StatusOr<InboundRoute> Route(const IncomingPost& post) override;
  absl::StatusOr<InboundConversion> Convert(const IncomingPost& post) override;

  absl::StatusOr<std::vector<std::string>> SendMessage(
      const v1::Delivery& delivery) override;
  absl::Status EditMessage(const v1::Delivery& delivery) override;
  absl::Status DeleteMessage(const v1::Delivery& delivery) override;
  absl::Status SendPresence(const v1::Delivery& delivery) override;
  absl::StatusOr<std::vector<std::string>> SendMembership(
      const v1::Delivery& delivery) override;

 private:
  const std::vector<std::string> accounts_;
  const bool relay_presence_;
  const bool relay_membership_;
  GrpcWebhookDirectory directory_;
  RuntimeInboundRouter inbound_router_;
  InboundPipeline pipeline_;
  IncomingWebhooks incoming_;
  OutgoingWebhooks outgoing_;
  bool stopped_ = false;
};

// The account names of `config`: `accounts`, or the single `account`
// ("default" when empty).
std::vector<std::string> WebhookAccounts(
    const v1::WebhookAdapterConfig& config);

// Checks the config: router, http and log_level, the accounts (valid,
// unique names; `account` and `accounts` not both), sane numbers. Returns
// ConfigError(source, "field", reason) for the first problem.
absl::Status ValidateWebhookConfig(absl::string_view source,
                                   const v1::WebhookAdapterConfig& config);

// The binary's program for RunAdapter(): platform "webhook", port 7714,
// ValidateWebhookConfig, and a WebhookAdapter. It keeps no delivery journal
// (the config has no state_dir): a delivery is one POST, re-sent with the
// same Idempotency-Key (docs/webhook.md).
AdapterProgram<v1::WebhookAdapterConfig> WebhookProgram();

}  // namespace imbridge::adapters::webhook

#endif  // IMBRIDGE_ADAPTERS_WEBHOOK_WEBHOOK_ADAPTER_H_
