#include "bridge/router.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <system_error>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bridge/link_table.h"
#include "bridge/postgres_store.h"
#include "bridge/router_config.h"
#include "bridge/sqlite_store.h"
#include "bridge/thread_roots.h"
#include "common/http/http_server_config.h"
#include "common/logging.h"
#include "common/process_allocator.h"
#include "common/router_keepalive.h"
#include "common/status_macros.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/server_builder.h"
#include "nlohmann/json.hpp"

namespace imbridge::bridge {
namespace {

// How often old events and unreferenced blobs are removed.
constexpr absl::Duration kMaintenanceInterval = absl::Minutes(10);
// How long an adapter has to answer a chat command addressed to it.
constexpr absl::Duration kAdapterCommandTimeout = absl::Seconds(30);

}  // namespace

absl::StatusOr<std::unique_ptr<Router>> Router::Start(v1::RouterConfig config) {
  std::unique_ptr<Router> r(new Router());
  r->config_ = std::move(config);
  const v1::RouterConfig& c = r->config_;

  // The port files are written there whatever the store: with PostgreSQL
  // and a blob_dir elsewhere nothing else creates it.
  std::error_code ec;
  std::filesystem::create_directories(c.data_dir(), ec);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot create data_dir ", c.data_dir(), ": ", ec.message()));
  }
  IMB_ASSIGN_OR_RETURN(
      r->store_,
      c.store().has_postgres()
          ? OpenPostgresStore(PostgresOptionsFromConfig(c.store()))
          : OpenSqliteStore(c.data_dir(), c.store().durability(),
                            static_cast<int>(c.store().read_connections())));
  IMB_ASSIGN_OR_RETURN(std::shared_ptr<const LinkTable> table,
                       LinkTable::Build(c.links(), "config"));
  r->links_ = std::make_unique<LinkRegistry>(std::move(table));
  absl::Time started_at = absl::Now();
  r->blobs_ = std::make_unique<BlobStore>(BlobDir(c), c.blobs().max_bytes());
  IMB_RETURN_IF_ERROR(r->blobs_->Init());
  r->blob_io_ = std::make_unique<Executor>(2);

  Dispatcher::Options dopts;
  dopts.window = c.dispatch().window();
  dopts.memory_queue_per_target = c.dispatch().memory_queue_per_target();
  r->dispatcher_ =
      std::make_unique<Dispatcher>(r->store_.get(), r->links_.get(), dopts);
  Committer::Options copts;
  copts.max_batch = static_cast<int>(c.store().max_batch());
  r->committer_ = std::make_unique<Committer>(r->store_.get(), r->links_.get(),
                                              DeliveryPolicy(c.dispatch()),
                                              r->dispatcher_.get(), copts);
  r->dispatcher_->SetCommitter(r->committer_.get());
  if (c.store().has_postgres()) r->dispatcher_->UseLeases();
  r->commands_ = std::make_unique<ChatCommands>(c.commands(), r->store_.get());
  r->adapter_commands_ =
      std::make_unique<AdapterCommands>(kAdapterCommandTimeout);
  r->commands_->SetAdapterCommands(r->adapter_commands_.get());
  r->committer_->SetChatCommands(r->commands_.get());
  r->catalog_ = std::make_unique<LinkCatalog>(
      r->store_.get(), r->committer_.get(), r->links_.get(),
      std::vector<v1::Link>(c.links().begin(), c.links().end()));
  r->committer_->SetThreadRootsResolved(
      [catalog = r->catalog_.get()](std::vector<ResolvedThreadRoot> resolved) {
        catalog->OnThreadRootsResolved(std::move(resolved));
      });
  if (c.store().has_postgres()) r->catalog_->SetSharedStore();
  r->committer_->Start();
  // Runtime links and webhooks join the config file's links before any
  // delivery is dispatched.
  if (absl::Status s = r->catalog_->Load(); !s.ok()) {
    r->Shutdown();
    return s;
  }
  IMB_RETURN_IF_ERROR(r->dispatcher_->Start());
  if (c.store().has_postgres()) {
    QueueLeases::Options lopts;
    lopts.router_name = MakeRouterInstanceName();
    lopts.known_queues = [links = r->links_.get()] {
      return links->Get()->QueueKeys(/*receiving_only=*/true);
    };
    lopts.dispatchable = [](const std::string& key) {
      return !IsParkedQueue(key);
    };
    // Links and webhooks made through another router's Admin API.
    lopts.records_changed = [catalog = r->catalog_.get()] {
      catalog->OnRecordsChanged();
    };
    absl::StatusOr<std::unique_ptr<QueueLeases>> leases = QueueLeases::Open(
        PostgresOptionsFromConfig(c.store()), lopts, r->dispatcher_.get());
    if (!leases.ok()) {
      r->Shutdown();
      return leases.status();
    }
    r->leases_ = std::move(*leases);
    r->leases_->Start();
    LogInfo("queue leases started", {{"router", lopts.router_name}});
  }

