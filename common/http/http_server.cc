#include "common/http/http_server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <exception>
#include <optional>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "boost/asio/dispatch.hpp"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/strand.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "common/logging.h"
#include "common/utf8.h"
#include "nlohmann/json.hpp"

namespace imbridge {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

absl::string_view HttpRequest::Header(absl::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(key, name)) return value;
  }
  return {};
}

bool HttpRequest::HasHeader(absl::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(key, name)) return true;
  }
  return false;
}

std::string JsonErrorBody(absl::string_view code, absl::string_view message) {
  nlohmann::json body = {
      {"error",
       {{"code", std::string(code)}, {"message", std::string(message)}}}};
  // A message may quote input; bad UTF-8 in it is replaced, not thrown on.
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {

// The connection stream. For TLS, make this
// beast::ssl_stream<beast::tcp_stream>, add the handshake at the start of
// Session::Run and async_shutdown in Session::Close; Session's other code
// only uses operations both stream types have.
using Stream = beast::tcp_stream;

tcp::socket& Socket(Stream& stream) { return stream.socket(); }

std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  return absl::ToChronoNanoseconds(d);
}

// Whether a body of this Content-Type is text, which must be UTF-8: JSON
// (RFC 8259), text/*, and form posts.
bool IsTextualContentType(absl::string_view content_type) {
  absl::string_view media = content_type.substr(0, content_type.find(';'));
  media = absl::StripAsciiWhitespace(media);
  return absl::EqualsIgnoreCase(media, "application/json") ||
         absl::EndsWithIgnoreCase(media, "+json") ||
         absl::StartsWithIgnoreCase(media, "text/") ||
         absl::EqualsIgnoreCase(media, "application/x-www-form-urlencoded");
}

bool IsSafeHeaderText(absl::string_view s) {
  return s.find_first_of(absl::string_view("\r\n\0", 3)) ==
         absl::string_view::npos;
}

// An answer waiting to be written.
struct Reply {
  int status = 500;
  std::string content_type;
  std::string body;
  HttpHeaderList headers;
};

// Lets responders reach sessions only while the server is running; closed by
// Stop() before the io_context goes away.
struct ResponderGate {
  absl::Mutex mu;
  bool open ABSL_GUARDED_BY(mu) = true;
};

struct Route {
  std::string method;
  std::string path;
  bool prefix = false;
  std::shared_ptr<const HttpHandler> handler;
  HttpBodyTypes body_types;
};

// The media type of a Content-Type value: lower case, without parameters.
std::string MediaType(absl::string_view content_type) {
  return absl::AsciiStrToLower(absl::StripAsciiWhitespace(
      content_type.substr(0, content_type.find(';'))));
}

// Whether a request with header `content_type` may reach a route taking
// `types`: any type when there are none, and no Content-Type at all.
bool AcceptsBodyType(const HttpBodyTypes& types,
                     absl::string_view content_type) {
  if (types.empty() || absl::StripAsciiWhitespace(content_type).empty()) {
    return true;
  }
  std::string media = MediaType(content_type);
  return std::any_of(types.begin(), types.end(), [&](const std::string& t) {
    return absl::EqualsIgnoreCase(t, media);
  });
}

// Backoff after a failed accept(): from kAcceptBackoffMin, doubling, up to
// kAcceptBackoffMax.
constexpr absl::Duration kAcceptBackoffMin = absl::Milliseconds(10);
constexpr absl::Duration kAcceptBackoffMax = absl::Seconds(1);

class Session;

}  // namespace

class HttpServer::Impl {
 public:
  explicit Impl(Options options)
      : options_(std::move(options)),
        gate_(std::make_shared<ResponderGate>()),
        acceptor_(net::make_strand(ioc_)),
        accept_backoff_timer_(acceptor_.get_executor()) {}

  ~Impl() { Stop(); }

