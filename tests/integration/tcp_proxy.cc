#include "tests/integration/tcp_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace imbridge::testing {

// The two sockets of one proxied connection, closed when the last holder
// (its pump, or DropConnections() while it resets them) lets go: a
// descriptor still in use is never reused meanwhile.
struct TcpProxy::Connection {
  int client_fd = -1;
  int server_fd = -1;
  // DropClientSides() reset the client side: the server side is left as
  // it is.
  std::atomic<bool> silent{false};
  ~Connection() {
    if (client_fd >= 0) close(client_fd);
    if (server_fd >= 0) close(server_fd);
  }
};

namespace {

sockaddr_in Loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  return addr;
}

// Both directions end at once, and whatever is unsent is discarded (RST):
// what a connection the network lost looks like once it is noticed.
void Reset(int fd) {
  linger hard{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
  shutdown(fd, SHUT_RDWR);
}

bool WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, data, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Copies `from` to `to` until either fails or `from` ends.
void Copy(int from, int to) {
  char buf[64 * 1024];
  while (true) {
    ssize_t n = recv(from, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || !WriteAll(to, buf, static_cast<size_t>(n))) break;
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<TcpProxy>> TcpProxy::Start(int target_port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(strerror(errno));
  sockaddr_in addr = Loopback(0);
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(fd, 64) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    absl::Status error = absl::InternalError(strerror(errno));
    close(fd);
    return error;
  }
  return std::unique_ptr<TcpProxy>(
      new TcpProxy(fd, ntohs(addr.sin_port), target_port));
}

TcpProxy::TcpProxy(int listen_fd, int port, int target_port)
    : listen_fd_(listen_fd), port_(port), target_port_(target_port) {
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

TcpProxy::~TcpProxy() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  // Wakes the acceptor from accept().
  shutdown(listen_fd_, SHUT_RDWR);
  acceptor_.join();
  close(listen_fd_);
  DropConnections();
  std::vector<std::thread> pumps;
  std::vector<std::shared_ptr<Connection>> silent;
  {
    absl::MutexLock lock(&mu_);
    pumps.swap(pumps_);
    silent.swap(silent_);
  }
  for (const std::shared_ptr<Connection>& c : silent) Reset(c->server_fd);
  for (std::thread& pump : pumps) pump.join();
}

std::string TcpProxy::address() const {
  return absl::StrCat("127.0.0.1:", port_);
}

int TcpProxy::DropConnections() {
  std::vector<std::shared_ptr<Connection>> dropped;
  {
    absl::MutexLock lock(&mu_);
    dropped.swap(connections_);
  }
  for (const std::shared_ptr<Connection>& c : dropped) {
    Reset(c->client_fd);
    Reset(c->server_fd);
  }
  return static_cast<int>(dropped.size());
}

int TcpProxy::DropClientSides() {
  std::vector<std::shared_ptr<Connection>> dropped;
  {
    absl::MutexLock lock(&mu_);
    dropped.swap(connections_);
    silent_.insert(silent_.end(), dropped.begin(), dropped.end());
  }
  for (const std::shared_ptr<Connection>& c : dropped) {
    c->silent = true;
    Reset(c->client_fd);
  }
  return static_cast<int>(dropped.size());
}

int TcpProxy::accepted() const {
  absl::MutexLock lock(&mu_);
  return accepted_;
}

void TcpProxy::AcceptLoop() {
  while (true) {
    int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      if (client >= 0) close(client);
      return;
    }
    if (client < 0) continue;
    auto c = std::make_shared<Connection>();
    c->client_fd = client;
    c->server_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in target = Loopback(target_port_);
    if (c->server_fd < 0 ||
        connect(c->server_fd, reinterpret_cast<sockaddr*>(&target),
                sizeof(target)) != 0) {
      // The client sees a connection that breaks at once, as it would
      // with the server down.
      Reset(client);
      continue;
    }
    int one = 1;
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(c->server_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ++accepted_;
    connections_.push_back(c);
    pumps_.emplace_back([c] { Pump(c.get()); });
  }
}

void TcpProxy::Pump(Connection* c) {
  // One thread per direction: a side that stops reading (the router
  // pausing an adapter's stream) must not hold the other direction up.
  std::thread upstream([c] {
    Copy(c->client_fd, c->server_fd);
    if (!c->silent) shutdown(c->server_fd, SHUT_WR);
  });
  // Once the client side is reset, sending to it fails and this ends: the
  // server's side is read no more.
  Copy(c->server_fd, c->client_fd);
  shutdown(c->client_fd, SHUT_WR);
  upstream.join();
}

}  // namespace imbridge::testing
