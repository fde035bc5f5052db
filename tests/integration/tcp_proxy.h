#ifndef IMBRIDGE_TESTS_INTEGRATION_TCP_PROXY_H_
#define IMBRIDGE_TESTS_INTEGRATION_TCP_PROXY_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace imbridge::testing {

// A TCP proxy on 127.0.0.1 between a client and a server of a test, so that
// the test can break the client's connections as a network (or the
// client's gRPC keepalive giving a connection up) would, while both
// processes live: DropConnections() resets every connection on both sides
// (RST, no FIN) and the proxy keeps accepting, so the client connects again
// through it. Each accepted connection opens its own to `target`.
//
// Thread-safe.
class TcpProxy {
 public:
  // Listens on a free port of 127.0.0.1 and forwards to `target_port` there.
  static absl::StatusOr<std::unique_ptr<TcpProxy>> Start(int target_port);
  ~TcpProxy();  // Stops accepting and drops every connection.
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  // "127.0.0.1:<port>" to give the client.
  std::string address() const;

  // Resets every connection accepted since the last drop, both its client
  // and server side. Returns how many there were (one that ended by itself
  // meanwhile counts too).
  int DropConnections();

  // Resets the client side of every connection accepted since the last
  // drop (counted likewise) and keeps the server side open and silent until
  // the proxy is destroyed: the server does not learn that the connection
  // is gone (a network lost between them, seen by the client alone).
  int DropClientSides();

  // Connections accepted so far.
  int accepted() const;

 private:
  struct Connection;

  TcpProxy(int listen_fd, int port, int target_port);
  void AcceptLoop();
  static void Pump(Connection* connection);

  const int listen_fd_;
  const int port_;
  const int target_port_;
  std::thread acceptor_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int accepted_ ABSL_GUARDED_BY(mu_) = 0;
  // Open connections; each has one pump thread (in `pumps_`).
  std::vector<std::shared_ptr<Connection>> connections_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> pumps_ ABSL_GUARDED_BY(mu_);
  // Connections whose server side DropClientSides() keeps open.
  std::vector<std::shared_ptr<Connection>> silent_ ABSL_GUARDED_BY(mu_);
};

}  // namespace imbridge::testing

#endif  // IMBRIDGE_TESTS_INTEGRATION_TCP_PROXY_H_