  void AddRoute(absl::string_view method, absl::string_view path, bool prefix,
                HttpHandler handler, HttpBodyTypes body_types = {}) {
    absl::MutexLock lock(&mu_);
    routes_.push_back(
        Route{std::string(method), std::string(path), prefix,
              std::make_shared<const HttpHandler>(std::move(handler)),
              std::move(body_types)});
  }

  absl::Status Start();
  void Stop();
  uint16_t port() const { return port_.load(); }

  HttpServerCounters counters() const {
    HttpServerCounters c;
    c.requests = requests_.load();
    c.handled = handled_.load();
    c.rejected_too_large = too_large_.load();
    c.rejected_not_found = not_found_.load();
    c.rejected_method = bad_method_.load();
    c.rejected_media_type = bad_media_type_.load();
    c.rejected_malformed = malformed_.load();
    c.timed_out = timed_out_.load();
    c.aborted = aborted_.load();
    c.refused_connections = refused_connections_.load();
    c.header_timeouts = header_timeouts_.load();
    c.accept_failures = accept_failures_.load();
    return c;
  }

  // What a request's method and path resolve to.
  struct Resolution {
    int status = 404;  // 200 when `handler` is set, else 404 or 405.
    std::shared_ptr<const HttpHandler> handler;
    std::string allow;         // For 405: the methods the path has.
    HttpBodyTypes body_types;  // The route's, when `handler` is set.
  };
  Resolution Resolve(absl::string_view method, absl::string_view path) const;

  void Unregister(Session* session) {
    absl::MutexLock lock(&mu_);
    sessions_.erase(session);
  }

  const Options& options() const { return options_; }
  const std::shared_ptr<ResponderGate>& gate() const { return gate_; }
  // Stop() has begun (set before it closes the listener).
  bool stopping() const { return stopping_.load(); }

  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> handled_{0};
  std::atomic<uint64_t> too_large_{0};
  std::atomic<uint64_t> not_found_{0};
  std::atomic<uint64_t> bad_method_{0};
  std::atomic<uint64_t> bad_media_type_{0};
  std::atomic<uint64_t> malformed_{0};
  std::atomic<uint64_t> timed_out_{0};
  std::atomic<uint64_t> aborted_{0};
  std::atomic<uint64_t> refused_connections_{0};
  std::atomic<uint64_t> header_timeouts_{0};
  std::atomic<uint64_t> accept_failures_{0};

 private:
  void Accept();
  void OnAcceptable(beast::error_code ec);
  void OnAccept(beast::error_code ec, tcp::socket socket);
  std::vector<std::shared_ptr<Session>> LiveSessions();
  bool NoSessions() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return sessions_.empty();
  }

  const Options options_;
  const std::shared_ptr<ResponderGate> gate_;
  std::atomic<uint16_t> port_{0};

  mutable absl::Mutex mu_;
  std::vector<Route> routes_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<Session*, std::weak_ptr<Session>> sessions_
      ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<bool> stopping_{false};

  // Declared after everything sessions touch, so that sessions destroyed
  // with the io_context's pending handlers still find them.
  net::io_context ioc_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;
  tcp::acceptor acceptor_;
  tcp protocol_ = tcp::v4();  // The listener's; set by Start().
  // On the acceptor's strand: the wait after a failed accept(), and its
  // length.
  net::steady_timer accept_backoff_timer_;
  absl::Duration accept_backoff_ = kAcceptBackoffMin;
  std::vector<std::thread> threads_;
};

namespace {

// One connection: reads a request, hands it to a handler, writes the answer,
// and repeats while keep-alive holds. All members are used on the
// connection's strand only, except through ResponderImpl (which posts).
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(HttpServer::Impl* server, tcp::socket socket)
      : server_(server),
        stream_(std::move(socket)),
        request_timer_(stream_.get_executor()),
        linger_timer_(stream_.get_executor()) {
    beast::error_code ec;
    tcp::endpoint peer = Socket(stream_).remote_endpoint(ec);
    if (!ec) {
      remote_address_ =
          absl::StrCat(peer.address().to_string(), ":", peer.port());
    }
  }

