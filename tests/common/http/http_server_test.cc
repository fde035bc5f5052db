#include "common/http/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "boost/asio/connect.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/write.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace imbridge {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using ::testing::HasSubstr;

constexpr auto kIoWait = std::chrono::seconds(5);

using Response = http::response<http::string_body>;

// One client connection driven synchronously with a deadline on every step,
// so a broken server fails the test instead of hanging it.
class TestConnection {
 public:
  explicit TestConnection(uint16_t port) : stream_(ioc_) {
    beast::error_code ec;
    stream_.socket().connect(
        tcp::endpoint(net::ip::make_address("127.0.0.1"), port), ec);
    connected_ = !ec;
  }

  bool connected() const { return connected_; }

  beast::error_code WriteRaw(const std::string& bytes) {
    beast::error_code result = net::error::timed_out;
    net::async_write(stream_, net::buffer(bytes),
                     [&](beast::error_code ec, size_t) { result = ec; });
    Run();
    return result;
  }

  beast::error_code Write(http::request<http::string_body> request) {
    request.prepare_payload();
    beast::error_code result = net::error::timed_out;
    http::async_write(stream_, request,
                      [&](beast::error_code ec, size_t) { result = ec; });
    Run();
    return result;
  }

  absl::StatusOr<Response> Read() {
    Response response;
    beast::error_code result = net::error::timed_out;
    http::async_read(stream_, buffer_, response,
                     [&](beast::error_code ec, size_t) { result = ec; });
    Run();
    if (result) return absl::UnavailableError(result.message());
    return response;
  }

  absl::StatusOr<Response> RoundTrip(http::request<http::string_body> request) {
    if (beast::error_code ec = Write(std::move(request)); ec) {
      return absl::UnavailableError(ec.message());
    }
    return Read();
  }

  // True when the server closes the connection (EOF or reset) in time.
  bool WaitClosed() {
    std::array<char, 4096> chunk;
    for (;;) {
      beast::error_code result = net::error::timed_out;
      size_t got = 0;
      stream_.async_read_some(net::buffer(chunk),
                              [&](beast::error_code ec, size_t n) {
                                result = ec;
                                got = n;
                              });
      Run();
      if (result == net::error::timed_out) return false;
      if (result) return true;
      (void)got;
    }
  }

 private:
  void Run() {
    stream_.expires_after(kIoWait);
    ioc_.restart();
    ioc_.run();
  }

  net::io_context ioc_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  bool connected_ = false;
};

http::request<http::string_body> Request(http::verb verb,
                                         absl::string_view target,
                                         std::string body = "") {
  http::request<http::string_body> request(
      verb, beast::string_view(target.data(), target.size()), 11);
  request.set(http::field::host, "127.0.0.1");
  request.body() = std::move(body);
  return request;
}

absl::StatusOr<Response> Fetch(uint16_t port,
                               http::request<http::string_body> request) {
  TestConnection conn(port);
  if (!conn.connected()) return absl::UnavailableError("connect failed");
  return conn.RoundTrip(std::move(request));
}

std::string ErrorCode(const Response& response) {
  nlohmann::json json = nlohmann::json::parse(response.body(), nullptr, false);
  if (json.is_discarded()) return "<not json>";
  return json["error"]["code"].get<std::string>();
}

// Keeps the requests a handler saw and answers them on demand.
class Recorder {
 public:
  HttpHandler Handler(bool answer_now, std::string reply = "done") {
    return [this, answer_now, reply](HttpRequest request,
                                     std::shared_ptr<Responder> responder) {
      absl::MutexLock lock(&mu_);
      requests_.push_back(std::move(request));
      if (answer_now) {
        responder->Respond(200, "text/plain", reply);
      } else {
        responders_.push_back(std::move(responder));
      }
    };
  }

  // Waits for `n` requests in total.
  bool WaitFor(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return requests_.size() >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(5));
  }

  size_t count() {
    absl::MutexLock lock(&mu_);
    return requests_.size();
  }

  HttpRequest request(size_t i) {
    absl::MutexLock lock(&mu_);
    return requests_.at(i);
  }

  std::shared_ptr<Responder> responder(size_t i) {
    absl::MutexLock lock(&mu_);
    return responders_.at(i);
  }

 private:
  absl::Mutex mu_;
  std::vector<HttpRequest> requests_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<Responder>> responders_ ABSL_GUARDED_BY(mu_);
};