  RouterService::Deps deps;
  deps.committer = r->committer_.get();
  deps.dispatcher = r->dispatcher_.get();
  deps.links = r->links_.get();
  deps.blobs = r->blobs_.get();
  deps.blob_io = r->blob_io_.get();
  r->link_io_ = std::make_unique<Executor>(1);
  deps.catalog = r->catalog_.get();
  deps.link_io = r->link_io_.get();
  deps.store = r->store_.get();
  deps.adapter_commands = r->adapter_commands_.get();
  deps.router_id = r->store_->router_id();
  deps.credentials.assign(c.adapters().begin(), c.adapters().end());
  deps.window = c.dispatch().window();
  r->service_ = std::make_unique<RouterService>(std::move(deps));
  r->commands_->SetAttachedFn(
      [service = r->service_.get()](const v1::ChannelRef& channel) {
        for (const auto& session : service->Sessions()) {
          if (session->platform() != channel.platform()) continue;
          for (const std::string& account : session->hello().accounts()) {
            if (account == channel.account()) return true;
          }
        }
        return false;
      });
  r->admin_io_ = std::make_unique<Executor>(2);
  AdminService::Deps admin;
  admin.store = r->store_.get();
  admin.committer = r->committer_.get();
  admin.dispatcher = r->dispatcher_.get();
  admin.catalog = r->catalog_.get();
  admin.router = r->service_.get();
  admin.executor = r->admin_io_.get();
  admin.admin_token = c.admin_token();
  admin.started_at = started_at;
  if (r->leases_ != nullptr) {
    admin.queue_owners = [leases = r->leases_.get()] {
      return leases->Holders();
    };
  }
  r->admin_ = std::make_unique<AdminService>(std::move(admin));
  r->directory_ = std::make_unique<WebhookDirectoryService>(
      r->catalog_.get(), r->service_.get(), r->admin_io_.get());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(c.listen(), grpc::InsecureServerCredentials(),
                           &r->port_);
  builder.RegisterService(r->service_.get());
  builder.RegisterService(r->admin_.get());
  builder.RegisterService(r->directory_.get());
  // Adapters ping often, even on idle streams, to notice a router that
  // went silent (common/router_keepalive.h).
  AcceptRouterKeepalive(builder);
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.SetMaxSendMessageSize(64 << 20);
  r->server_ = builder.BuildAndStart();
  if (r->server_ == nullptr || r->port_ == 0) {
    r->Shutdown();
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", c.listen(), " (address in use or not valid?)"));
  }
  r->server_->GetHealthCheckService()->SetServingStatus(true);
  if (absl::Status s = r->StartHttp(); !s.ok()) {
    r->Shutdown();
    return s;
  }
  r->maintenance_ =
      std::thread([router = r.get()] { router->RunMaintenance(); });
  LogInfo("router started", {{"listen", c.listen()},
                             {"port", std::to_string(r->port_)},
                             {"data_dir", c.data_dir()},
                             {"links", std::to_string(c.links_size())},
                             {"allocator", ProcessAllocatorName()}});
  return r;
}

Router::~Router() { Shutdown(); }