  ~Session() { server_->Unregister(this); }

  net::any_io_executor executor() { return stream_.get_executor(); }

  void Run() {
    net::dispatch(
        stream_.get_executor(),
        beast::bind_front_handler(&Session::ReadRequest, shared_from_this()));
  }

  // The server is stopping: close an idle connection now, a busy one after
  // its answer is written.
  void OnServerStop() {
    stopping_ = true;
    // Idle or reading, or lingering after an early answer.
    if (state_ == State::kReading || state_ == State::kClosed) Close();
  }

  // Stop()'s grace has passed: give up on whatever is left.
  void Abort();

  // An answer from a responder (already claimed), on the strand.
  void Deliver(uint64_t request_id, Reply reply);

 private:
  enum class State { kReading, kHandling, kWriting, kClosed };
  enum class After { kKeepAlive, kClose, kLinger };

  void ReadRequest();
  void OnHeader(beast::error_code ec, size_t bytes);
  void ReadBody();
  void OnBody(beast::error_code ec, size_t bytes);
  void OnReadError(beast::error_code ec);
  void Dispatch();
  void OnRequestTimeout(uint64_t request_id, beast::error_code ec);
  void RejectTooLarge();
  void Reject(int status, absl::string_view code, absl::string_view message,
              After after, HttpHeaderList headers = {});
  void Write(Reply reply, After after);
  void OnWrite(After after, beast::error_code ec, size_t bytes);
  void Linger();
  void DrainSome();
  void Close();
  // Whether this connection closes after its current answer. The server's
  // flag counts too: this session's OnServerStop runs on its own strand,
  // possibly after an answer given once Stop() had closed the listener,
  // which must still say "Connection: close".
  bool Stopping() const { return stopping_ || server_->stopping(); }

  HttpServer::Impl* const server_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  net::steady_timer request_timer_;
  net::steady_timer linger_timer_;
  std::string remote_address_;
  State state_ = State::kReading;
  bool stopping_ = false;
  bool keep_alive_ = false;
  unsigned version_ = 11;
  uint64_t request_id_ = 0;
  std::shared_ptr<class ResponderImpl> responder_;
  std::unique_ptr<http::response<http::string_body>> response_;
  std::unique_ptr<http::response<http::empty_body>> continue_;
  std::array<char, 16 << 10> drain_;
  size_t drained_ = 0;
};

class ResponderImpl : public Responder {
 public:
  ResponderImpl(std::weak_ptr<Session> session, uint64_t request_id,
                std::shared_ptr<ResponderGate> gate)
      : session_(std::move(session)),
        request_id_(request_id),
        gate_(std::move(gate)) {}

  // Takes the right to answer; true for exactly one caller.
  bool Claim() { return !answered_.exchange(true); }

 protected:
  bool RespondImpl(int status, absl::string_view content_type, std::string body,
                   HttpHeaderList extra_headers) override {
    if (!Claim()) return false;
    Reply reply{status, std::string(content_type), std::move(body),
                std::move(extra_headers)};
    absl::ReaderMutexLock lock(&gate_->mu);
    if (!gate_->open) return false;
    std::shared_ptr<Session> session = session_.lock();
    if (session == nullptr) return false;
    net::any_io_executor executor = session->executor();
    net::post(executor, [session = std::move(session), id = request_id_,
                         reply = std::move(reply)]() mutable {
      session->Deliver(id, std::move(reply));
    });
    return true;
  }

 private:
  const std::weak_ptr<Session> session_;
  const uint64_t request_id_;
  const std::shared_ptr<ResponderGate> gate_;
  std::atomic<bool> answered_{false};
};

