#ifndef IMBRIDGE_ADAPTERS_COMMON_ADAPTER_RUNTIME_H_
#define IMBRIDGE_ADAPTERS_COMMON_ADAPTER_RUNTIME_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "adapters/common/account_names.h"
#include "adapters/common/connector.h"
#include "adapters/common/delivery_handler.h"
#include "adapters/common/delivery_journal.h"
#include "adapters/common/inbound_pipeline.h"
#include "adapters/common/router_client.h"
#include "common/config_loader.h"
#include "common/http/http_server.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "imbridge/v1/config.pb.h"
#include "imbridge/v1/events.pb.h"

namespace imbridge::adapters {

// Who an adapter process is, announced to the router in Hello.
struct AdapterIdentity {
  std::string platform;  // "telegram", "slack", ...
  // The accounts it serves and "edits", "deletes", "files", ...: set by
  // SetConnector() from the connector.
  std::vector<std::string> accounts;
  std::vector<std::string> capabilities;
  uint16_t default_port = 0;  // When http.listen is empty.
  absl::Duration default_request_timeout = absl::Seconds(10);
};

// The process scaffolding every adapter binary shares, so that an adapter's
// own code is only its messenger: the RouterClient, the HTTP server with the
// messenger's webhook routes plus /healthz, /readyz and /metrics, the
// standard metrics, and an orderly start and stop.
//
// Use: RunAdapter() below does it all for a Connector; by hand:
//   AdapterRuntime runtime(config.router(), config.http(), identity);
//   MyConnector connector(config, &runtime, journal);  // registers routes
//   runtime.SetConnector(&connector);
//   return runtime.Run();  // until SIGTERM/SIGINT
//
// Metrics maintained here (platform label = identity.platform):
//   imbridge_events_in_total{platform,outcome}  publishes by router outcome
//   imbridge_deliveries_total{platform,result}  ok | retryable | permanent
//   imbridge_delivery_seconds{platform}         handler latency histogram
//   imbridge_webhook_rejections_total{platform,reason}
//   imbridge_router_attached{platform}          1 while attached to any
//                                               router
//   imbridge_adapter_router_attached{platform,router}    per router: 1 while
//                                                        attached
//   imbridge_adapter_router_publishing{platform,router}  1 for the router it
//                                                        publishes through
// Adapters add their own through metrics::Registry::Default().
//
// The constructor blocks SIGTERM and SIGINT in the calling thread (and so in
// every thread started later), for Run() to take them with sigwait, and caps
// the process's malloc arenas at 2 (M_ARENA_MAX): construct the runtime in
// main before starting any other thread.
//
// Threading: construct, register routes and set handlers from the main
// thread before Run()/Start(); Publish() and CountRejection() from any
// thread.
class AdapterRuntime {
 public:
  AdapterRuntime(const v1::RouterConnection& router,
                 const v1::HttpServerOptions& http, AdapterIdentity identity);
  ~AdapterRuntime();  // Calls Stop().

  AdapterRuntime(const AdapterRuntime&) = delete;
  AdapterRuntime& operator=(const AdapterRuntime&) = delete;

  // Plugs in the messenger's connector, before Start(): the Hello announces
  // its Accounts() and the capabilities of the interfaces it implements
  // (ConnectorCapabilities), and its chat command words if it is a
  // ChatCommandHandler (whose commands then go to it); deliveries go to it
  // through a ConnectorDeliveryHandler; its Start() runs after the OnStarted
  // callbacks registered before this call, its Stop() among the OnStop
  // callbacks in registration order. `connector` must outlive Run()/Stop().
  void SetConnector(Connector* connector);

  // Where deliveries go, for an adapter without a Connector (SetConnector()
  // sets it). Required before Start(); must outlive the runtime. The
  // runtime counts and times every call.
  void SetDeliveryHandler(DeliveryHandler* handler);

  // The HTTP server, for registering webhook routes before Start().
  HttpServer& http() { return *http_; }

  // The router client (valid from construction; connects on Start()).
  RouterClient& router() { return *router_; }

  // Opens the process's delivery journal in `state_dir` (in memory, with a
  // warning, when it is empty; see DeliveryJournal::OpenInStateDir). The
  // runtime owns it; it lives as long as the runtime. On failure the error
  // is logged and returned (the process should exit with 1). Call once,
  // from main, before Start().
  absl::StatusOr<DeliveryJournal*> OpenDeliveryJournal(
      const std::string& state_dir);

  // /readyz answers 200 only while attached to the router and every check
  // returns OK; otherwise 503 with the failing checks named. Checks run on
  // an HTTP thread at each request, so they must be quick (report a cached
  // state, not make a call).
  void AddReadinessCheck(std::string name, std::function<absl::Status()> check);

