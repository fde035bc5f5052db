#ifndef IMBRIDGE_BRIDGE_ROUTER_H_
#define IMBRIDGE_BRIDGE_ROUTER_H_

#include <memory>
#include <set>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "bridge/admin_service.h"
#include "bridge/blob_store.h"
#include "bridge/chat_commands.h"
#include "bridge/committer.h"
#include "bridge/dispatcher.h"
#include "bridge/link_catalog.h"
#include "bridge/queue_leases.h"
#include "bridge/router_service.h"
#include "bridge/store.h"
#include "common/executor.h"
#include "common/http/http_server.h"
#include "common/metrics.h"
#include "grpcpp/server.h"
#include "imbridge/v1/config.pb.h"

namespace imbridge::bridge {

// Writes `port` and a newline to `path` through a temporary file renamed
// over it, so that a reader never sees half a number. An error names the
// path.
absl::Status WritePortFile(const std::string& path, int port);

// The whole router: store, committer, dispatcher, blob store, the link
// catalog, the gRPC server (Router, Admin, WebhookDirectory and the standard
// health service) and the HTTP server (/healthz, /readyz, /metrics), wired
// together. With the PostgreSQL store several routers share the database and
// each sends the queues it holds a lease of (bridge/queue_leases.h).
// Start() returns once both servers listen;
// Shutdown() (also run by the destructor) ends adapter streams, lets the
// committer finish what it received, and closes the store.
//
// Thread-safe: Shutdown() may be called from any thread, any number of
// times; a call made while another runs returns once the router stopped.
class Router {
 public:
  // `config` must have been validated (ValidateRouterConfig).
  static absl::StatusOr<std::unique_ptr<Router>> Start(v1::RouterConfig config);
  ~Router();

  // The port the gRPC server listens on (useful with listen port 0).
  int port() const { return port_; }
  // The port of the HTTP server.
  int http_port() const;

  void Shutdown();

  Store& store() { return *store_; }
  Dispatcher& dispatcher() { return *dispatcher_; }

 private:
  Router() = default;
  void RunMaintenance();
  absl::Status StartHttp();
  // /readyz: answers 200 once a no-op transaction commits (the HTTP
  // server answers 503 if none does within its 2 s request timeout).
  void ServeReadyz(std::shared_ptr<Responder> responder);
  // Refreshes the gauges read from the store, at each /metrics scrape.
  void CollectMetrics(metrics::Registry& registry);

  v1::RouterConfig config_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<LinkRegistry> links_;
  std::unique_ptr<BlobStore> blobs_;
  std::unique_ptr<Executor> blob_io_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<Committer> committer_;
  // With the PostgreSQL store: the leases of the queues this router sends.
  std::unique_ptr<QueueLeases> leases_;
  std::unique_ptr<LinkCatalog> catalog_;
  std::unique_ptr<ChatCommands> commands_;
  std::unique_ptr<AdapterCommands> adapter_commands_;
  // Runs adapters' link requests (they block until committed).
  std::unique_ptr<Executor> link_io_;
  std::unique_ptr<Executor> admin_io_;
  std::unique_ptr<RouterService> service_;
  std::unique_ptr<AdminService> admin_;
  std::unique_ptr<WebhookDirectoryService> directory_;
  std::unique_ptr<HttpServer> http_;
  uint64_t collector_ = 0;
  // Targets CollectMetrics has reported a queue depth for (scrapes are
  // serialized by the registry).
  std::set<std::string> queue_targets_seen_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  absl::Notification stop_maintenance_;
  std::thread maintenance_;
  // Held for the whole of Shutdown(), so a concurrent call (a signal
  // thread and the destructor) waits for the first instead of racing it.
  absl::Mutex shutdown_mu_;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;
};

}  // namespace imbridge::bridge

#endif  // IMBRIDGE_BRIDGE_ROUTER_H_