void Session::ReadRequest() {
  if (Stopping()) return Close();
  state_ = State::kReading;
  parser_.emplace();
  parser_->header_limit(
      static_cast<uint32_t>(server_->options().max_header_bytes));
  parser_->body_limit(server_->options().max_body_bytes);
  stream_.expires_after(ToChrono(server_->options().header_timeout));
  http::async_read_header(
      stream_, buffer_, *parser_,
      beast::bind_front_handler(&Session::OnHeader, shared_from_this()));
}

void Session::OnHeader(beast::error_code ec, size_t /*bytes*/) {
  if (ec) return OnReadError(ec);
  ++server_->requests_;
  stream_.expires_after(ToChrono(server_->options().io_timeout));
  const auto& req = parser_->get();
  keep_alive_ = req.keep_alive();
  version_ = req.version();
  if (auto length = parser_->content_length();
      length.has_value() && *length > server_->options().max_body_bytes) {
    return RejectTooLarge();  // Normally caught by the parser already.
  }
  if (absl::EqualsIgnoreCase(absl::string_view(req[http::field::expect].data(),
                                               req[http::field::expect].size()),
                             "100-continue")) {
    continue_ = std::make_unique<http::response<http::empty_body>>(
        http::status::continue_, version_);
    http::async_write(
        stream_, *continue_,
        [self = shared_from_this()](beast::error_code ec, size_t) {
          if (ec) return self->Close();
          self->ReadBody();
        });
    return;
  }
  ReadBody();
}

void Session::ReadBody() {
  http::async_read(
      stream_, buffer_, *parser_,
      beast::bind_front_handler(&Session::OnBody, shared_from_this()));
}

void Session::OnBody(beast::error_code ec, size_t /*bytes*/) {
  if (ec) return OnReadError(ec);
  Dispatch();
}

void Session::OnReadError(beast::error_code ec) {
  if (state_ == State::kClosed) return;
  if (ec == http::error::body_limit) {
    if (!parser_->is_header_done()) ++server_->requests_;
    return RejectTooLarge();
  }
  if (ec == http::error::header_limit) {
    ++server_->requests_;
    ++server_->malformed_;
    return Reject(431, "header_too_large", "request header is too large",
                  After::kClose);
  }
  if (ec.category() ==
          http::make_error_code(http::error::bad_method).category() &&
      ec != http::error::end_of_stream && ec != http::error::partial_message) {
    ++server_->requests_;
    ++server_->malformed_;
    return Reject(400, "bad_request", "malformed HTTP request", After::kClose);
  }
  if (ec == beast::error::timeout && !parser_->is_header_done()) {
    ++server_->header_timeouts_;
  }
  // End of stream, timeout, reset, or our own Close(): nothing to answer.
  Close();
}

void Session::RejectTooLarge() {
  ++server_->too_large_;
  Reject(413, "payload_too_large",
         absl::StrCat("request body exceeds ",
                      server_->options().max_body_bytes, " bytes"),
         After::kLinger);
}

