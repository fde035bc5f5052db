#include "adapters/common/adapter_runtime.h"

#include <signal.h>
#include <stdio.h>

#include <cstdio>
#include <cstring>
#include <fstream>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/http/http_server_config.h"
#include "common/process_allocator.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace imbridge::adapters {
namespace {

// Splits "host:port" (the host may be a bracketed IPv6 literal).
absl::Status SplitHostPort(absl::string_view listen, std::string* host,
                           uint16_t* port) {
  size_t colon = listen.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) {
    return absl::InvalidArgumentError("expected host:port");
  }
  absl::string_view h = listen.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') {
    h = h.substr(1, h.size() - 2);
  }
  uint32_t p = 0;
  if (!absl::SimpleAtoi(listen.substr(colon + 1), &p) || p > 65535) {
    return absl::InvalidArgumentError("port must be a number 0..65535");
  }
  *host = std::string(h);
  *port = static_cast<uint16_t>(p);
  return absl::OkStatus();
}

}  // namespace

// Wraps the adapter's handler to count and time every delivery.
class AdapterRuntime::CountingHandler : public DeliveryHandler {
 public:
  explicit CountingHandler(const std::string& platform)
      : platform_(platform),
        ok_(&Counter("ok")),
        retryable_(&Counter("retryable")),
        permanent_(&Counter("permanent")),
        latency_(&metrics::Registry::Default().GetHistogram(
            "imbridge_delivery_seconds",
            "Time an adapter took to render one delivery on its messenger.",
            {{"platform", platform}})) {}

  void set_inner(DeliveryHandler* inner) { inner_ = inner; }

  absl::StatusOr<std::vector<std::string>> Deliver(
      const v1::Delivery& delivery) override {
    absl::Time start = absl::Now();
    // Guarded here too, so that a handler that throws counts as permanent.
    absl::StatusOr<std::vector<std::string>> result =
        DeliverGuarded(*inner_, delivery);
    latency_->Observe(absl::ToDoubleSeconds(absl::Now() - start));
    if (result.ok()) {
      ok_->Increment();
    } else if (IsRetryable(result.status())) {
      retryable_->Increment();
    } else {
      permanent_->Increment();
    }
    return result;
  }

 private:
  metrics::Counter& Counter(const char* result) {
    return metrics::Registry::Default().GetCounter(
        "imbridge_deliveries_total",
        "Deliveries an adapter rendered, by result (ok, retryable, "
        "permanent).",
        {{"platform", platform_}, {"result", result}});
  }

  std::string platform_;
  DeliveryHandler* inner_ = nullptr;
  metrics::Counter* ok_;
  metrics::Counter* retryable_;
  metrics::Counter* permanent_;
  metrics::Histogram* latency_;
};

AdapterRuntime::AdapterRuntime(const v1::RouterConnection& router,
                               const v1::HttpServerOptions& http,
                               AdapterIdentity identity)
    : identity_(std::move(identity)), port_file_(http.port_file()) {
  // gRPC, the HTTP server and the pipeline run many threads; a few malloc
  // arenas keep the heap compact (as the router does), instead of up to 8
  // per core that each keep freed memory.
  ConfigureProcessAllocator();
  // SIGTERM and SIGINT are taken by sigwait in Run(); every thread started
  // from here on inherits the mask, so none of them is killed by them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  counting_handler_ = std::make_unique<CountingHandler>(identity_.platform);
  router_ = std::make_unique<RouterClient>(
      RouterClient::OptionsFromConfig(router, identity_.platform,
                                      identity_.accounts,
                                      identity_.capabilities),
      counting_handler_.get());

  HttpServer::Options options;
  std::string listen = http.listen().empty()
                           ? absl::StrCat("127.0.0.1:", identity_.default_port)
                           : http.listen();
  // The config was validated by ValidateHttpServerOptions; a bad value here
  // falls back to the default host and port 0 rather than crashing.
  if (!SplitHostPort(listen, &options.host, &options.port).ok()) {
    options.host = "127.0.0.1";
    options.port = 0;
  }
  ApplyHttpServerLimits(http, &options);
  options.request_timeout = http.request_timeout_ms() > 0
                                ? absl::Milliseconds(http.request_timeout_ms())
                                : identity_.default_request_timeout;
  http_ = std::make_unique<HttpServer>(options);
  http_->Handle("GET", "/readyz",
                [this](HttpRequest request, std::shared_ptr<Responder> r) {
                  ServeReadyz(request, r);
                });
  http_->Handle("GET", "/metrics",
                [this](HttpRequest request, std::shared_ptr<Responder> r) {
                  ServeMetrics(request, r);
                });

  metrics::Registry& registry = metrics::Registry::Default();
  std::string platform = identity_.platform;
  collector_ = registry.AddCollector([this, platform](metrics::Registry& reg) {
    reg.GetGauge("imbridge_router_attached",
                 "1 while the adapter is attached to the router.",
                 {{"platform", platform}})
        .Set(router_->attached() ? 1 : 0);
    // One series per configured router (at most kMaxRouterAddresses).
    for (const RouterClient::RouterStatus& r : router_->routers()) {
      metrics::Labels labels = {{"platform", platform}, {"router", r.address}};
      reg.GetGauge("imbridge_adapter_router_attached",
                   "1 while the adapter's stream to this router is attached.",
                   labels)
          .Set(r.attached ? 1 : 0);
      reg.GetGauge("imbridge_adapter_router_publishing",
                   "1 for the router the adapter publishes through.", labels)
          .Set(r.publishing ? 1 : 0);
    }
    HttpServerCounters c = http_->counters();
    auto rejected = [&](const char* reason, uint64_t value) {
      reg.GetGauge("imbridge_http_rejections",
                   "HTTP requests the adapter's server refused before any "
                   "handler saw them, by reason.",
                   {{"platform", platform}, {"reason", reason}})
          .Set(static_cast<double>(value));
    };
    rejected("too_large", c.rejected_too_large);
    rejected("not_found", c.rejected_not_found);
    rejected("method", c.rejected_method);
    rejected("media_type", c.rejected_media_type);
    rejected("malformed", c.rejected_malformed);
    rejected("timed_out", c.timed_out);
    reg.GetGauge("imbridge_http_requests",
                 "HTTP requests the adapter's server read since start.",
                 {{"platform", platform}})
        .Set(static_cast<double>(c.requests));
  });
}