  // Called by Start() once the HTTP server listens and the router client
  // runs, in registration order (register a webhook, start pollers). An
  // error fails Start().
  void OnStarted(std::function<absl::Status()> fn);

  // Called by Stop() after the HTTP server stopped and before the router
  // client stops, in registration order (stop pollers, flush, ...).
  void OnStop(std::function<void()> fn);

  // Starts the HTTP server and the router client, writes the port file,
  // then runs the OnStarted callbacks.
  absl::Status Start();

  // Start(), then blocks until SIGTERM or SIGINT, then Stop(). Returns the
  // process exit code (0 after a signal, 1 if Start() failed).
  int Run();

  // Stops the HTTP server (answering requests in flight), runs the OnStop
  // callbacks, then stops the router client. Idempotent.
  void Stop();

  // The bound HTTP port after Start().
  uint16_t port() const;

  // Publishes `event`; `done` gets the router's ack (on a client thread).
  // Counts it. Fails at once if too many are pending. Transports hand their
  // input to an InboundPipeline over RuntimeInboundRouter instead.
  absl::Status Publish(v1::Event event,
                       std::function<void(const v1::PublishAck&)> done);

  // Runtime links of this adapter's chats, over the router stream
  // (RouterClient::CreateLink/DeleteLink): blocking up to `timeout`,
  // callable from any thread, kUnavailable while not attached (retry).
  absl::StatusOr<v1::Link> CreateLink(
      const v1::Link& link, absl::Duration timeout = absl::Seconds(10));
  // CreateLink with members narrowed to threads the router resolves
  // (RouterClient::CreateLink with thread roots).
  absl::StatusOr<v1::Link> CreateLink(
      const v1::Link& link,
      const std::vector<v1::MemberThreadRoot>& thread_roots,
      absl::Duration timeout = absl::Seconds(10));
  absl::Status DeleteLink(absl::string_view name,
                          absl::Duration timeout = absl::Seconds(10));

  // Counts a refused webhook request (reason: "bad_signature",
  // "bad_json", "stale_timestamp", "unknown_type", ...).
  void CountRejection(absl::string_view reason);

  const AdapterIdentity& identity() const { return identity_; }

 private:
  class CountingHandler;

  // imbridge_events_in_total of `outcome`, looked up in the registry once
  // per outcome (not once per publish).
  metrics::Counter& EventsIn(v1::PublishAck::Outcome outcome);
  void ServeReadyz(const HttpRequest& request,
                   const std::shared_ptr<Responder>& responder);
  void ServeMetrics(const HttpRequest& request,
                    const std::shared_ptr<Responder>& responder);

  AdapterIdentity identity_;
  std::string port_file_;
  std::unique_ptr<CountingHandler> counting_handler_;
  std::unique_ptr<ConnectorDeliveryHandler> dispatcher_;
  std::unique_ptr<DeliveryJournal> journal_;
  std::unique_ptr<RouterClient> router_;
  std::unique_ptr<HttpServer> http_;
  std::vector<std::pair<std::string, std::function<absl::Status()>>> checks_;
  std::vector<std::function<absl::Status()>> on_started_;
  std::vector<std::function<void()>> on_stop_;
  uint64_t collector_ = 0;
  // EventsIn's counters by outcome, set on first use.
  std::array<std::atomic<metrics::Counter*>, 8> events_in_{};
  bool started_ = false;
  bool stopped_ = false;
};

// The inbound pipeline's way to the router through an AdapterRuntime:
// publishes are counted in imbridge_events_in_total. `runtime` must outlive
// it. Thread-safe.
class RuntimeInboundRouter : public InboundRouter {
 public:
  explicit RuntimeInboundRouter(AdapterRuntime* runtime) : runtime_(runtime) {}

  void Publish(
      v1::Event event,
      std::function<void(absl::StatusOr<v1::PublishAck>)> done) override;
  absl::StatusOr<v1::BlobRef> PutBlob(
      const v1::BlobMeta& meta,
      const std::function<absl::StatusOr<size_t>(char* buffer, size_t max)>&
          read) override;