void Session::Dispatch() {
  http::request<http::string_body> msg = parser_->release();
  HttpRequest request;
  request.method = std::string(msg.method_string());
  request.target = std::string(msg.target());
  absl::string_view target = request.target;
  size_t question = target.find('?');
  request.path = std::string(target.substr(0, question));
  if (question != absl::string_view::npos) {
    request.query = std::string(target.substr(question + 1));
  }
  for (const auto& field : msg) {
    request.headers.emplace_back(std::string(field.name_string()),
                                 std::string(field.value()));
  }
  request.body = std::move(msg.body());
  request.remote_address = remote_address_;

  HttpServer::Impl::Resolution route =
      server_->Resolve(request.method, request.path);
  if (route.status == 404) {
    ++server_->not_found_;
    return Reject(404, "not_found", "no such path", After::kKeepAlive);
  }
  if (route.status == 405) {
    ++server_->bad_method_;
    return Reject(405, "method_not_allowed",
                  absl::StrCat("method ", request.method, " not allowed"),
                  After::kKeepAlive, {{"Allow", route.allow}});
  }

  if (!AcceptsBodyType(route.body_types, request.Header("Content-Type"))) {
    ++server_->bad_media_type_;
    return Reject(415, "unsupported_media_type",
                  absl::StrCat("Content-Type '", request.Header("Content-Type"),
                               "' is not accepted here; expected ",
                               absl::StrJoin(route.body_types, " or ")),
                  After::kKeepAlive,
                  {{"Accept-Post", absl::StrJoin(route.body_types, ", ")}});
  }

  size_t bad_byte = 0;
  if (IsTextualContentType(request.Header("Content-Type")) &&
      !IsValidUtf8(request.body, &bad_byte)) {
    ++server_->malformed_;
    return Reject(400, "invalid_utf8",
                  absl::StrCat("the request body is not valid UTF-8 (bad "
                               "byte sequence at byte ",
                               bad_byte, ")"),
                  After::kKeepAlive);
  }

  state_ = State::kHandling;
  ++request_id_;
  ++server_->handled_;
  responder_ = std::make_shared<ResponderImpl>(weak_from_this(), request_id_,
                                               server_->gate());
  request_timer_.expires_after(ToChrono(server_->options().request_timeout));
  request_timer_.async_wait(beast::bind_front_handler(
      &Session::OnRequestTimeout, shared_from_this(), request_id_));
  // The responder may outlive this call; keep our own reference.
  std::shared_ptr<Responder> responder = responder_;
  try {
    (*route.handler)(std::move(request), std::move(responder));
  } catch (const std::exception& e) {
    LogError("HTTP handler threw", {{"error", e.what()}});
    responder_->Respond(500, "application/json",
                        JsonErrorBody("internal", "internal error"));
  } catch (...) {
    LogError("HTTP handler threw a non-exception");
    responder_->Respond(500, "application/json",
                        JsonErrorBody("internal", "internal error"));
  }
}

void Session::OnRequestTimeout(uint64_t request_id, beast::error_code ec) {
  if (ec || state_ != State::kHandling || request_id != request_id_) return;
  if (!responder_->Claim()) return;  // An answer is already on its way.
  ++server_->timed_out_;
  responder_.reset();
  LogWarn("HTTP handler did not answer in time; answering 503");
  Write(Reply{503,
              "application/json",
              JsonErrorBody("timeout", "the request was not handled in time"),
              {}},
        keep_alive_ && !Stopping() ? After::kKeepAlive : After::kClose);
}

void Session::Deliver(uint64_t request_id, Reply reply) {
  if (state_ != State::kHandling || request_id != request_id_) return;
  request_timer_.cancel();
  responder_.reset();
  Write(std::move(reply),
        keep_alive_ && !Stopping() ? After::kKeepAlive : After::kClose);
}

void Session::Reject(int status, absl::string_view code,
                     absl::string_view message, After after,
                     HttpHeaderList headers) {
  if (Stopping() && after == After::kKeepAlive) after = After::kClose;
  if (!keep_alive_ && after == After::kKeepAlive) after = After::kClose;
  Write(Reply{status, "application/json", JsonErrorBody(code, message),
              std::move(headers)},
        after);
}

void Session::Write(Reply reply, After after) {
  state_ = State::kWriting;
  int status = reply.status;
  if (status < 200 || status > 599) {
    LogError("HTTP handler answered an invalid status; sending 500",
             {{"status", absl::StrCat(status)}});
    status = 500;
  }
  response_ = std::make_unique<http::response<http::string_body>>(
      static_cast<http::status>(status), version_);
  if (!reply.content_type.empty() && IsSafeHeaderText(reply.content_type)) {
    response_->set(http::field::content_type, reply.content_type);
  }
  for (const auto& [name, value] : reply.headers) {
    if (name.empty() || !IsSafeHeaderText(name) || !IsSafeHeaderText(value) ||
        absl::EqualsIgnoreCase(name, "content-length") ||
        absl::EqualsIgnoreCase(name, "transfer-encoding") ||
        absl::EqualsIgnoreCase(name, "connection")) {
      LogWarn("dropping an unsafe response header", {{"name", name}});
      continue;
    }
    response_->insert(name, value);
  }
  response_->body() = std::move(reply.body);
  response_->keep_alive(after == After::kKeepAlive);
  response_->prepare_payload();
  stream_.expires_after(ToChrono(server_->options().io_timeout));
  http::async_write(
      stream_, *response_,
      beast::bind_front_handler(&Session::OnWrite, shared_from_this(), after));
}