class HttpServerTest : public ::testing::Test {
 protected:
  void StartServer(HttpServer::Options options = {}) {
    options.host = "127.0.0.1";
    options.port = 0;
    server_ = std::make_unique<HttpServer>(options);
    server_->Handle("POST", "/slack/events", recorder_.Handler(true, "slack"));
    server_->HandlePrefix("POST", "/hooks/", recorder_.Handler(true, "hook"));
    server_->Handle("POST", "/hooks/special",
                    recorder_.Handler(true, "special"));
    server_->Handle("PUT", "/slack/events", recorder_.Handler(true, "put"));
    server_->Handle("POST", "/later", recorder_.Handler(false));
    server_->Handle("GET", "/throws",
                    [](HttpRequest, std::shared_ptr<Responder>) {
                      throw std::runtime_error("boom");
                    });
    ASSERT_TRUE(server_->Start().ok());
    ASSERT_NE(server_->port(), 0);
  }

  uint16_t port() const { return server_->port(); }

  Recorder recorder_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, RoutesAndPassesTheRequestThrough) {
  StartServer();
  std::string body("a=1&b=\r\n\0\xff", 11);
  auto request = Request(http::verb::post, "/slack/events?x=1&y=%20", body);
  request.set("X-Slack-Signature", "v0=abc");
  absl::StatusOr<Response> response = Fetch(port(), request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->result_int(), 200);
  EXPECT_EQ(response->body(), "slack");
  EXPECT_EQ((*response)[http::field::content_type], "text/plain");

  ASSERT_EQ(recorder_.count(), 1u);
  HttpRequest seen = recorder_.request(0);
  EXPECT_EQ(seen.method, "POST");
  EXPECT_EQ(seen.target, "/slack/events?x=1&y=%20");
  EXPECT_EQ(seen.path, "/slack/events");
  EXPECT_EQ(seen.query, "x=1&y=%20");
  EXPECT_EQ(seen.body, body);
  EXPECT_EQ(seen.Header("x-slack-signature"), "v0=abc");
  EXPECT_EQ(seen.Header("X-SLACK-SIGNATURE"), "v0=abc");
  EXPECT_TRUE(seen.HasHeader("host"));
  EXPECT_FALSE(seen.HasHeader("x-missing"));
  EXPECT_EQ(seen.Header("x-missing"), "");
  EXPECT_THAT(seen.remote_address, HasSubstr("127.0.0.1:"));

  // Method routing on the same path.
  response = Fetch(port(), Request(http::verb::put, "/slack/events", "{}"));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body(), "put");

  // Prefix routing; an exact route beats the prefix.
  response = Fetch(port(), Request(http::verb::post, "/hooks/abc/def"));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body(), "hook");
  response = Fetch(port(), Request(http::verb::post, "/hooks/special"));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body(), "special");
  EXPECT_EQ(server_->counters().handled, 4u);
}

TEST_F(HttpServerTest, UnknownPathIs404AndWrongMethodIs405) {
  StartServer();
  absl::StatusOr<Response> response =
      Fetch(port(), Request(http::verb::post, "/nowhere", "x"));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->result_int(), 404);
  EXPECT_EQ(ErrorCode(*response), "not_found");
  // An exact route does not match longer paths.
  response = Fetch(port(), Request(http::verb::post, "/slack/events/x"));
  ASSERT_TRUE(response.ok());
  EXPECT_EQ(response->result_int(), 404);

  response = Fetch(port(), Request(http::verb::get, "/slack/events"));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->result_int(), 405);
  EXPECT_EQ(ErrorCode(*response), "method_not_allowed");
  EXPECT_THAT(std::string((*response)[http::field::allow]), HasSubstr("POST"));
  EXPECT_THAT(std::string((*response)[http::field::allow]), HasSubstr("PUT"));

  EXPECT_EQ(recorder_.count(), 0u);
  HttpServerCounters counters = server_->counters();
  EXPECT_EQ(counters.rejected_not_found, 2u);
  EXPECT_EQ(counters.rejected_method, 1u);
  EXPECT_EQ(counters.requests, 3u);
  EXPECT_EQ(counters.handled, 0u);
}

