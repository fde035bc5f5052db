#include "adapters/webhook/webhook_adapter.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "adapters/common/router_client.h"
#include "common/config_loader.h"

namespace imbridge::adapters::webhook {
namespace {

constexpr uint16_t kDefaultPort = 7714;

absl::Duration MillisOr(uint32_t ms, absl::Duration fallback) {
  return ms > 0 ? absl::Milliseconds(ms) : fallback;
}

GrpcWebhookDirectory::Options DirectoryOptions(
    const v1::WebhookAdapterConfig& config, RouterClient* router) {
  GrpcWebhookDirectory::Options options;
  // Key checks go to one configured router at a time, the next one when it
  // cannot be reached (router.address, or router.addresses).
  options.addresses =
      RouterClient::OptionsFromConfig(config.router(), "", {}, {})
          .RouterAddresses();
  options.token = config.router().token();
  options.check_timeout =
      MillisOr(config.key_check_timeout_ms(), absl::Seconds(5));
  options.outgoing_cache_ttl =
      MillisOr(config.outgoing_cache_ms(), absl::Seconds(5));
  // Accepted keys are remembered while the Attach stream they were checked
  // on lasts; the router pushes revocations over it.
  options.router_session = [router] { return router->session(); };
  return options;
}

OutgoingWebhooks::Options OutgoingOptions(
    const v1::WebhookAdapterConfig& config) {
  OutgoingWebhooks::Options options;
  options.accounts = WebhookAccounts(config);
  options.timeout = MillisOr(config.outgoing_timeout_ms(), absl::Seconds(10));
  options.ca_file = config.ca_file();
  return options;
}

// The reason an account name cannot be used, or "".
std::string BadAccountName(absl::string_view name) {
  if (name.empty()) return "required";
  for (char c : name) {
    if (c == ':' || c == '/' || static_cast<unsigned char>(c) <= 0x20) {
      return "must not contain ':', '/', spaces or control characters";
    }
  }
  return "";
}

}  // namespace

std::vector<std::string> WebhookAccounts(
    const v1::WebhookAdapterConfig& config) {
  std::vector<std::string> names;
  for (const v1::WebhookAccount& a : config.accounts()) {
    names.push_back(a.name());
  }
  if (names.empty()) {
    names.push_back(config.account().empty() ? "default" : config.account());
  }
  return names;
}

absl::Status ValidateWebhookConfig(absl::string_view source,
                                   const v1::WebhookAdapterConfig& config) {
  absl::Status status = ValidateAdapterBasics(
      source, config.router(), config.http(), config.log_level());
  if (!status.ok()) return status;
  if (config.outgoing_cache_ms() > 60000) {
    return ConfigError(source, "outgoing_cache_ms",
                       "must be at most 60000 (1 minute)");
  }
  if (config.outgoing_timeout_ms() > 300000) {
    return ConfigError(source, "outgoing_timeout_ms",
                       "must be at most 300000 (5 minutes)");
  }
  if (!config.accounts().empty() && !config.account().empty()) {
    return ConfigError(source, "account",
                       "the single account of a config without `accounts`; "
                       "with `accounts` add it there as {name: ...}");
  }
  if (config.accounts().empty()) {
    std::string bad = config.account().empty()
                          ? std::string()
                          : BadAccountName(config.account());
    if (!bad.empty()) return ConfigError(source, "account", bad);
    return absl::OkStatus();
  }
  absl::flat_hash_set<std::string> seen;
  for (int i = 0; i < config.accounts_size(); ++i) {
    const std::string& name = config.accounts(i).name();
    const std::string field = absl::StrCat("accounts[", i, "].name");
    std::string bad = BadAccountName(name);
    if (!bad.empty()) return ConfigError(source, field, bad);
    if (!seen.insert(name).second) {
      return ConfigError(source, field,
                         absl::StrCat("'", name, "' is used twice"));
    }
  }
  return absl::OkStatus();
}

WebhookAdapter::WebhookAdapter(const v1::WebhookAdapterConfig& config,
                               AdapterRuntime* runtime)
    : accounts_(WebhookAccounts(config)),
      relay_presence_(config.relay_presence()),
      relay_membership_(config.relay_membership()),
      directory_(DirectoryOptions(config, &runtime->router())),
      inbound_router_(runtime),
      pipeline_(InboundPipeline::Options(), &inbound_router_),
      incoming_(accounts_, &directory_, &pipeline_, this,
                [runtime](absl::string_view reason) {
                  runtime->CountRejection(reason);
                }),
      outgoing_(OutgoingOptions(config), &directory_) {
  incoming_.Register(runtime->http());
  runtime->router().OnWebhookRevoked(
      [this](const std::string& id) { directory_.Revoke(id); });
}

WebhookAdapter::~WebhookAdapter() { Stop(); }

bool WebhookAdapter::Offers(Capability capability) const {
  switch (capability) {
    case Capability::kPresence:
      return relay_presence_;
    case Capability::kMembership:
      return relay_membership_;
    default:
      return true;
  }
}

void WebhookAdapter::Stop() {
  if (stopped_) return;
  stopped_ = true;
  // Key checks still running submit to the pipeline, which publishes
  // through the router client; that stops after the connector.
  directory_.WaitIdle();
  pipeline_.Stop();
}

absl::StatusOr<InboundRoute> WebhookAdapter::Route(const IncomingPost& post) {
  return IncomingRoute(post);
}

absl::StatusOr<InboundConversion> WebhookAdapter::Convert(
    const IncomingPost& post) {
  return IncomingConversion(post);
}

absl::StatusOr<std::vector<std::string>> WebhookAdapter::SendMessage(
    const v1::Delivery& delivery) {
  return outgoing_.Deliver(delivery);
}

absl::Status WebhookAdapter::EditMessage(const v1::Delivery& delivery) {
  return outgoing_.Deliver(delivery).status();
}

absl::Status WebhookAdapter::DeleteMessage(const v1::Delivery& delivery) {
  return outgoing_.Deliver(delivery).status();
}

absl::Status WebhookAdapter::SendPresence(const v1::Delivery& delivery) {
  return outgoing_.Deliver(delivery).status();
}

absl::StatusOr<std::vector<std::string>> WebhookAdapter::SendMembership(
    const v1::Delivery& delivery) {
  return outgoing_.Deliver(delivery);
}

AdapterProgram<v1::WebhookAdapterConfig> WebhookProgram() {
  AdapterProgram<v1::WebhookAdapterConfig> program("webhook", kDefaultPort);
  program.validate = ValidateWebhookConfig;
  program.connect =
      [](const v1::WebhookAdapterConfig& config, AdapterRuntime* runtime,
         DeliveryJournal*) -> absl::StatusOr<std::unique_ptr<Connector>> {
    return std::make_unique<WebhookAdapter>(config, runtime);
  };
  return program;
}

}  // namespace imbridge::adapters::webhook