void Session::OnWrite(After after, beast::error_code ec, size_t /*bytes*/) {
  response_.reset();
  if (ec) return Close();
  switch (after) {
    case After::kKeepAlive:
      return ReadRequest();
    case After::kLinger:
      return Linger();
    case After::kClose:
      return Close();
  }
}

// After answering early (413), the peer may still be sending the body.
// Closing at once could reset the connection before the peer read the
// answer, so half-close and discard what arrives for a short while.
void Session::Linger() {
  state_ = State::kClosed;
  beast::error_code ignored;
  Socket(stream_).shutdown(tcp::socket::shutdown_send, ignored);
  stream_.expires_after(std::chrono::seconds(2));
  drained_ = 0;
  DrainSome();
}

void Session::DrainSome() {
  stream_.async_read_some(
      net::buffer(drain_),
      [self = shared_from_this()](beast::error_code ec, size_t bytes) {
        self->drained_ += bytes;
        if (ec || self->drained_ > (64u << 20)) {
          beast::error_code ignored;
          self->stream_.socket().close(ignored);
          return;
        }
        self->DrainSome();
      });
}

void Session::Close() {
  if (state_ == State::kClosed && !Socket(stream_).is_open()) return;
  state_ = State::kClosed;
  request_timer_.cancel();
  beast::error_code ignored;
  Socket(stream_).shutdown(tcp::socket::shutdown_both, ignored);
  stream_.close();
}

void Session::Abort() {
  stopping_ = true;
  if (responder_ != nullptr && responder_->Claim()) {
    ++server_->aborted_;
    LogWarn("HTTP request abandoned at shutdown");
  }
  responder_.reset();
  beast::error_code ignored;
  Socket(stream_).close(ignored);
  state_ = State::kClosed;
  request_timer_.cancel();
}

}  // namespace

HttpServer::Impl::Resolution HttpServer::Impl::Resolve(
    absl::string_view method, absl::string_view path) const {
  absl::ReaderMutexLock lock(&mu_);
  // The best matching path: an exact route, else the longest prefix.
  const Route* best = nullptr;
  for (const Route& route : routes_) {
    bool matches =
        route.prefix ? absl::StartsWith(path, route.path) : path == route.path;
    if (!matches) continue;
    if (best == nullptr || (best->prefix && !route.prefix) ||
        (best->prefix == route.prefix &&
         route.path.size() > best->path.size())) {
      best = &route;
    }
  }
  Resolution result;
  if (best == nullptr) return result;
  std::vector<std::string> allowed;
  for (const Route& route : routes_) {
    if (route.prefix != best->prefix || route.path != best->path) continue;
    if (route.method == method) {
      result.status = 200;
      result.handler = route.handler;
      result.body_types = route.body_types;
      return result;
    }
    allowed.push_back(route.method);
  }
  result.status = 405;
  result.allow = absl::StrJoin(allowed, ", ");
  return result;
}