TEST_F(HttpServerTest, Healthz) {
  StartServer();
  absl::StatusOr<Response> response =
      Fetch(port(), Request(http::verb::get, "/healthz"));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->result_int(), 200);
  EXPECT_EQ(response->body(), "ok");
}

TEST_F(HttpServerTest, OversizedBodyIs413BeforeTheBodyIsSent) {
  HttpServer::Options options;
  options.max_body_bytes = 1024;
  StartServer(options);
  TestConnection conn(port());
  ASSERT_TRUE(conn.connected());
  // Only the header: the server must answer without waiting for the body.
  ASSERT_FALSE(
      conn.WriteRaw("POST /slack/events HTTP/1.1\r\n"
                    "Host: x\r\nContent-Length: 1025\r\n\r\n"));
  absl::StatusOr<Response> response = conn.Read();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->result_int(), 413);
  EXPECT_EQ(ErrorCode(*response), "payload_too_large");
  EXPECT_EQ((*response)[http::field::content_type], "application/json");
  EXPECT_FALSE(response->keep_alive());
  EXPECT_TRUE(conn.WaitClosed());
  EXPECT_EQ(recorder_.count(), 0u);
  EXPECT_EQ(server_->counters().rejected_too_large, 1u);

  // Exactly at the limit is fine.
  absl::StatusOr<Response> ok =
      Fetch(port(),
            Request(http::verb::post, "/slack/events", std::string(1024, 'a')));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->result_int(), 200);
  EXPECT_EQ(recorder_.count(), 1u);
}

TEST_F(HttpServerTest, OversizedChunkedBodyIs413) {
  HttpServer::Options options;
  options.max_body_bytes = 1024;
  StartServer(options);
  TestConnection conn(port());
  ASSERT_TRUE(conn.connected());
  std::string chunk(800, 'x');
  ASSERT_FALSE(conn.WriteRaw(
      absl::StrCat("POST /slack/events HTTP/1.1\r\nHost: x\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n",
                   "320\r\n", chunk, "\r\n", "320\r\n", chunk, "\r\n")));
  absl::StatusOr<Response> response = conn.Read();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->result_int(), 413);
  EXPECT_EQ(recorder_.count(), 0u);
  EXPECT_EQ(server_->counters().rejected_too_large, 1u);
}

TEST_F(HttpServerTest, ExpectContinueGetsTheBody) {
  StartServer();
  TestConnection conn(port());
  ASSERT_TRUE(conn.connected());
  ASSERT_FALSE(
      conn.WriteRaw("POST /slack/events HTTP/1.1\r\nHost: x\r\n"
                    "Content-Length: 5\r\nExpect: 100-continue\r\n"
                    "\r\n"));
  absl::StatusOr<Response> interim = conn.Read();
  ASSERT_TRUE(interim.ok()) << interim.status();
  EXPECT_EQ(interim->result_int(), 100);
  ASSERT_FALSE(conn.WriteRaw("hello"));
  absl::StatusOr<Response> response = conn.Read();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->result_int(), 200);
  EXPECT_EQ(recorder_.request(0).body, "hello");
}

TEST_F(HttpServerTest, MalformedRequestIs400) {
  StartServer();
  TestConnection conn(port());
  ASSERT_TRUE(conn.connected());
  ASSERT_FALSE(
      conn.WriteRaw("POST /slack/events HTTP/1.1\r\nHost: x\r\n"
                    "Content-Length: abc\r\n\r\n"));
  absl::StatusOr<Response> response = conn.Read();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->result_int(), 400);
  EXPECT_TRUE(conn.WaitClosed());
  EXPECT_EQ(server_->counters().rejected_malformed, 1u);
  EXPECT_EQ(recorder_.count(), 0u);
}