absl::StatusOr<DeliveryJournal*> AdapterRuntime::OpenDeliveryJournal(
    const std::string& state_dir) {
  auto journal = DeliveryJournal::OpenInStateDir(state_dir);
  if (!journal.ok()) {
    LogError("cannot open the delivery journal",
             {{"error", journal.status().ToString()}});
    return journal.status();
  }
  journal_ = std::move(*journal);
  return journal_.get();
}

AdapterRuntime::~AdapterRuntime() {
  Stop();
  metrics::Registry::Default().RemoveCollector(collector_);
}

void AdapterRuntime::SetConnector(Connector* connector) {
  identity_.accounts = connector->Accounts();
  identity_.capabilities = ConnectorCapabilities(*connector);
  // Only fails after Start(), which the contract rules out.
  router_->SetHello(identity_.accounts, identity_.capabilities).IgnoreError();
  if (auto* commands = dynamic_cast<ChatCommandHandler*>(connector)) {
    router_
        ->OnChatCommand(commands->CommandWords(),
                        [commands](const v1::ChatCommand& command) {
                          return commands->HandleChatCommand(command);
                        })
        .IgnoreError();
  }
  dispatcher_ = std::make_unique<ConnectorDeliveryHandler>(connector);
  SetDeliveryHandler(dispatcher_.get());
  OnStarted([connector] { return connector->Start(); });
  OnStop([connector] { connector->Stop(); });
}

absl::StatusOr<v1::Link> AdapterRuntime::CreateLink(const v1::Link& link,
                                                    absl::Duration timeout) {
  return router_->CreateLink(link, timeout);
}

absl::StatusOr<v1::Link> AdapterRuntime::CreateLink(
    const v1::Link& link, const std::vector<v1::MemberThreadRoot>& thread_roots,
    absl::Duration timeout) {
  return router_->CreateLink(link, thread_roots, timeout);
}

absl::Status AdapterRuntime::DeleteLink(absl::string_view name,
                                        absl::Duration timeout) {
  return router_->DeleteLink(name, timeout);
}

void AdapterRuntime::SetDeliveryHandler(DeliveryHandler* handler) {
  counting_handler_->set_inner(handler);
}

void AdapterRuntime::AddReadinessCheck(std::string name,
                                       std::function<absl::Status()> check) {
  checks_.emplace_back(std::move(name), std::move(check));
}

void AdapterRuntime::OnStarted(std::function<absl::Status()> fn) {
  on_started_.push_back(std::move(fn));
}

void AdapterRuntime::OnStop(std::function<void()> fn) {
  on_stop_.push_back(std::move(fn));
}

