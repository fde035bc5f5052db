#ifndef IMBRIDGE_TOOLS_SANDBOX_WEB_SERVER_H_
#define IMBRIDGE_TOOLS_SANDBOX_WEB_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "common/executor.h"
#include "common/http/http_server.h"
#include "tools/sandbox/sandbox.h"

namespace imbridge::sandbox {

// The sandbox's web page and its HTTP API, on HttpServer:
//   GET  /                         the page (web_dir/index.html)
//   GET  /static/<file>            web_dir/<file> (.css, .js, .png, .svg)
//   GET  /api/state                Sandbox::State()
//   GET  /events                   Server-Sent Events (EventStream); the
//                                  position comes from Last-Event-ID or
//                                  ?after=<id>
//   POST /api/<messenger>/<action> Sandbox::Act() with a JSON body; answers
//                                  200 {"ok":true,...} or 4xx/5xx
//                                  {"ok":false,"error":"..."}
//   GET  /files/<messenger>/<id>   a file of a chat, as an attachment
//   GET  /healthz                  "ok"
// Page files are read from disk on every request (edit and reload; no
// build step). Actions and downloads run on worker threads, never on the
// server's.
//
// Thread-safe; Start()/Stop() from one controlling thread.
class WebServer {
 public:
  WebServer(Sandbox* sandbox, std::string web_dir, std::string host,
            uint16_t port);
  ~WebServer();  // Stop().

  // kUnavailable when the address cannot be bound (port busy).
  absl::Status Start();
  void Stop();
  uint16_t port() const { return server_.port(); }

 private:
  void ServeStatic(const std::string& name,
                   const std::shared_ptr<Responder>& responder) const;
  void ServeAction(const HttpRequest& request,
                   std::shared_ptr<Responder> responder);
  void ServeFile(const HttpRequest& request,
                 std::shared_ptr<Responder> responder);

  Sandbox* const sandbox_;
  const std::string web_dir_;
  HttpServer server_;
  Executor workers_{4};
};

}  // namespace imbridge::sandbox

#endif  // IMBRIDGE_TOOLS_SANDBOX_WEB_SERVER_H_