TEST_F(HttpServerTest, HandlerAnswersLaterFromAnotherThread) {
  StartServer();
  std::optional<absl::StatusOr<Response>> response;
  std::thread client([&] {
    response = Fetch(port(), Request(http::verb::post, "/later", "{}"));
  });
  ASSERT_TRUE(recorder_.WaitFor(1));
  std::shared_ptr<Responder> responder = recorder_.responder(0);
  bool accepted = false;
  std::thread answerer([&] {
    accepted = responder->Respond(
        202, "application/json", R"({"ok":true})",
        {{"X-Slack-No-Retry", "1"}, {"X-Bad", "a\r\nInjected: 1"}});
  });
  answerer.join();
  client.join();
  EXPECT_TRUE(accepted);
  ASSERT_TRUE(response.has_value());
  ASSERT_TRUE(response->ok()) << response->status();
  EXPECT_EQ((*response)->result_int(), 202);
  EXPECT_EQ((*response)->body(), R"({"ok":true})");
  EXPECT_EQ((**response)["X-Slack-No-Retry"], "1");
  EXPECT_EQ((**response)["X-Bad"], "");
  EXPECT_EQ((**response)["Injected"], "");
  // A second answer is refused.
  EXPECT_FALSE(responder->Respond(200, "text/plain", "again"));
}

TEST_F(HttpServerTest, UnansweredRequestTimesOutWith503) {
  HttpServer::Options options;
  options.request_timeout = absl::Milliseconds(200);
  StartServer(options);
  TestConnection conn(port());
  ASSERT_TRUE(conn.connected());
  absl::Time start = absl::Now();
  absl::StatusOr<Response> response =
      conn.RoundTrip(Request(http::verb::post, "/later", "{}"));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->result_int(), 503);
  EXPECT_EQ(ErrorCode(*response), "timeout");
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(190));
  EXPECT_EQ(server_->counters().timed_out, 1u);
  // The late answer is refused, and the connection still works.
  EXPECT_FALSE(recorder_.responder(0)->Respond(200, "text/plain", "late"));
  response = conn.RoundTrip(Request(http::verb::get, "/healthz"));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body(), "ok");
}

TEST_F(HttpServerTest, KeepAliveServesTwoRequestsOnOneConnection) {
  StartServer();
  TestConnection conn(port());
  ASSERT_TRUE(conn.connected());
  absl::StatusOr<Response> first =
      conn.RoundTrip(Request(http::verb::post, "/slack/events", "one"));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->keep_alive());
  absl::StatusOr<Response> second =
      conn.RoundTrip(Request(http::verb::post, "/slack/events", "two"));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->body(), "slack");
  ASSERT_EQ(recorder_.count(), 2u);
  EXPECT_EQ(recorder_.request(0).body, "one");
  EXPECT_EQ(recorder_.request(1).body, "two");
  // Same client port: the same connection.
  EXPECT_EQ(recorder_.request(0).remote_address,
            recorder_.request(1).remote_address);

  // Connection: close is honoured.
  auto closing = Request(http::verb::post, "/slack/events", "three");
  closing.keep_alive(false);
  absl::StatusOr<Response> third = conn.RoundTrip(closing);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_FALSE(third->keep_alive());
  EXPECT_TRUE(conn.WaitClosed());
}

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  StartServer();
  TestConnection conn(port());
  ASSERT_TRUE(conn.connected());
  ASSERT_FALSE(conn.WriteRaw(
      "POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na"
      "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  absl::StatusOr<Response> first = conn.Read();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->body(), "slack");
  absl::StatusOr<Response> second = conn.Read();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->body(), "ok");
}

TEST_F(HttpServerTest, HandlerExceptionIs500) {
  StartServer();
  absl::StatusOr<Response> response =
      Fetch(port(), Request(http::verb::get, "/throws"));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->result_int(), 500);
  EXPECT_EQ(ErrorCode(*response), "internal");
  // The server goes on.
  response = Fetch(port(), Request(http::verb::post, "/slack/events", "{}"));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->result_int(), 200);
}

