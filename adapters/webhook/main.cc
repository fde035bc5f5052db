// imbridge-adapter-webhook: generic webhooks. Incoming webhooks (POST
// /hooks/<id>, Slack-compatible payloads) publish messages into their link;
// outgoing webhooks receive the link's messages as signed JSON POSTs. The
// webhooks themselves are created with `imbridgectl webhook create` and kept
// by the router. See docs/operations.md.

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "adapters/common/adapter_runtime.h"
#include "adapters/common/router_client.h"
#include "adapters/webhook/inbound.h"
#include "adapters/webhook/outbound.h"
#include "adapters/webhook/webhook_directory.h"
#include "common/logging.h"
#include "imbridge/v1/webhook_config.pb.h"

namespace imbridge::adapters::webhook {
namespace {

constexpr uint16_t kDefaultPort = 7714;

absl::Status Validate(absl::string_view source,
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
  for (char c : config.account()) {
    if (c == ':' || c == '/' || static_cast<unsigned char>(c) <= 0x20) {
      return ConfigError(source, "account",
                         "must not contain ':', '/', spaces or control "
                         "characters");
    }
  }
  return absl::OkStatus();
}

absl::Duration MillisOr(uint32_t ms, absl::Duration fallback) {
  return ms > 0 ? absl::Milliseconds(ms) : fallback;
}

int Main(int argc, char** argv) {
  v1::WebhookAdapterConfig config;
  int exit_code = 0;
  if (!ParseAdapterCommandLine(
          argc, argv, "imbridge-adapter-webhook", &config,
          [&](absl::string_view source) { return Validate(source, config); },
          &exit_code)) {
    return exit_code;
  }
  InitLogging("adapter-webhook", "webhook",
              ParseLogLevel(config.log_level()).value_or(LogLevel::kInfo));
  const std::string account =
      config.account().empty() ? "default" : config.account();

  AdapterIdentity identity;
  identity.platform = "webhook";
  identity.accounts = {account};
  identity.capabilities = {"edits", "deletes", "threads", "files"};
  if (config.relay_presence()) identity.capabilities.push_back("presence");
  if (config.relay_membership()) identity.capabilities.push_back("membership");
  identity.default_port = kDefaultPort;
  AdapterRuntime runtime(config.router(), config.http(), identity);

  GrpcWebhookDirectory::Options directory_options;
  directory_options.address = config.router().address().empty()
                                  ? "127.0.0.1:7700"
                                  : config.router().address();
  directory_options.token = config.router().token();
  directory_options.check_timeout =
      MillisOr(config.key_check_timeout_ms(), absl::Seconds(5));
  directory_options.outgoing_cache_ttl =
      MillisOr(config.outgoing_cache_ms(), absl::Seconds(5));
  // Accepted keys are remembered while the Attach stream they were checked
  // on lasts; the router pushes revocations over it.
  RouterClient* router = &runtime.router();
  directory_options.router_session = [router] { return router->session(); };
  GrpcWebhookDirectory directory(directory_options);
  router->OnWebhookRevoked(
      [&directory](const std::string& id) { directory.Revoke(id); });

  RuntimeInboundRouter inbound_router(&runtime);
  InboundPipeline pipeline(InboundPipeline::Options(), &inbound_router);
  IncomingWebhooks incoming(
      account, &directory, &pipeline,
      [&runtime](absl::string_view reason) { runtime.CountRejection(reason); });
  incoming.Register(runtime.http());

  OutgoingWebhooks::Options outgoing_options;
  outgoing_options.account = account;
  outgoing_options.timeout =
      MillisOr(config.outgoing_timeout_ms(), absl::Seconds(10));
  outgoing_options.ca_file = config.ca_file();
  OutgoingWebhooks outgoing(outgoing_options, &directory);
  runtime.SetDeliveryHandler(&outgoing);
  // Key checks still running submit to the pipeline, which publishes
  // through the router client; that stops after the OnStop callbacks.
  runtime.OnStop([&directory, &pipeline] {
    directory.WaitIdle();
    pipeline.Stop();
  });
  return runtime.Run();
}

}  // namespace
}  // namespace imbridge::adapters::webhook

int main(int argc, char** argv) {
  return imbridge::adapters::webhook::Main(argc, argv);
}