absl::Status HttpServer::Impl::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (started_) return absl::FailedPreconditionError("already started");
    started_ = true;
  }
  beast::error_code ec;
  tcp::endpoint endpoint;
  net::ip::address address = net::ip::make_address(options_.host, ec);
  if (!ec) {
    endpoint = tcp::endpoint(address, options_.port);
  } else {
    tcp::resolver resolver(ioc_);
    auto results =
        resolver.resolve(options_.host, absl::StrCat(options_.port), ec);
    if (ec || results.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot resolve HTTP server host '", options_.host,
                       "': ", ec.message()));
    }
    endpoint = results.begin()->endpoint();
  }
  auto fail = [&](absl::string_view what) {
    return absl::UnavailableError(absl::StrCat(
        "HTTP server cannot ", what, " ", endpoint.address().to_string(), ":",
        endpoint.port(), ": ", ec.message()));
  };
  // The listening socket and every accepted one are close-on-exec from the
  // start (SOCK_CLOEXEC here, accept4 in OnAcceptable; Asio sets neither).
  // A child that this process forks and execs (the integration tests start
  // the router and the adapters that way) would otherwise keep them open:
  // closing an idle keep-alive connection would then send no FIN, and the
  // client would reuse it from its pool and wait for an answer until its
  // own timeout (30 s of "0 bytes received"); an inherited listener would
  // queue connections after Stop() instead of refusing them.
  int listen_fd =
      ::socket(endpoint.protocol().family(), SOCK_STREAM | SOCK_CLOEXEC,
               endpoint.protocol().protocol());
  if (listen_fd < 0) {
    ec.assign(errno, boost::system::system_category());
    return fail("open");
  }
  protocol_ = endpoint.protocol();
  acceptor_.assign(protocol_, listen_fd, ec);
  if (ec) {
    ::close(listen_fd);
    return fail("open");
  }
  // accept4 must not block a server thread when a queued connection was
  // reset before it was taken.
  acceptor_.non_blocking(true, ec);
  if (ec) return fail("configure");
  acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (ec) return fail("configure");
  acceptor_.bind(endpoint, ec);
  if (ec) return fail("bind");
  acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return fail("listen on");
  port_.store(acceptor_.local_endpoint(ec).port());
  if (ec) return fail("read the port of");

  work_.emplace(ioc_.get_executor());
  Accept();
  int threads = std::max(1, options_.threads);
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this] {
      for (;;) {
        try {
          ioc_.run();
          return;
        } catch (const std::exception& e) {
          LogError("HTTP server thread caught an exception",
                   {{"error", e.what()}});
        }
      }
    });
  }
  LogInfo("HTTP server listening",
          {{"address",
            absl::StrCat(endpoint.address().to_string(), ":", port_.load())}});
  return absl::OkStatus();
}

void HttpServer::Impl::Accept() {
  acceptor_.async_wait(tcp::acceptor::wait_read,
                       beast::bind_front_handler(&Impl::OnAcceptable, this));
}

// Takes one pending connection with accept4(SOCK_CLOEXEC), so that it is
// never open without close-on-exec (see Start()); Asio's accept has no
// flags.
void HttpServer::Impl::OnAcceptable(beast::error_code ec) {
  if (stopping_.load() || !acceptor_.is_open()) return;
  tcp::socket socket(net::make_strand(ioc_));
  if (!ec) {
    int fd = ::accept4(acceptor_.native_handle(), nullptr, nullptr,
                       SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      int error = errno;
      // Nothing to take after all (another wake-up took it, or the peer
      // reset it meanwhile): wait for the next one. Asio's accept retries
      // these too.
      if (error == EAGAIN || error == EWOULDBLOCK || error == EINTR ||
          error == ECONNABORTED || error == EPROTO) {
        return Accept();
      }
      ec.assign(error, boost::system::system_category());
    } else {
      socket.assign(protocol_, fd, ec);
      if (ec) ::close(fd);
    }
  }
  OnAccept(ec, std::move(socket));
}