TEST_F(HttpServerTest, TextBodyThatIsNotUtf8Is400) {
  StartServer();
  for (const char* type :
       {"application/json", "application/json; charset=utf-8",
        "application/vnd.api+json", "text/plain",
        "application/x-www-form-urlencoded"}) {
    auto request =
        Request(http::verb::post, "/slack/events", "{\"text\": \"caf\xC3(\"}");
    request.set(http::field::content_type, type);
    absl::StatusOr<Response> response = Fetch(port(), std::move(request));
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->result_int(), 400) << type;
    EXPECT_EQ(ErrorCode(*response), "invalid_utf8") << type;
    EXPECT_THAT(response->body(), HasSubstr("at byte 13")) << type;
  }
  EXPECT_EQ(recorder_.count(), 0u);
  EXPECT_EQ(server_->counters().rejected_malformed, 5u);

  // Binary bodies and valid text go to the handler.
  auto binary =
      Request(http::verb::post, "/slack/events", std::string("\xFF\xD8", 2));
  binary.set(http::field::content_type, "image/jpeg");
  absl::StatusOr<Response> response = Fetch(port(), std::move(binary));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->result_int(), 200);
  auto text =
      Request(http::verb::post, "/slack/events", "{\"text\": \"caf\xC3\xA9\"}");
  text.set(http::field::content_type, "application/json");
  response = Fetch(port(), std::move(text));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->result_int(), 200);
  EXPECT_EQ(recorder_.count(), 2u);
}

// A route that names its body types answers another Content-Type 415 before
// its handler; parameters and case do not matter, and a request without a
// Content-Type is the handler's to read.
TEST_F(HttpServerTest, WrongContentTypeIs415) {
  HttpServer::Options options;
  options.host = "127.0.0.1";
  server_ = std::make_unique<HttpServer>(options);
  server_->Handle("POST", "/json", recorder_.Handler(true, "json"),
                  JsonBodies());
  server_->HandlePrefix("POST", "/form/", recorder_.Handler(true, "form"),
                        FormBodies());
  server_->Handle("POST", "/any", recorder_.Handler(true, "any"));
  ASSERT_TRUE(server_->Start().ok());

  struct Case {
    const char* target;
    const char* content_type;  // nullptr: none
    int status;
  };
  const Case cases[] = {
      {"/json", "application/x-www-form-urlencoded", 415},
      {"/json", "text/plain", 415},
      {"/json", "application/jsonx", 415},
      {"/json", "application/json", 200},
      {"/json", "Application/JSON; charset=utf-8", 200},
      {"/json", nullptr, 200},
      {"/form/a", "application/json", 415},
      {"/form/a", "application/x-www-form-urlencoded", 200},
      {"/any", "image/png", 200},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrCat(c.target, " ",
                              c.content_type ? c.content_type : "(none)"));
    auto request = Request(http::verb::post, c.target, "{}");
    if (c.content_type != nullptr) {
      request.set(http::field::content_type, c.content_type);
    }
    absl::StatusOr<Response> response = Fetch(port(), std::move(request));
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->result_int(), c.status) << response->body();
    if (c.status == 415) {
      EXPECT_EQ(ErrorCode(*response), "unsupported_media_type");
      EXPECT_EQ(std::string((*response)[http::field::accept_post]),
                absl::StrContains(c.target, "json")
                    ? "application/json"
                    : "application/x-www-form-urlencoded");
    }
  }
  EXPECT_EQ(recorder_.count(), 5u);
  EXPECT_EQ(server_->counters().rejected_media_type, 4u);
}

