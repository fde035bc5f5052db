// The `http:` block's limits: what is refused (naming the field), and what
// reaches HttpServer::Options.
#include "common/http/http_server_config.h"

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge {
namespace {

using ::testing::HasSubstr;

TEST(HttpServerLimitsTest, ZerosAreTheDefaultsAndBoundsAreAccepted) {
  v1::HttpServerOptions http;
  EXPECT_TRUE(ValidateHttpServerLimits("a.yaml", http).ok());
  HttpServer::Options options;
  ApplyHttpServerLimits(http, &options);
  EXPECT_EQ(options.max_body_bytes, size_t{1} << 20);
  EXPECT_EQ(options.header_timeout, absl::Seconds(10));
  EXPECT_EQ(options.max_connections, 4096u);

  http.set_max_body_bytes(64u << 20);
  http.set_header_timeout_ms(100);
  http.set_max_connections(65536);
  EXPECT_TRUE(ValidateHttpServerLimits("a.yaml", http).ok());
  http.set_header_timeout_ms(300000);
  EXPECT_TRUE(ValidateHttpServerLimits("a.yaml", http).ok());
}

TEST(HttpServerLimitsTest, TheLimitsReachTheServerOptions) {
  v1::HttpServerOptions http;
  http.set_max_body_bytes(2048);
  http.set_header_timeout_ms(2500);
  http.set_max_connections(16);
  HttpServer::Options options;
  options.request_timeout = absl::Seconds(3);
  ApplyHttpServerLimits(http, &options);
  EXPECT_EQ(options.max_body_bytes, 2048u);
  EXPECT_EQ(options.header_timeout, absl::Milliseconds(2500));
  EXPECT_EQ(options.max_connections, 16u);
  EXPECT_EQ(options.request_timeout, absl::Seconds(3));  // Not a limit here.
}

TEST(HttpServerLimitsTest, OutOfRangeValuesNameTheirField) {
  struct Case {
    uint64_t body;
    uint32_t header_ms;
    uint32_t connections;
    const char* field;
  };
  for (const Case& c : {Case{(64u << 20) + 1, 0, 0, "http.max_body_bytes"},
                        Case{0, 99, 0, "http.header_timeout_ms"},
                        Case{0, 300001, 0, "http.header_timeout_ms"},
                        Case{0, 0, 65537, "http.max_connections"}}) {
    v1::HttpServerOptions http;
    http.set_max_body_bytes(c.body);
    http.set_header_timeout_ms(c.header_ms);
    http.set_max_connections(c.connections);
    absl::Status s = ValidateHttpServerLimits("a.yaml", http);
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << c.field;
    EXPECT_THAT(std::string(s.message()),
                HasSubstr(std::string("a.yaml: ") + c.field + ": must be"));
  }
}

}  // namespace
}  // namespace imbridge
