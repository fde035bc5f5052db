#include "bridge/router.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bridge/link_table.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/server_builder.h"

namespace imbridge::bridge {
namespace {

// How often old events and unreferenced blobs are removed.
constexpr absl::Duration kMaintenanceInterval = absl::Minutes(10);

}  // namespace

absl::StatusOr<std::unique_ptr<Router>> Router::Start(v1::RouterConfig config) {
  std::unique_ptr<Router> r(new Router());
  r->config_ = std::move(config);
  const v1::RouterConfig& c = r->config_;

  IMB_ASSIGN_OR_RETURN(r->store_,
                       OpenSqliteStore(c.data_dir(), c.store().durability()));
  IMB_ASSIGN_OR_RETURN(std::shared_ptr<const LinkTable> table,
                       LinkTable::Build(c.links(), "config"));
  r->links_ = std::make_unique<LinkRegistry>(std::move(table));
  r->blobs_ = std::make_unique<BlobStore>(c.data_dir(), c.blobs().max_bytes());
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
  IMB_RETURN_IF_ERROR(r->dispatcher_->Start());
  r->committer_->Start();

  RouterService::Deps deps;
  deps.committer = r->committer_.get();
  deps.dispatcher = r->dispatcher_.get();
  deps.links = r->links_.get();
  deps.blobs = r->blobs_.get();
  deps.blob_io = r->blob_io_.get();
  deps.router_id = r->store_->router_id();
  deps.credentials.assign(c.adapters().begin(), c.adapters().end());
  deps.window = c.dispatch().window();
  r->service_ = std::make_unique<RouterService>(std::move(deps));

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(c.listen(), grpc::InsecureServerCredentials(),
                           &r->port_);
  builder.RegisterService(r->service_.get());
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.SetMaxSendMessageSize(64 << 20);
  r->server_ = builder.BuildAndStart();
  if (r->server_ == nullptr || r->port_ == 0) {
    r->Shutdown();
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", c.listen(), " (address in use or not valid?)"));
  }
  r->server_->GetHealthCheckService()->SetServingStatus(true);
  r->maintenance_ =
      std::thread([router = r.get()] { router->RunMaintenance(); });
  LogInfo("router started", {{"listen", c.listen()},
                             {"port", std::to_string(r->port_)},
                             {"data_dir", c.data_dir()},
                             {"links", std::to_string(c.links_size())}});
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
          for (const std::string& id : old_blobs) {
            IMB_RETURN_IF_ERROR(blobs->Remove(id));
            IMB_RETURN_IF_ERROR(store.DeleteBlob(id));
          }
          if (pruned > 0 || !old_blobs.empty()) {
            LogInfo("maintenance",
                    {{"events_pruned", std::to_string(pruned)},
                     {"blobs_removed", std::to_string(old_blobs.size())}});
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
  if (shut_down_) return;
  shut_down_ = true;
  LogInfo("router shutting down");
  if (maintenance_.joinable()) {
    stop_maintenance_.Notify();
    maintenance_.join();
  }
  if (server_ != nullptr) {
    server_->GetHealthCheckService()->SetServingStatus(false);
    service_->CloseAllStreams(
        grpc::Status(grpc::UNAVAILABLE, "the router is shutting down"));
    server_->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::seconds(5));
    server_->Wait();
  }
  // Everything received before the streams closed is committed now.
  if (committer_ != nullptr) committer_->Stop();
  if (dispatcher_ != nullptr) dispatcher_->Stop();
  blob_io_.reset();
  server_.reset();
  service_.reset();
  committer_.reset();
  dispatcher_.reset();
  store_.reset();
  LogInfo("router stopped");
}

}  // namespace imbridge::bridge
