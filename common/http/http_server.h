#ifndef IMBRIDGE_COMMON_HTTP_HTTP_SERVER_H_
#define IMBRIDGE_COMMON_HTTP_HTTP_SERVER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace imbridge {

// HTTP header fields in the order they were received or are to be sent.
// Names compare case-insensitively; a name may repeat.
using HttpHeaderList = std::vector<std::pair<std::string, std::string>>;

// One HTTP request as the server read it.
struct HttpRequest {
  std::string method;  // "POST", as sent.
  std::string target;  // The request target as sent: "/slack/events?a=b".
  std::string path;    // `target` up to '?', not percent-decoded.
  std::string query;   // `target` after '?', raw; empty when absent.
  HttpHeaderList headers;
  // The body bytes exactly as received (after de-chunking). Signatures are
  // computed over these bytes, so they are never re-encoded.
  std::string body;
  std::string remote_address;  // "ip:port" of the peer.

  // The first value of header `name` (case-insensitive), or empty when the
  // header is absent.
  absl::string_view Header(absl::string_view name) const;
  bool HasHeader(absl::string_view name) const;
};

// The JSON error body every HTTP error answer of the adapters carries:
// {"error":{"code":"...","message":"..."}}. Bytes of `message` that are not
// UTF-8 are replaced by U+FFFD.
std::string JsonErrorBody(absl::string_view code, absl::string_view message);

// The way a handler answers one request, now or later.
//
// Thread-safe: Respond() may be called from any thread, at any time, and
// never blocks (the write happens on the server's threads). Only the first
// answer counts: the server itself answers 503 when the request timeout
// passes first, and nothing when the connection closed or Stop() gave up on
// the request. Respond() returns whether this call's answer was accepted for
// sending (false: the request was already answered or abandoned).
// Dropping the last reference without answering leaves the request to the
// timeout. A Responder may outlive the server; it then returns false.
class Responder {
 public:
  virtual ~Responder() = default;

  // `status` is 200..599 (anything else is sent as 500); `content_type`
  // empty sends no Content-Type. `extra_headers` must not set
  // Content-Length; fields with CR, LF or NUL are dropped.
  bool Respond(int status, absl::string_view content_type, std::string body,
               HttpHeaderList extra_headers = {}) {
    return RespondImpl(status, content_type, std::move(body),
                       std::move(extra_headers));
  }

 protected:
  virtual bool RespondImpl(int status, absl::string_view content_type,
                           std::string body, HttpHeaderList extra_headers) = 0;
};

// Answers one request. Runs on a server (Asio) thread, so it must not block:
// it inspects the request, starts whatever work is needed elsewhere, and
// answers through the responder then or later. Exceptions it throws are
// caught and answered with 500.
using HttpHandler =
    std::function<void(HttpRequest request, std::shared_ptr<Responder>)>;

// The media types a route accepts as its request bodies' Content-Type
// ("application/json"), compared case-insensitively and without parameters
// ("application/json; charset=utf-8" is "application/json"). Empty: any.
using HttpBodyTypes = std::vector<std::string>;

// The body types of the bridge's endpoint families: JSON webhooks, and form
// posts (application/x-www-form-urlencoded).
HttpBodyTypes JsonBodies();
HttpBodyTypes FormBodies();

// Counts since Start(). A snapshot; every field only grows.
struct HttpServerCounters {
  uint64_t requests = 0;             // Requests whose header was read.
  uint64_t handled = 0;              // Given to a handler (with /healthz).
  uint64_t rejected_too_large = 0;   // 413: body over max_body_bytes.
  uint64_t rejected_not_found = 0;   // 404: no route for the path.
  uint64_t rejected_method = 0;      // 405: route exists, method does not.
  uint64_t rejected_media_type = 0;  // 415: a Content-Type the route refuses.
  uint64_t rejected_malformed = 0;   // 400/431: unparsable request or header,
                                     // or a text body not UTF-8.
  uint64_t timed_out = 0;            // 503: handler did not answer in time.
  uint64_t aborted = 0;              // Unanswered when Stop() gave up.
  uint64_t refused_connections = 0;  // Closed at once: max_connections open.
  uint64_t header_timeouts = 0;      // Closed: no full header in time.
  uint64_t accept_failures = 0;      // accept() failed (EMFILE, ENFILE...).
};

