#include "adapters/slack/socket_mode.h"

#include <openssl/ssl.h>

#include <deque>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/ssl.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/ssl.hpp"
#include "boost/beast/websocket.hpp"
#include "boost/beast/websocket/ssl.hpp"
#include "common/http/url_origin.h"
#include "common/logging.h"

namespace imbridge::adapters::slack {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

// One WebSocket connection; all methods run on the io_context's thread.
class LinkBase {
 public:
  virtual ~LinkBase() = default;
  virtual void Start() = 0;
  virtual void Send(std::string text) = 0;
  virtual void Close() = 0;
};

struct LinkCallbacks {
  std::function<void(const std::string& message)> on_message;
  std::function<void(const std::string& why)> on_end;
};

template <bool kTls>
struct StreamFor;
template <>
struct StreamFor<true> {
  using type = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;
  static type Make(net::io_context& ioc, ssl::context& ctx) {
    return type(ioc, ctx);
  }
};
template <>
struct StreamFor<false> {
  using type = websocket::stream<beast::tcp_stream>;
  static type Make(net::io_context& ioc, ssl::context&) { return type(ioc); }
};

template <bool kTls>
class Link : public LinkBase, public std::enable_shared_from_this<Link<kTls>> {
 public:
  Link(net::io_context& ioc, ssl::context& tls, std::string host,
       std::string port, std::string target, absl::Duration connect_timeout,
       LinkCallbacks callbacks)
      : ws_(StreamFor<kTls>::Make(ioc, tls)),
        resolver_(ioc),
        host_(std::move(host)),
        port_(std::move(port)),
        target_(std::move(target)),
        connect_timeout_(connect_timeout),
        cb_(std::move(callbacks)) {}

  void Start() override {
    auto self = this->shared_from_this();
    resolver_.async_resolve(
        host_, port_,
        [self](beast::error_code ec, tcp::resolver::results_type results) {
          self->OnResolve(ec, std::move(results));
        });
  }

  void Send(std::string text) override {
    if (ended_) return;
    queue_.push_back(std::move(text));
    if (open_ && queue_.size() == 1) Write();
  }

  void Close() override {
    if (ended_ || closing_) return;
    closing_ = true;
    if (!open_) {
      beast::get_lowest_layer(ws_).cancel();
      resolver_.cancel();
      End("closed before open");
      return;
    }
    auto self = this->shared_from_this();
    ws_.async_close(websocket::close_code::normal,
                    [self](beast::error_code) { self->End("closed"); });
  }

 private:
  absl::Duration Timeout() const { return connect_timeout_; }

  void OnResolve(beast::error_code ec, tcp::resolver::results_type results) {
    if (ec) return End(absl::StrCat("resolve: ", ec.message()));
    beast::get_lowest_layer(ws_).expires_after(
        std::chrono::milliseconds(absl::ToInt64Milliseconds(Timeout())));
    auto self = this->shared_from_this();
    beast::get_lowest_layer(ws_).async_connect(
        results, [self](beast::error_code ec, const tcp::endpoint&) {
          self->OnConnect(ec);
        });
  }

  void OnConnect(beast::error_code ec) {
    if (ec) return End(absl::StrCat("connect: ", ec.message()));
    auto self = this->shared_from_this();
    if constexpr (kTls) {
      if (!SSL_set_tlsext_host_name(ws_.next_layer().native_handle(),
                                    host_.c_str())) {
        return End("TLS: cannot set SNI");
      }
      ws_.next_layer().set_verify_mode(ssl::verify_peer);
      ws_.next_layer().set_verify_callback(ssl::host_name_verification(host_));
      ws_.next_layer().async_handshake(
          ssl::stream_base::client,
          [self](beast::error_code ec) { self->OnTransportReady(ec); });
    } else {
      OnTransportReady(ec);
    }
  }

  void OnTransportReady(beast::error_code ec) {
    if (ec) return End(absl::StrCat("TLS handshake: ", ec.message()));
    beast::get_lowest_layer(ws_).expires_never();
    ws_.set_option(
        websocket::stream_base::timeout::suggested(beast::role_type::client));
    ws_.read_message_max(16 << 20);
    auto self = this->shared_from_this();
    ws_.async_handshake(
        absl::StrCat(host_, ":", port_), target_,
        [self](beast::error_code ec) { self->OnHandshake(ec); });
  }