 private:
  AdapterRuntime* const runtime_;
};

// Parses an adapter's command line (`--config FILE [--check-config]`),
// loads FILE into *config and runs `validate(source, *config)` (which checks
// required fields and values, returning ConfigError(source, "field.path",
// "reason") for the first problem). Returns true to go on running. Returns
// false with *exit_code set when the process should exit: 2 for a bad
// command line, 1 for a bad config (the reason printed to stderr as
// "<binary>: invalid config: FILE:line: field.path: reason"), 0 after
// --check-config printed "FILE: OK" or after --help.
// `extra_usage` lines (the binary's one-shot commands, "  --register  ...")
// are added to the usage text.
bool ParseAdapterCommandLine(
    int argc, char** argv, absl::string_view binary,
    google::protobuf::Message* config,
    const std::function<absl::Status(absl::string_view source)>& validate,
    int* exit_code, absl::string_view extra_usage = "");

// What RunAdapter() needs to know of one adapter binary. `Config` is its
// config message, with the fields every adapter config has: router, http,
// log_level, and state_dir unless the adapter keeps no delivery journal.
template <typename Config>
struct AdapterProgram {
  AdapterProgram() = default;
  // The program of the binary "imbridge-adapter-<platform>" whose HTTP
  // server listens on `default_port` when http.listen is empty; validate
  // and connect are still to be set.
  AdapterProgram(absl::string_view platform, uint16_t default_port)
      : binary(absl::StrCat("imbridge-adapter-", platform)) {
    identity.platform = std::string(platform);
    identity.default_port = default_port;
  }

  // The binary's name, for usage and errors ("imbridge-adapter-slack").
  std::string binary;
  // Its platform, default port and request timeout (accounts and
  // capabilities come from the connector).
  AdapterIdentity identity;
  // Checks a loaded config beyond its schema (ParseAdapterCommandLine).
  std::function<absl::Status(absl::string_view source, const Config& config)>
      validate;
  // Builds the connector: registers its webhook routes and readiness checks
  // on `runtime`, records deliveries and its state in `journal` (null for
  // a config without state_dir). An error is logged and the process exits
  // with 1.
  std::function<absl::StatusOr<std::unique_ptr<Connector>>(
      const Config& config, AdapterRuntime* runtime, DeliveryJournal* journal)>
      connect;