absl::Status AdapterRuntime::Start() {
  if (started_) return absl::FailedPreconditionError("already started");
  started_ = true;
  absl::Status status = http_->Start();
  if (!status.ok()) return status;
  if (!port_file_.empty()) {
    std::string tmp = port_file_ + ".tmp";
    {
      std::ofstream out(tmp);
      out << http_->port() << "\n";
      if (!out) {
        return absl::UnavailableError(
            absl::StrCat("cannot write http.port_file ", port_file_));
      }
    }
    if (std::rename(tmp.c_str(), port_file_.c_str()) != 0) {
      return absl::UnavailableError(absl::StrCat(
          "cannot write http.port_file ", port_file_, ": ", strerror(errno)));
    }
  }
  router_->Start();
  for (auto& fn : on_started_) IMB_RETURN_IF_ERROR(fn());
  LogInfo("adapter started",
          {{"port", std::to_string(http_->port())},
           {"accounts", absl::StrJoin(identity_.accounts, ",")}});
  return absl::OkStatus();
}

int AdapterRuntime::Run() {
  // The constructor blocked these signals for every thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  absl::Status status = Start();
  if (!status.ok()) {
    LogError("adapter failed to start", {{"error", status.message()}});
    Stop();
    return 1;
  }
  std::printf("%s listening on port %d\n", identity_.platform.c_str(),
              static_cast<int>(port()));
  std::fflush(stdout);
  int signal = 0;
  sigwait(&signals, &signal);
  LogInfo("signal received", {{"signal", strsignal(signal)}});
  Stop();
  return 0;
}

void AdapterRuntime::Stop() {
  if (stopped_) return;
  stopped_ = true;
  http_->Stop();
  for (auto& fn : on_stop_) fn();
  router_->Stop();
  if (started_) LogInfo("adapter stopped");
}

uint16_t AdapterRuntime::port() const { return http_->port(); }

absl::Status AdapterRuntime::Publish(
    v1::Event event, std::function<void(const v1::PublishAck&)> done) {
  return router_->Publish(std::move(event), [this, done = std::move(done)](
                                                const v1::PublishAck& ack) {
    EventsIn(ack.outcome()).Increment();
    if (done) done(ack);
  });
}

metrics::Counter& AdapterRuntime::EventsIn(v1::PublishAck::Outcome outcome) {
  const size_t index = static_cast<size_t>(outcome);
  if (index < events_in_.size()) {
    metrics::Counter* known = events_in_[index].load(std::memory_order_acquire);
    if (known != nullptr) return *known;
  }
  metrics::Counter& counter = metrics::Registry::Default().GetCounter(
      "imbridge_events_in_total",
      "Events an adapter published, by the router's outcome.",
      {{"platform", identity_.platform},
       {"outcome",
        absl::AsciiStrToLower(v1::PublishAck::Outcome_Name(outcome))}});
  if (index < events_in_.size()) {
    events_in_[index].store(&counter, std::memory_order_release);
  }
  return counter;
}

void RuntimeInboundRouter::Publish(
    v1::Event event, std::function<void(absl::StatusOr<v1::PublishAck>)> done) {
  auto shared = std::make_shared<decltype(done)>(std::move(done));
  absl::Status status = runtime_->Publish(
      std::move(event),
      [shared](const v1::PublishAck& ack) { (*shared)(ack); });
  if (!status.ok()) (*shared)(status);
}

absl::StatusOr<v1::BlobRef> RuntimeInboundRouter::PutBlob(
    const v1::BlobMeta& meta,
    const std::function<absl::StatusOr<size_t>(char* buffer, size_t max)>&
        read) {
  return runtime_->router().PutBlob(meta, read);
}

void AdapterRuntime::CountRejection(absl::string_view reason) {
  metrics::Registry::Default()
      .GetCounter(
          "imbridge_webhook_rejections_total",
          "Webhook requests an adapter refused, by reason.",
          {{"platform", identity_.platform}, {"reason", std::string(reason)}})
      .Increment();
}

void AdapterRuntime::ServeReadyz(const HttpRequest&,
                                 const std::shared_ptr<Responder>& responder) {
  nlohmann::json body;
  std::vector<std::string> failing;
  body["router"] = router_->attached() ? "attached" : "not attached";
  if (!router_->attached()) failing.push_back("router");
  for (const auto& [name, check] : checks_) {
    absl::Status status = check();
    body[name] =
        status.ok() ? std::string("ok") : std::string(status.message());
    if (!status.ok()) failing.push_back(name);
  }
  body["ready"] = failing.empty();
  responder->Respond(failing.empty() ? 200 : 503, "application/json",
                     body.dump());
}

void AdapterRuntime::ServeMetrics(const HttpRequest&,
                                  const std::shared_ptr<Responder>& responder) {
  responder->Respond(200, metrics::kPrometheusContentType,
                     metrics::Registry::Default().RenderText());
}