  void OnHandshake(beast::error_code ec) {
    if (ec) return End(absl::StrCat("WebSocket handshake: ", ec.message()));
    open_ = true;
    if (closing_) {
      closing_ = false;
      Close();
      return;
    }
    if (!queue_.empty()) Write();
    Read();
  }

  void Read() {
    auto self = this->shared_from_this();
    ws_.async_read(buffer_, [self](beast::error_code ec, size_t) {
      if (ec) return self->End(absl::StrCat("read: ", ec.message()));
      std::string message = beast::buffers_to_string(self->buffer_.data());
      self->buffer_.consume(self->buffer_.size());
      self->cb_.on_message(message);
      if (!self->ended_) self->Read();
    });
  }

  void Write() {
    ws_.text(true);
    auto self = this->shared_from_this();
    ws_.async_write(net::buffer(queue_.front()),
                    [self](beast::error_code ec, size_t) {
                      if (ec)
                        return self->End(absl::StrCat("write: ", ec.message()));
                      self->queue_.pop_front();
                      if (!self->queue_.empty()) self->Write();
                    });
  }

  void End(const std::string& why) {
    if (ended_) return;
    ended_ = true;
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
    cb_.on_end(why);
  }

  typename StreamFor<kTls>::type ws_;
  tcp::resolver resolver_;
  const std::string host_;
  const std::string port_;
  const std::string target_;
  const absl::Duration connect_timeout_;
  LinkCallbacks cb_;
  beast::flat_buffer buffer_;
  std::deque<std::string> queue_;
  bool open_ = false;
  bool closing_ = false;
  bool ended_ = false;
};

struct ParsedWsUrl {
  bool tls = false;
  std::string host;
  std::string port;
  std::string target;
};

absl::StatusOr<ParsedWsUrl> ParseWsUrl(absl::string_view url) {
  auto origin = ParseUrlOrigin(url);
  if (!origin.ok()) return origin.status();
  if (origin->scheme != "wss" && origin->scheme != "ws") {
    return absl::InvalidArgumentError("not a ws:// or wss:// URL");
  }
  if (origin->has_user_info) {
    return absl::InvalidArgumentError("URL with user info");
  }
  ParsedWsUrl out;
  out.tls = origin->scheme == "wss";
  out.host = origin->host;
  if (!out.host.empty() && out.host.front() == '[') {
    out.host = out.host.substr(1, out.host.size() - 2);
  }
  out.port = std::to_string(origin->port);
  absl::string_view rest = url.substr(url.find("://") + 3);
  size_t slash = rest.find_first_of("/?");
  out.target =
      slash == absl::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (out.target.front() == '?') out.target = "/" + out.target;
  return out;
}

// The string member `name` of object `m`; empty when absent or not a string.
std::string StringMember(const nlohmann::json& m, const char* name) {
  auto it = m.find(name);
  return it != m.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

SocketModeMessage ParseSocketModeMessage(absl::string_view text) {
  SocketModeMessage out;
  nlohmann::json m = nlohmann::json::parse(text, nullptr, false);
  if (!m.is_object()) return out;
  const std::string type = StringMember(m, "type");
  out.envelope_id = StringMember(m, "envelope_id");
  if (type == "hello") {
    out.kind = SocketModeMessage::Kind::kHello;
  } else if (type == "disconnect") {
    out.kind = SocketModeMessage::Kind::kDisconnect;
    out.reason = StringMember(m, "reason");
  } else if (type == "events_api" && m.contains("payload") &&
             m["payload"].is_object()) {
    out.kind = SocketModeMessage::Kind::kEvent;
    out.payload = std::move(m["payload"]);
  } else {
    out.kind = SocketModeMessage::Kind::kOther;
  }
  return out;
}

class SocketModeClient::Shared {
 public:
  net::io_context ioc;
  std::weak_ptr<LinkBase> link;  // The current link; io thread only.
  std::atomic<uint64_t> acks{0};
};

SocketModeClient::SocketModeClient(Options options, const SlackApi* api,
                                   EventSink sink)
    : options_(std::move(options)),
      api_(api),
      sink_(std::move(sink)),
      shared_(std::make_shared<Shared>()) {}

SocketModeClient::~SocketModeClient() { Stop(); }

uint64_t SocketModeClient::acks() const { return shared_->acks.load(); }

void SocketModeClient::Start() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = false;
  }
  finished_ = false;
  thread_ = std::thread([this] { Run(); });
}

