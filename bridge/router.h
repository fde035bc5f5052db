#ifndef IMBRIDGE_BRIDGE_ROUTER_H_
#define IMBRIDGE_BRIDGE_ROUTER_H_

#include <memory>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "bridge/blob_store.h"
#include "bridge/committer.h"
#include "bridge/dispatcher.h"
#include "common/executor.h"
#include "bridge/router_service.h"
#include "bridge/store.h"
#include "grpcpp/server.h"
#include "imbridge/v1/config.pb.h"

namespace imbridge::bridge {

// The whole router: store, committer, dispatcher, blob store and the gRPC
// server, wired together. Start() returns once the server listens;
// Shutdown() (also run by the destructor) ends adapter streams, lets the
// committer finish what it received, and closes the store.
//
// Thread-safe: Shutdown() may be called from any thread, once.
class Router {
 public:
  // `config` must have been validated (ValidateRouterConfig).
  static absl::StatusOr<std::unique_ptr<Router>> Start(v1::RouterConfig config);
  ~Router();

  // The port the gRPC server listens on (useful with listen port 0).
  int port() const { return port_; }

  void Shutdown();

  Store& store() { return *store_; }
  Dispatcher& dispatcher() { return *dispatcher_; }

 private:
  Router() = default;
  void RunMaintenance();

  v1::RouterConfig config_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<LinkRegistry> links_;
  std::unique_ptr<BlobStore> blobs_;
  std::unique_ptr<Executor> blob_io_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<Committer> committer_;
  std::unique_ptr<RouterService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  absl::Notification stop_maintenance_;
  std::thread maintenance_;
  bool shut_down_ = false;
};

}  // namespace imbridge::bridge

#endif  // IMBRIDGE_BRIDGE_ROUTER_H_