void Router::RunMaintenance() {
  absl::Duration event_retention =
      absl::Hours(config_.store().event_retention_hours());
  absl::Duration blob_retention =
      absl::Hours(config_.blobs().retention_hours());
  BlobStore* blobs = blobs_.get();
  do {
    absl::Time now = absl::Now();
    committer_->Execute(
        [=](Store& store) -> absl::Status {
          IMB_ASSIGN_OR_RETURN(int64_t pruned,
                               store.PruneEvents(now - event_retention));
          IMB_ASSIGN_OR_RETURN(
              std::vector<std::string> old_blobs,
              store.ListCollectableBlobs(now - blob_retention));
          IMB_ASSIGN_OR_RETURN(
              int removed,
              CollectBlobs(store, *blobs, old_blobs, now - blob_retention));
          blobs->RemoveAbandonedUploads();
          if (pruned > 0 || removed > 0) {
            LogInfo("maintenance",
                    {{"events_pruned", std::to_string(pruned)},
                     {"blobs_removed", std::to_string(removed)}});
          }
          return absl::OkStatus();
        },
        [](absl::Status s) {
          if (!s.ok()) LogError("maintenance failed", {{"error", s.message()}});
        });
  } while (
      !stop_maintenance_.WaitForNotificationWithTimeout(kMaintenanceInterval));
}

void Router::Shutdown() {
  absl::MutexLock lock(&shutdown_mu_);
  if (shut_down_) return;
  shut_down_ = true;
  LogInfo("router shutting down");
  if (http_ != nullptr) http_->Stop();
  if (collector_ != 0) metrics::Registry::Default().RemoveCollector(collector_);
  if (maintenance_.joinable()) {
    stop_maintenance_.Notify();
    maintenance_.join();
  }
  // The queues go to the other routers at their next lease round.
  // (The object stays until the Admin service is gone: it reads holders.)
  if (leases_ != nullptr) leases_->Stop();
  if (server_ != nullptr) {
    server_->GetHealthCheckService()->SetServingStatus(false);
    service_->CloseAllStreams(
        grpc::Status(grpc::UNAVAILABLE, "the router is shutting down"));
    server_->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::seconds(5));
    server_->Wait();
  }
  // Commands still waiting for an adapter are not stored (their adapters
  // publish them again); link requests in progress finish.
  if (adapter_commands_ != nullptr) adapter_commands_->Stop();
  link_io_.reset();
  if (catalog_ != nullptr) catalog_->StopRewrites();
  // Everything received before the streams closed is committed now.
  if (committer_ != nullptr) committer_->Stop();
  if (dispatcher_ != nullptr) dispatcher_->Stop();
  blob_io_.reset();
  admin_io_.reset();
  server_.reset();
  admin_.reset();
  directory_.reset();
  service_.reset();
  http_.reset();
  committer_.reset();
  commands_.reset();
  adapter_commands_.reset();
  leases_.reset();
  dispatcher_.reset();
  store_.reset();
  LogInfo("router stopped");
}

