// Fuzzes the request path of the webhook server (common/http/http_server):
// the input's bytes are sent as they are over a loopback TCP connection to
// a real HttpServer with routes like the adapters' (an exact POST route
// taking only JSON bodies, a POST prefix route, a GET route, /healthz) and
// small limits, so that request line and header parsing, chunked bodies,
// keep-alive, 100-continue, the size limits (413/431), the body type (415),
// the UTF-8 check of textual bodies, routing (404/405) and the JSON error
// answers all run on attacker bytes.
//
// Properties: the server answers every connection with nothing or with
// HTTP/1.x responses, and closes it once the client has finished sending
// (within the io timeout); it keeps serving (checked by a /healthz request
// every 1000 inputs).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/http/http_server.h"
#include "fuzz/fuzz_support.h"

namespace {

using imbridge::fuzz::Check;

imbridge::HttpServer* Server() {
  static imbridge::HttpServer* server = [] {
    imbridge::HttpServer::Options options;
    options.threads = 1;
    options.max_body_bytes = 2048;
    options.max_header_bytes = 1024;
    options.request_timeout = absl::Seconds(2);
    options.io_timeout = absl::Seconds(2);
    options.stop_grace = absl::Milliseconds(100);
    auto* s = new imbridge::HttpServer(options);
    auto echo = [](imbridge::HttpRequest request,
                   std::shared_ptr<imbridge::Responder> responder) {
      responder->Respond(200, "application/json",
                         std::to_string(request.body.size()),
                         {{"X-Path", request.path}});
    };
    s->Handle("POST", "/slack/events", echo, imbridge::JsonBodies());
    s->HandlePrefix("POST", "/hooks/", echo);
    s->Handle("GET", "/metrics", echo);
    Check(s->Start().ok(), "the server starts");
    return s;
  }();
  return server;
}

// Waits for the connect of `fd` a signal interrupted and returns its
// result: 0 once connected, otherwise the errno it failed with.
int FinishInterruptedConnect(int fd) {
  pollfd p{fd, POLLOUT, 0};
  int ready;
  do {
    ready = poll(&p, 1, 30000);
  } while (ready < 0 && errno == EINTR);
  if (ready <= 0) return ready == 0 ? ETIMEDOUT : errno;
  int error = 0;
  socklen_t length = sizeof(error);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) return errno;
  return error;
}

// Sends `bytes`, half-closes, and returns what the server sent until it
// closed the connection; aborts when it does not close within 15 s.
std::string Exchange(const std::string& bytes) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  Check(fd >= 0, "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(Server()->port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // A machine out of local ports (every fuzz input is a connection; other
  // programs' connections count too) is waited out; any other failure to
  // connect, the server refusing or never accepting, is a finding.
  const absl::Time connect_deadline = absl::Now() + absl::Seconds(30);
  while (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int error = errno;
    if (error == EINTR) {
      // A signal (libFuzzer's SIGALRM for -timeout) interrupted a connect
      // that goes on in the background: wait for it, then take its result.
      error = FinishInterruptedConnect(fd);
      if (error == 0) break;
    }
    if ((error != EADDRNOTAVAIL && error != EAGAIN) ||
        absl::Now() > connect_deadline) {
      std::fprintf(stderr, "connect: %s\n", std::strerror(error));
      Check(false, "connect to the server");
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  size_t sent = 0;
  std::string answer;
  char buffer[4096];
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  bool write_open = true;
  while (true) {
    if (write_open && sent == bytes.size()) {
      shutdown(fd, SHUT_WR);
      write_open = false;
    }
    pollfd p{fd, static_cast<short>(POLLIN | (write_open ? POLLOUT : 0)), 0};
    int ready = poll(&p, 1, 100);
    Check(absl::Now() < deadline,
          "the server closes the connection after the request");
    if (ready <= 0) continue;
    if (p.revents & POLLIN || p.revents & (POLLHUP | POLLERR)) {
      ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
      if (n <= 0) break;  // Closed (or reset after an error answer).
      answer.append(buffer, static_cast<size_t>(n));
    }
    if (write_open && (p.revents & POLLOUT)) {
      ssize_t n =
          send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n < 0) {
        write_open = false;  // The server closed early (an error answer).
        shutdown(fd, SHUT_WR);
      } else {
        sent += static_cast<size_t>(n);
      }
    }
  }
  // The server has closed: a reset instead of a FIN leaves no TIME_WAIT
  // behind on either side, so a long run does not use up the local ports.
  linger no_wait{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &no_wait, sizeof(no_wait));
  close(fd);
  return answer;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string answer =
      Exchange(std::string(reinterpret_cast<const char*>(data), size));
  Check(answer.empty() || absl::StartsWith(answer, "HTTP/1."),
        "the server answers with HTTP/1.x responses");
  static int inputs = 0;
  if (++inputs % 1000 == 0) {
    Check(absl::StartsWith(Exchange("GET /healthz HTTP/1.1\r\nHost: x\r\n"
                                    "Connection: close\r\n\r\n"),
                           "HTTP/1.1 200"),
          "the server keeps serving /healthz");
  }
  return 0;
}