// When accept() fails because the process is out of descriptors, the server
// pauses before it accepts again instead of retrying in a busy loop, and
// serves again once descriptors are free. The soft RLIMIT_NOFILE of this
// test's own process (ctest runs each test in its own) is lowered so that
// the client's socket is the last descriptor it may open.
TEST_F(HttpServerTest, AcceptFailuresBackOffUntilDescriptorsAreFree) {
  // A first server serves one request and is destroyed before descriptors
  // run out, so that what the window below runs has all run before: UBSan's
  // vptr check (scripts/sanitize.sh asan) opens a pipe the first time it
  // meets a type, and with no descriptor free it reports the object as
  // invalid. It did so for the server thread's std::thread state when the
  // thread began only after the limit was lowered (Start() does not wait for
  // its threads), and for a strand's shared state released then. In the
  // window only the accept-failure path runs for the first time.
  StartServer();
  absl::StatusOr<Response> served =
      Fetch(port(), Request(http::verb::get, "/healthz"));
  ASSERT_TRUE(served.ok()) << served.status();
  ASSERT_EQ(served->result_int(), 200);
  server_.reset();
  StartServer();
  struct rlimit saved;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  int next = dup(0);
  ASSERT_GE(next, 0);
  close(next);
  struct rlimit lowered = saved;
  lowered.rlim_cur = static_cast<rlim_t>(next) + 1;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0);
  struct Restore {
    struct rlimit limit;
    ~Restore() { setrlimit(RLIMIT_NOFILE, &limit); }
  } restore{saved};

  // The client's socket takes the last descriptor; the server's accept()
  // then fails with EMFILE, and the connection waits in the backlog.
  int client = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(client, 0);
  struct sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_port = htons(port());
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(
      connect(client, reinterpret_cast<sockaddr*>(&address), sizeof(address)),
      0);
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (server_->counters().accept_failures == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_GE(server_->counters().accept_failures, 1u);
  // Two seconds of failures: 10 ms doubling to 1 s is about 8 attempts; a
  // busy loop makes thousands.
  absl::SleepFor(absl::Seconds(2));
  uint64_t failures = server_->counters().accept_failures;
  EXPECT_LT(failures, 30u);
  EXPECT_EQ(server_->counters().requests, 0u);

  // Descriptors free again: the waiting connection is accepted and served.
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
  const std::string request =
      "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(send(client, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  struct timeval timeout = {15, 0};
  setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  std::string answer;
  char chunk[512];
  for (;;) {
    ssize_t n = recv(client, chunk, sizeof(chunk), 0);
    if (n <= 0) break;
    answer.append(chunk, static_cast<size_t>(n));
  }
  close(client);
  EXPECT_THAT(answer, ::testing::StartsWith("HTTP/1.1 200"));
  EXPECT_EQ(server_->counters().requests, 1u);
}

TEST(JsonErrorBodyTest, ReplacesBytesThatAreNotUtf8) {
  EXPECT_EQ(JsonErrorBody("bad", "x\xFFy"),
            "{\"error\":{\"code\":\"bad\",\"message\":\"x\xEF\xBF\xBDy\"}}");
}

TEST_F(HttpServerTest, StopAnswersARequestAnsweredWithinTheGrace) {
  HttpServer::Options options;
  options.stop_grace = absl::Seconds(5);
  StartServer(options);
  std::optional<absl::StatusOr<Response>> response;
  std::thread client([&] {
    response = Fetch(port(), Request(http::verb::post, "/later", "{}"));
  });
  ASSERT_TRUE(recorder_.WaitFor(1));
  std::thread answerer([&] {
    // Answer once Stop() has begun (new connections are refused then).
    absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (TestConnection(port()).connected() && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    EXPECT_TRUE(recorder_.responder(0)->Respond(200, "text/plain", "late ok"));
  });
  absl::Time start = absl::Now();
  server_->Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(4));
  answerer.join();
  client.join();
  ASSERT_TRUE(response->ok()) << response->status();
  EXPECT_EQ((*response)->body(), "late ok");
  EXPECT_FALSE((*response)->keep_alive());
  EXPECT_EQ(server_->counters().aborted, 0u);
}

TEST_F(HttpServerTest, StopAbortsAPendingRequestAfterTheGrace) {
  HttpServer::Options options;
  options.stop_grace = absl::Milliseconds(100);
  StartServer(options);
  // An idle keep-alive connection is closed by Stop() too.
  TestConnection idle(port());
  ASSERT_TRUE(idle.connected());
  ASSERT_TRUE(idle.RoundTrip(Request(http::verb::get, "/healthz")).ok());

  std::optional<absl::StatusOr<Response>> response;
  std::thread client([&] {
    response = Fetch(port(), Request(http::verb::post, "/later", "{}"));
  });
  ASSERT_TRUE(recorder_.WaitFor(1));
  absl::Time start = absl::Now();
  server_->Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  client.join();
  ASSERT_TRUE(response.has_value());
  EXPECT_FALSE(response->ok());  // Closed without an answer.
  EXPECT_TRUE(idle.WaitClosed());
  EXPECT_FALSE(recorder_.responder(0)->Respond(200, "text/plain", "too late"));
  EXPECT_EQ(server_->counters().aborted, 1u);
  // Nothing listens any more.
  EXPECT_FALSE(TestConnection(port()).connected());
  server_->Stop();  // Idempotent.
}