absl::Status WritePortFile(const std::string& path, int port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << port << "\n";
    out.flush();
    if (!out) {
      return absl::UnavailableError(absl::StrCat("cannot write ", tmp));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot rename ", tmp, " to ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

int Router::http_port() const { return http_ == nullptr ? 0 : http_->port(); }

absl::Status Router::StartHttp() {
  HttpServer::Options options;
  const std::string& listen = config_.http().listen();
  size_t colon = listen.rfind(':');
  options.host = listen.substr(0, colon);
  if (options.host.size() >= 2 && options.host.front() == '[') {
    options.host = options.host.substr(1, options.host.size() - 2);
  }
  int port = 0;
  if (!absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("http.listen: bad port in '", listen, "'"));
  }
  options.port = static_cast<uint16_t>(port);
  options.threads = 1;
  options.request_timeout = absl::Seconds(2);  // /readyz: the commit wait
  ApplyHttpServerLimits(config_.http(), &options);
  http_ = std::make_unique<HttpServer>(options);
  http_->Handle("GET", "/readyz",
                [this](HttpRequest, std::shared_ptr<Responder> responder) {
                  ServeReadyz(std::move(responder));
                });
  http_->Handle("GET", "/metrics",
                [](HttpRequest, std::shared_ptr<Responder> responder) {
                  responder->Respond(200, metrics::kPrometheusContentType,
                                     metrics::Registry::Default().RenderText());
                });
  collector_ = metrics::Registry::Default().AddCollector(
      [this](metrics::Registry& registry) { CollectMetrics(registry); });
  IMB_RETURN_IF_ERROR(http_->Start());
  if (absl::Status s = WritePortFile(config_.data_dir() + "/router.http.port",
                                     http_->port());
      !s.ok()) {
    // /metrics works; only a reader of the file cannot find the port.
    LogError("cannot write the HTTP port file", {{"error", s.message()}});
  }
  return absl::OkStatus();
}

void Router::ServeReadyz(std::shared_ptr<Responder> responder) {
  // The store is writable if an empty transaction commits. If no commit
  // comes within the HTTP server's request timeout (2 s), the server itself
  // answers 503.
  committer_->Execute(
      [](Store&) { return absl::OkStatus(); },
      [responder](absl::Status status) {
        if (status.ok()) {
          responder->Respond(200, "application/json", R"({"ready":true})");
          return;
        }
        nlohmann::json body;
        body["ready"] = false;
        body["store"] = std::string(status.message());
        responder->Respond(503, "application/json", body.dump());
      });
}

void Router::CollectMetrics(metrics::Registry& registry) {
  absl::StatusOr<std::vector<std::string>> targets =
      store_->ListPendingTargets();
  int64_t dead_total = 0;
  auto depth = [&](const std::string& key) -> metrics::Gauge& {
    return registry.GetGauge("imbridge_router_queue_depth",
                             "Deliveries waiting per target channel.",
                             {{"target", key}});
  };
  auto oldest_age = [&](const std::string& key) -> metrics::Gauge& {
    return registry.GetGauge(
        "imbridge_router_queue_oldest_age_seconds",
        "Age of the oldest delivery waiting per target channel (0 when none "
        "waits).",
        {{"target", key}});
  };
  // Every linked channel has its series from the start, 0 while nothing
  // waits, for dashboards and alerts to see it before its first delivery.
  for (std::string& key : links_->Get()->QueueKeys(/*receiving_only=*/false)) {
    queue_targets_seen_.insert(std::move(key));
  }
  if (targets.ok()) {
    // Targets whose queue drained since the last scrape read 0, not their
    // last depth and age.
    std::set<std::string> now_pending(targets->begin(), targets->end());
    for (const std::string& key : queue_targets_seen_) {
      if (now_pending.count(key) == 0) {
        depth(key).Set(0);
        oldest_age(key).Set(0);
      }
    }
    absl::Time now = absl::Now();
    for (const std::string& key : *targets) {
      absl::StatusOr<Store::TargetCounts> counts = store_->CountDeliveries(key);
      if (!counts.ok()) continue;
      depth(key).Set(static_cast<double>(counts->pending));
      oldest_age(key).Set(
          counts->pending > 0 && counts->oldest_pending < now
              ? absl::ToDoubleSeconds(now - counts->oldest_pending)
              : 0);
      queue_targets_seen_.insert(key);
    }
  }
  absl::StatusOr<int64_t> dead = store_->CountDeadLetters();
  if (dead.ok()) dead_total = *dead;
  registry
      .GetGauge("imbridge_router_dead_letters",
                "Deliveries given up on, waiting for an operator.")
      .Set(static_cast<double>(dead_total));
  registry
      .GetGauge("imbridge_router_attached_adapters",
                "Adapter streams attached now.")
      .Set(static_cast<double>(service_->Sessions().size()));
  registry
      .GetGauge("imbridge_router_queues_owned",
                "Target queues this router sends (with the PostgreSQL store: "
                "those it holds the lease of).")
      .Set(static_cast<double>(dispatcher_->owned_queues()));
  registry.GetGauge("imbridge_router_links", "Links configured.")
      .Set(static_cast<double>(catalog_->link_count()));
}

}  // namespace imbridge::bridge