bool ParseAdapterCommandLine(
    int argc, char** argv, absl::string_view binary,
    google::protobuf::Message* config,
    const std::function<absl::Status(absl::string_view source)>& validate,
    int* exit_code, absl::string_view extra_usage) {
  std::string b(binary);
  std::string extra(extra_usage);
  auto usage = [&](FILE* out) {
    std::fprintf(out,
                 "usage: %s --config FILE [--check-config]\n"
                 "       %s --check-config FILE\n"
                 "  --config FILE     the adapter's YAML config (see docs/)\n"
                 "  --check-config    validate the config and exit\n%s",
                 b.c_str(), b.c_str(), extra.c_str());
  };
  std::string path;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      path = arg.substr(9);
    } else if (arg == "--check-config") {
      check_only = true;
      // `--check-config FILE` names the file to check, as `--config` does.
      if (i + 1 < argc && argv[i + 1][0] != '-') path = argv[++i];
    } else if (arg == "--help" || arg == "-h") {
      usage(stdout);
      *exit_code = 0;
      return false;
    } else {
      std::fprintf(stderr, "%s: unknown argument '%s'\n", b.c_str(),
                   arg.c_str());
      usage(stderr);
      *exit_code = 2;
      return false;
    }
  }
  if (path.empty()) {
    usage(stderr);
    *exit_code = 2;
    return false;
  }
  absl::Status status = LoadConfigFile(path, config);
  if (status.ok() && validate) status = validate(path);
  if (!status.ok()) {
    std::fprintf(stderr, "%s: invalid config: %s\n", b.c_str(),
                 std::string(status.message()).c_str());
    *exit_code = 1;
    return false;
  }
  if (check_only) {
    std::printf("%s: OK\n", path.c_str());
    *exit_code = 0;
    return false;
  }
  return true;
}

absl::Status ValidateRouterConnection(absl::string_view source,
                                      const v1::RouterConnection& router) {
  if (router.token().empty()) {
    return ConfigError(source, "router.token",
                       "required (or router.token_file)");
  }
  auto check_address = [&](const std::string& address,
                           const std::string& field) -> absl::Status {
    std::string host;
    uint16_t port = 0;
    absl::Status status = SplitHostPort(address, &host, &port);
    if (!status.ok() || port == 0) {
      return ConfigError(
          source, field,
          absl::StrCat("'", address, "' is not host:port with a port"));
    }
    return absl::OkStatus();
  };
  if (!router.address().empty()) {
    if (!router.addresses().empty()) {
      return ConfigError(source, "router.addresses",
                         "set either router.address or router.addresses, "
                         "not both");
    }
    return check_address(router.address(), "router.address");
  }
  if (router.addresses_size() > kMaxRouterAddresses) {
    return ConfigError(source, "router.addresses",
                       absl::StrCat(router.addresses_size(),
                                    " routers; at most ", kMaxRouterAddresses));
  }
  absl::flat_hash_set<std::string> seen;
  for (int i = 0; i < router.addresses_size(); ++i) {
    const std::string& address = router.addresses(i);
    std::string field = absl::StrCat("router.addresses[", i, "]");
    IMB_RETURN_IF_ERROR(check_address(address, field));
    if (!seen.insert(address).second) {
      return ConfigError(source, field,
                         absl::StrCat("'", address, "' is listed twice"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateHttpServerOptions(absl::string_view source,
                                       const v1::HttpServerOptions& http) {
  if (!http.listen().empty()) {
    std::string host;
    uint16_t port = 0;
    absl::Status status = SplitHostPort(http.listen(), &host, &port);
    if (!status.ok()) {
      return ConfigError(
          source, "http.listen",
          absl::StrCat("'", http.listen(), "': ", status.message()));
    }
  }
  return ValidateHttpServerLimits(source, http);
}

absl::Status ValidateAdapterBasics(absl::string_view source,
                                   const v1::RouterConnection& router,
                                   const v1::HttpServerOptions& http,
                                   absl::string_view log_level) {
  absl::Status status = ValidateRouterConnection(source, router);
  if (!status.ok()) return status;
  status = ValidateHttpServerOptions(source, http);
  if (!status.ok()) return status;
  if (!ParseLogLevel(log_level).ok()) {
    return ConfigError(source, "log_level",
                       "expected one of debug, info, warn, error");
  }
  return absl::OkStatus();
}

absl::Status HttpFailure(int http_status, absl::string_view what,
                         absl::Duration retry_after) {
  std::string message = http_status == 0
                            ? std::string(what)
                            : absl::StrCat("HTTP ", http_status, ": ", what);
  if (IsRetryableHttpStatus(http_status)) {
    return RetryableError(message, retry_after);
  }
  return absl::FailedPreconditionError(message);
}

}  // namespace imbridge::adapters