TEST_F(HttpServerTest, SlowHeaderIsDisconnectedAfterTheHeaderTimeout) {
  HttpServer::Options options;
  options.header_timeout = absl::Seconds(1);
  options.io_timeout = absl::Seconds(60);
  StartServer(options);
  // A slowloris client: part of a header, then nothing.
  TestConnection slow(port());
  ASSERT_TRUE(slow.connected());
  ASSERT_FALSE(slow.WriteRaw("POST /slack/events HTTP/1.1\r\nHost: x\r\n"));
  // An idle keep-alive connection after one answered request.
  TestConnection idle(port());
  ASSERT_TRUE(idle.connected());
  absl::StatusOr<Response> first =
      idle.RoundTrip(Request(http::verb::get, "/healthz"));
  ASSERT_TRUE(first.ok()) << first.status();
  // Both are closed well before io_timeout (WaitClosed gives up after 5 s).
  EXPECT_TRUE(slow.WaitClosed());
  EXPECT_TRUE(idle.WaitClosed());
  // The socket's own timer closes it; the server counts the timeout when its
  // read ends, a moment later.
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (server_->counters().header_timeouts < 2 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(server_->counters().header_timeouts, 2u);
  EXPECT_EQ(recorder_.count(), 0u);
}

TEST_F(HttpServerTest, BodyGetsTheIoTimeoutAfterTheHeader) {
  HttpServer::Options options;
  options.header_timeout = absl::Seconds(1);
  options.io_timeout = absl::Seconds(60);
  StartServer(options);
  TestConnection conn(port());
  ASSERT_TRUE(conn.connected());
  ASSERT_FALSE(
      conn.WriteRaw("POST /slack/events HTTP/1.1\r\nHost: x\r\n"
                    "Content-Type: text/plain\r\nContent-Length: 4\r\n\r\nab"));
  absl::SleepFor(absl::Seconds(2));  // Longer than the header timeout.
  ASSERT_FALSE(conn.WriteRaw("cd"));
  absl::StatusOr<Response> response = conn.Read();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->result_int(), 200);
  ASSERT_TRUE(recorder_.WaitFor(1));
  EXPECT_EQ(recorder_.request(0).body, "abcd");
}

TEST_F(HttpServerTest, ConnectionsOverMaxConnectionsAreClosed) {
  HttpServer::Options options;
  options.max_connections = 3;
  StartServer(options);
  std::vector<std::unique_ptr<TestConnection>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(std::make_unique<TestConnection>(port()));
    ASSERT_TRUE(held.back()->connected());
    // A request answered proves the server has registered this connection.
    absl::StatusOr<Response> r =
        held.back()->RoundTrip(Request(http::verb::get, "/healthz"));
    ASSERT_TRUE(r.ok()) << r.status();
  }
  TestConnection extra(port());
  ASSERT_TRUE(extra.connected());  // The kernel accepts; the server closes.
  EXPECT_TRUE(extra.WaitClosed());
  EXPECT_EQ(server_->counters().refused_connections, 1u);
  // Once one held connection closes, a new one is served again.
  held.pop_back();
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  absl::StatusOr<Response> again = absl::UnavailableError("not tried");
  while (absl::Now() < deadline) {
    again = Fetch(port(), Request(http::verb::get, "/healthz"));
    if (again.ok()) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->result_int(), 200);
}

TEST_F(HttpServerTest, ResponderOutlivesTheServer) {
  HttpServer::Options options;
  options.stop_grace = absl::Milliseconds(50);
  StartServer(options);
  std::thread client(
      [&] { (void)Fetch(port(), Request(http::verb::post, "/later", "{}")); });
  ASSERT_TRUE(recorder_.WaitFor(1));
  std::shared_ptr<Responder> responder = recorder_.responder(0);
  server_.reset();
  client.join();
  EXPECT_FALSE(responder->Respond(200, "text/plain", "after"));
}

TEST(WebhookServerStartTest, BadHostAndBusyPort) {
  HttpServer::Options options;
  options.host = "no-such-host.invalid";
  HttpServer bad(options);
  EXPECT_FALSE(bad.Start().ok());

  HttpServer first(HttpServer::Options{});
  ASSERT_TRUE(first.Start().ok());
  EXPECT_EQ(first.Start().code(), absl::StatusCode::kFailedPrecondition);
  HttpServer::Options same;
  same.port = first.port();
  HttpServer second(same);
  absl::Status status = second.Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
}

}  // namespace
}  // namespace imbridge