void HttpServer::Impl::OnAccept(beast::error_code ec, tcp::socket socket) {
  if (stopping_.load() || !acceptor_.is_open()) return;
  if (ec) {
    // Out of descriptors (EMFILE, ENFILE), memory, or a connection reset
    // before it was accepted: retrying at once would spin on the same error
    // (the pending connection stays in the backlog), so wait first.
    if (accept_failures_.fetch_add(1) % 1000 == 0) {
      LogWarn("HTTP server accept failed; retrying after a pause",
              {{"error", ec.message()},
               {"pause", absl::FormatDuration(accept_backoff_)}});
    }
    accept_backoff_timer_.expires_after(ToChrono(accept_backoff_));
    accept_backoff_ = std::min(accept_backoff_ * 2, kAcceptBackoffMax);
    accept_backoff_timer_.async_wait([this](beast::error_code wait_ec) {
      if (wait_ec || stopping_.load() || !acceptor_.is_open()) return;
      Accept();
    });
    return;
  }
  accept_backoff_ = kAcceptBackoffMin;
  std::shared_ptr<Session> session;
  {
    absl::MutexLock lock(&mu_);
    if (sessions_.size() < options_.max_connections) {
      session = std::make_shared<Session>(this, std::move(socket));
      sessions_[session.get()] = session;
    }
  }
  if (session != nullptr) {
    session->Run();
  } else {
    // Full: close without reading, so descriptors and memory stay bounded.
    if (refused_connections_.fetch_add(1) % 1000 == 0) {
      LogWarn("HTTP server at max_connections; closing new connections",
              {{"max_connections", absl::StrCat(options_.max_connections)}});
    }
    beast::error_code ignored;
    socket.close(ignored);
  }
  Accept();
}

std::vector<std::shared_ptr<Session>> HttpServer::Impl::LiveSessions() {
  std::vector<std::shared_ptr<Session>> live;
  absl::MutexLock lock(&mu_);
  for (auto& [ptr, weak] : sessions_) {
    if (auto session = weak.lock()) live.push_back(std::move(session));
  }
  return live;
}

void HttpServer::Impl::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (!started_ || stopped_) {
      stopped_ = true;
      return;
    }
    stopped_ = true;
  }
  stopping_.store(true);
  // Stop accepting.
  net::post(acceptor_.get_executor(), [this] {
    beast::error_code ignored;
    acceptor_.close(ignored);
    accept_backoff_timer_.cancel();
  });
  // Close idle connections; busy ones close after their answer.
  for (auto& session : LiveSessions()) {
    net::post(session->executor(), [session] { session->OnServerStop(); });
  }
  {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(this, &Impl::NoSessions),
                         options_.stop_grace);
  }
  // Give up on what is left.
  for (auto& session : LiveSessions()) {
    net::post(session->executor(), [session] { session->Abort(); });
  }
  {
    absl::MutexLock lock(&gate_->mu);
    gate_->open = false;
  }
  work_.reset();
  {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(this, &Impl::NoSessions),
                         absl::Seconds(1));
  }
  ioc_.stop();
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
  LogInfo("HTTP server stopped");
}

HttpServer::HttpServer(Options options)
    : impl_(std::make_unique<Impl>(std::move(options))) {
  impl_->AddRoute("GET", "/healthz", /*prefix=*/false,
                  [](HttpRequest, std::shared_ptr<Responder> responder) {
                    responder->Respond(200, "text/plain", "ok");
                  });
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Handle(absl::string_view method, absl::string_view path,
                        HttpHandler handler, HttpBodyTypes body_types) {
  impl_->AddRoute(method, path, /*prefix=*/false, std::move(handler),
                  std::move(body_types));
}

void HttpServer::HandlePrefix(absl::string_view method,
                              absl::string_view prefix, HttpHandler handler,
                              HttpBodyTypes body_types) {
  impl_->AddRoute(method, prefix, /*prefix=*/true, std::move(handler),
                  std::move(body_types));
}

HttpBodyTypes JsonBodies() { return {"application/json"}; }
HttpBodyTypes FormBodies() { return {"application/x-www-form-urlencoded"}; }

absl::Status HttpServer::Start() { return impl_->Start(); }
void HttpServer::Stop() { impl_->Stop(); }
uint16_t HttpServer::port() const { return impl_->port(); }
HttpServerCounters HttpServer::counters() const { return impl_->counters(); }

}  // namespace imbridge
