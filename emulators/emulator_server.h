#ifndef IMBRIDGE_EMULATORS_EMULATOR_SERVER_H_
#define IMBRIDGE_EMULATORS_EMULATOR_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/http/http_server.h"

namespace imbridge::fakes {

// One route of an emulator's HTTP server: `method` requests whose path
// starts with `prefix` go to `handler`.
struct EmulatorRoute {
  std::string method;
  std::string prefix;
  HttpHandler handler;
};

// The HTTP server of an emulated messenger (the Web API, file host and
// webhook endpoints it serves the adapter): the part of Start(), Stop() and
// base_url() that every emulator shares.
//
// Threading: Start() and Stop() from the emulator's controlling thread (its
// own Start()/Stop()); port() and base_url() from any thread once Start()
// returned, and before it from the controlling thread.
class EmulatorServer {
 public:
  EmulatorServer() = default;
  ~EmulatorServer();  // Calls Stop().

  EmulatorServer(const EmulatorServer&) = delete;
  EmulatorServer& operator=(const EmulatorServer&) = delete;

  // Builds the server of `options` with `routes` and starts it on
  // options.host and options.port (0: a free port). HttpServer::Start()'s
  // errors; kFailedPrecondition when called twice.
  absl::Status Start(const HttpServer::Options& options,
                     const std::vector<EmulatorRoute>& routes);
  // Stops the server (see HttpServer::Stop()). Idempotent; nothing to do
  // before Start().
  void Stop();

  // The bound port; 0 before Start().
  uint16_t port() const;
  // "http://<host>:<port>" ("http://127.0.0.1:0" before Start()).
  std::string base_url() const;

 private:
  std::string host_ = "127.0.0.1";
  std::unique_ptr<HttpServer> server_;
};

}  // namespace imbridge::fakes

#endif  // IMBRIDGE_EMULATORS_EMULATOR_SERVER_H_