void SocketModeClient::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  std::shared_ptr<Shared> shared = shared_;
  net::post(shared->ioc, [shared] {
    if (auto link = shared->link.lock()) link->Close();
  });
  // A close that does not complete in time is cut short.
  absl::Time deadline = absl::Now() + absl::Seconds(3);
  while (thread_.joinable() && !finished_.load() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  shared->ioc.stop();
  if (thread_.joinable()) thread_.join();
}

void SocketModeClient::Run() {
  ssl::context tls(ssl::context::tls_client);
  tls.set_default_verify_paths();
  tls.set_verify_mode(ssl::verify_peer);
  absl::Duration backoff = options_.initial_backoff;
  std::shared_ptr<Shared> shared = shared_;
  auto stopping = [this]()
                      ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
    }
    finished_ = false;
    bool hello = false;
    bool reconnect_now = false;
    auto url = api_->OpenSocketConnection(options_.app_token);
    absl::StatusOr<ParsedWsUrl> parsed =
        url.ok() ? ParseWsUrl(*url) : absl::StatusOr<ParsedWsUrl>(url.status());
    if (!parsed.ok()) {
      LogWarn("Socket Mode: cannot open a connection",
              {{"account", options_.account},
               {"error", parsed.status().message()}});
    } else {
      shared->ioc.restart();
      std::string end_reason;
      LinkCallbacks cb;
      std::weak_ptr<LinkBase> weak;
      cb.on_message = [&](const std::string& text) {
        SocketModeMessage m = ParseSocketModeMessage(text);
        switch (m.kind) {
          case SocketModeMessage::Kind::kMalformed:
            LogWarn("Socket Mode: message is not JSON",
                    {{"account", options_.account}});
            return;
          case SocketModeMessage::Kind::kHello:
            hello = true;
            connected_ = true;
            LogInfo("Socket Mode connected", {{"account", options_.account}});
            return;
          case SocketModeMessage::Kind::kDisconnect:
            LogInfo("Socket Mode: Slack asked to reconnect",
                    {{"account", options_.account}, {"reason", m.reason}});
            reconnect_now = true;
            if (auto link = weak.lock()) link->Close();
            return;
          case SocketModeMessage::Kind::kEvent:
          case SocketModeMessage::Kind::kOther:
            break;
        }
        if (m.envelope_id.empty()) return;
        std::weak_ptr<LinkBase> from = weak;
        auto ack = [shared, from, envelope_id = m.envelope_id] {
          net::post(shared->ioc, [shared, from, envelope_id] {
            auto link = from.lock();
            if (!link) return;  // A new connection: Slack redelivers.
            link->Send(nlohmann::json{{"envelope_id", envelope_id}}.dump());
            shared->acks.fetch_add(1);
          });
        };
        if (m.kind == SocketModeMessage::Kind::kEvent) {
          sink_(std::move(m.payload), std::move(ack));
        } else {
          ack();
        }
      };
      cb.on_end = [&](const std::string& why) { end_reason = why; };
      std::shared_ptr<LinkBase> link;
      if (parsed->tls) {
        link = std::make_shared<Link<true>>(shared->ioc, tls, parsed->host,
                                            parsed->port, parsed->target,
                                            options_.connect_timeout, cb);
      } else {
        link = std::make_shared<Link<false>>(shared->ioc, tls, parsed->host,
                                             parsed->port, parsed->target,
                                             options_.connect_timeout, cb);
      }
      weak = link;
      net::post(shared->ioc, [this, shared, link] {
        absl::MutexLock lock(&mu_);
        if (stopping_) return;
        shared->link = link;
        link->Start();
      });
      link.reset();
      shared->ioc.run();
      connected_ = false;
      LogInfo("Socket Mode connection ended",
              {{"account", options_.account}, {"reason", end_reason}});
    }
    if (hello) backoff = options_.initial_backoff;
    if (reconnect_now) continue;
    absl::MutexLock lock(&mu_);
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping), backoff)) break;
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
  connected_ = false;
  finished_ = true;
}

}  // namespace imbridge::adapters::slack