  // A one-shot command the binary runs instead of the adapter when its flag
  // is on the command line (`--config FILE --register`): the loaded config
  // is checked by the command's own `validate` (or the program's when
  // unset), logging starts at warn level (the command prints its results
  // to stdout), and `run`'s return value is the exit code.
  struct Command {
    std::string flag;  // "--register"
    std::string help;  // For the usage text.
    std::function<absl::Status(absl::string_view source, const Config& config)>
        validate;
    std::function<int(const Config& config)> run;
  };
  std::vector<Command> commands;
};

// An AdapterProgram::connect for a connector built as
// `ConnectorType(config, runtime, journal)`, which cannot fail.
template <typename ConnectorType, typename Config>
absl::StatusOr<std::unique_ptr<Connector>> Connect(const Config& config,
                                                   AdapterRuntime* runtime,
                                                   DeliveryJournal* journal) {
  return std::make_unique<ConnectorType>(config, runtime, journal);
}

// An AdapterProgram::connect for a connector built as
// `ConnectorType(config, runtime, journal)` whose `absl::Status Init()` must
// succeed before it serves: the connector, or Init()'s error.
template <typename ConnectorType, typename Config>
absl::StatusOr<std::unique_ptr<Connector>> ConnectAfterInit(
    const Config& config, AdapterRuntime* runtime, DeliveryJournal* journal) {
  auto connector = std::make_unique<ConnectorType>(config, runtime, journal);
  absl::Status status = connector->Init();
  if (!status.ok()) return status;
  return std::unique_ptr<Connector>(std::move(connector));
}

// Whether an adapter's config message has a state_dir (RunAdapter opens
// the delivery journal there).
template <typename Config, typename = void>
struct HasStateDir : std::false_type {};
template <typename Config>
struct HasStateDir<
    Config, std::void_t<decltype(std::declval<const Config&>().state_dir())>>
    : std::true_type {};

// The whole main() of an adapter binary: parses the command line and loads
// and checks the config (ParseAdapterCommandLine), starts logging as
// "adapter-<platform>", builds the AdapterRuntime, opens the delivery
// journal in config.state_dir() (when the config has one), builds the
// connector, plugs it in (SetConnector) and runs until SIGTERM or SIGINT.
// Returns the exit code.
// With a command's flag (AdapterProgram::commands) it runs that command
// instead.
template <typename Config>
int RunAdapter(int argc, char** argv, const AdapterProgram<Config>& program) {
  // No lock-order checks in the shipped programs (see bridge/main.cc).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  using Command = typename AdapterProgram<Config>::Command;
  const Command* command = nullptr;
  std::vector<char*> args;
  std::string extra_usage;
  for (const Command& c : program.commands) {
    absl::StrAppend(
        &extra_usage, "  ", c.flag,
        std::string(c.flag.size() < 18 ? 18 - c.flag.size() : 1, ' '), c.help,
        "\n");
  }
  for (int i = 0; i < argc; ++i) {
    const Command* found = nullptr;
    for (const Command& c : program.commands) {
      if (i > 0 && c.flag == argv[i]) found = &c;
    }
    if (found != nullptr) {
      command = found;
    } else {
      args.push_back(argv[i]);
    }
  }
  Config config;
  int exit_code = 0;
  if (!ParseAdapterCommandLine(
          static_cast<int>(args.size()), args.data(), program.binary, &config,
          [&](absl::string_view source) {
            return command != nullptr && command->validate
                       ? command->validate(source, config)
                       : program.validate(source, config);
          },
          &exit_code, extra_usage)) {
    return exit_code;
  }
  const std::string& platform = program.identity.platform;
  if (command != nullptr) {
    InitLogging(absl::StrCat("adapter-", platform), platform, LogLevel::kWarn);
    return command->run(config);
  }
  InitLogging(absl::StrCat("adapter-", platform), platform,
              ParseLogLevel(config.log_level()).value_or(LogLevel::kInfo));
  AdapterRuntime runtime(config.router(), config.http(), program.identity);
  DeliveryJournal* journal = nullptr;
  if constexpr (HasStateDir<Config>::value) {
    absl::StatusOr<DeliveryJournal*> opened =
        runtime.OpenDeliveryJournal(config.state_dir());
    if (!opened.ok()) return 1;
    journal = *opened;
  }
  absl::StatusOr<std::unique_ptr<Connector>> connector =
      program.connect(config, &runtime, journal);
  if (!connector.ok()) {
    LogError("adapter failed to start",
             {{"error", connector.status().message()}});
    return 1;
  }
  runtime.SetConnector(connector->get());
  // Run() stops the runtime (and so stops calling the connector) before
  // the connector goes.
  return runtime.Run();
}

// The most routers an adapter attaches to (router.addresses).
inline constexpr int kMaxRouterAddresses = 16;

// Checks the parts every adapter config shares: router.address or
// router.addresses (1 to kMaxRouterAddresses host:port, no duplicates, not
// both), router.token and http.listen. `prefix` is empty (fields at the top
// level).
absl::Status ValidateRouterConnection(absl::string_view source,
                                      const v1::RouterConnection& router);
absl::Status ValidateHttpServerOptions(absl::string_view source,
                                       const v1::HttpServerOptions& http);
// Both of the above, then `log_level` (empty, or one of debug, info, warn,
// error): the first ConfigError, or OK.
absl::Status ValidateAdapterBasics(absl::string_view source,
                                   const v1::RouterConnection& router,
                                   const v1::HttpServerOptions& http,
                                   absl::string_view log_level);

// What every adapter's config check starts with: ValidateAdapterBasics() of
// the config's router, http and log_level, then at least one of `accounts`.
// `AdapterConfig` is an adapter's config message (v1::SlackAdapterConfig...).
template <typename AdapterConfig>
absl::Status ValidateAdapterConfigBasics(absl::string_view source,
                                         const AdapterConfig& config) {
  absl::Status status = ValidateAdapterBasics(
      source, config.router(), config.http(), config.log_level());
  if (!status.ok()) return status;
  if (config.accounts().empty()) {
    return ConfigError(source, "accounts", "at least one account is required");
  }
  return absl::OkStatus();
}

// The config check of an adapter with several accounts, up to what is its
// messenger's own: ValidateAdapterConfigBasics(), then each account in
// order, first its name (CheckAccountName: field "accounts[<i>].name",
// unique among the accounts), then `check(account, at)`, where `at` is
// "accounts[<i>]", the prefix of the fields its ConfigErrors name. Returns
// the first error, or OK.
template <typename AdapterConfig, typename AccountCheck>
absl::Status ValidateAccounts(absl::string_view source,
                              const AdapterConfig& config,
                              const AccountCheck& check) {
  absl::Status status = ValidateAdapterConfigBasics(source, config);
  if (!status.ok()) return status;
  absl::flat_hash_set<std::string> names;
  for (int i = 0; i < config.accounts_size(); ++i) {
    const auto& account = config.accounts(i);
    const std::string at = absl::StrCat("accounts[", i, "]");
    status = CheckAccountName(source, at + ".name", account.name(), &names);
    if (!status.ok()) return status;
    status = check(account, at);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

// Makes `status` a router-ready retryable or permanent failure from an HTTP
// answer of a messenger: 429 and 5xx (and transport errors, status 0) are
// retryable with `retry_after`, other codes permanent, with `what` (the
// messenger's own description) in the message.
absl::Status HttpFailure(int http_status, absl::string_view what,
                         absl::Duration retry_after = absl::ZeroDuration());

}  // namespace imbridge::adapters

#endif  // IMBRIDGE_ADAPTERS_COMMON_ADAPTER_RUNTIME_H_