// An HTTP/1.1 server on Boost.Beast: the adapters' webhook endpoints, the
// /metrics and /readyz of every process, and the sandbox's page.
//
// Routes are registered before Start(): an exact path, or a path prefix (the
// longest registered prefix wins; exact routes win over prefixes), each for
// one method. A path without a route is answered 404; a routed path with
// another method 405 (with Allow). `GET /healthz` answers 200 "ok". A route
// may name the body types it accepts (HttpBodyTypes): a request whose
// Content-Type is another is answered 415 without calling the handler; one
// without a Content-Type is given to the handler (which reads the body as
// its type, as senders that omit it mean).
// Bodies are limited: a Content-Length over `max_body_bytes` is answered 413
// as soon as the header is read, before any of the body (a chunked body as
// soon as it passes the limit); the handler is not called and the connection
// is closed. A connection gets `header_timeout` to send its request header
// (slow or idle clients are disconnected then), and at most
// `max_connections` are open at once. When accepting a connection fails
// (EMFILE: the process is out of descriptors), the server waits before it
// accepts again (10 ms, doubling up to 1 s; reset by a success) instead of
// retrying at once in a busy loop; the pending connections wait in the
// kernel's backlog meanwhile. A textual body (JSON, text/*, a form
// post) that is not valid UTF-8 is answered 400 without calling the handler; a
// handler that throws is answered 500. Error answers carry a JSON body
// (JsonErrorBody). Keep-alive and `Expect: 100-continue` are supported;
// requests on one connection are answered in order.
//
// Plain HTTP only for now ("HTTPS-ready"): terminate TLS in a reverse proxy.
// The connection stream type is confined to http_server.cc, so a TLS
// option only changes that file.
//
// Threading: Handle*() before Start(); Start(), Stop(), port() and
// counters() from any one controlling thread, never from a handler. Stop()
// blocks up to `stop_grace` plus a moment; all other methods do not block.
class HttpServer {
 public:
  struct Options {
    // Address to listen on (an IP literal or a name resolved once).
    std::string host = "127.0.0.1";
    // Port; 0 picks a free one (see port()).
    uint16_t port = 0;
    // Threads running the server's io_context (and the handlers).
    int threads = 2;
    // Largest request body accepted; more is answered 413.
    size_t max_body_bytes = 1 << 20;
    // Largest request header block; more is answered 431.
    size_t max_header_bytes = 16 << 10;
    // Time a handler has to answer before the server answers 503 itself.
    absl::Duration request_timeout = absl::Seconds(10);
    // Time to receive a request's header block, counted from the moment the
    // server starts waiting for it (a new connection, or the previous answer
    // written on a keep-alive one). A client that sends a header slower, or
    // keeps an idle connection open longer, is disconnected without an
    // answer (the slowloris defence).
    absl::Duration header_timeout = absl::Seconds(10);
    // Time to receive a request's body once its header is in, and to write
    // one response.
    absl::Duration io_timeout = absl::Seconds(30);
    // Connections open at once. A connection accepted beyond this is closed
    // at once, without an answer, so that file descriptors and memory stay
    // bounded; keep it below the process's RLIMIT_NOFILE.
    size_t max_connections = 4096;
    // How long Stop() waits for requests in flight to be answered before it
    // closes their connections.
    absl::Duration stop_grace = absl::Seconds(5);
  };

  explicit HttpServer(Options options);
  ~HttpServer();  // Calls Stop().

  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Routes `method` requests for exactly `path` to `handler`; bodies of
  // another type than `body_types` (when not empty) are answered 415.
  void Handle(absl::string_view method, absl::string_view path,
              HttpHandler handler, HttpBodyTypes body_types = {});
  // Routes `method` requests whose path starts with `prefix` to `handler`.
  void HandlePrefix(absl::string_view method, absl::string_view prefix,
                    HttpHandler handler, HttpBodyTypes body_types = {});

  // Binds, listens and starts the threads. kInvalidArgument for a bad host,
  // kUnavailable when the address cannot be bound, kFailedPrecondition when
  // called twice.
  absl::Status Start();

  // Stops accepting, closes idle connections, waits up to `stop_grace` for
  // requests in flight to be answered (each is then written and its
  // connection closed), closes what is left, and joins the threads.
  // Idempotent. Responders of abandoned requests return false afterwards.
  void Stop();

  // The bound port after Start() (useful with port 0); 0 before.
  uint16_t port() const;

  HttpServerCounters counters() const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace imbridge

#endif  // IMBRIDGE_COMMON_HTTP_HTTP_SERVER_H_
