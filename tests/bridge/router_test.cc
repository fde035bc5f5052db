#include "bridge/router.h"

#include <stdlib.h>

#include <string>
#include <thread>
#include <vector>

#include "bridge/router_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::bridge {
namespace {

// The router's `http:` block has the adapters' limits and rules
// (common/http/http_server_config.h): a bad one stops it, naming the field.
TEST(RouterConfigTest, HttpLimitsAreCheckedLikeTheAdapters) {
  v1::RouterConfig config;
  config.set_data_dir(::testing::TempDir());
  v1::AdapterCredential* adapter = config.add_adapters();
  adapter->set_name("test");
  adapter->set_token("router-test-token");
  config.mutable_http()->set_header_timeout_ms(50);
  absl::Status s = ValidateRouterConfig("router.yaml", &config);
  EXPECT_THAT(std::string(s.message()),
              ::testing::HasSubstr("router.yaml: http.header_timeout_ms"));
  config.mutable_http()->set_header_timeout_ms(3000);
  config.mutable_http()->set_max_connections(100000);
  s = ValidateRouterConfig("router.yaml", &config);
  EXPECT_THAT(std::string(s.message()),
              ::testing::HasSubstr("router.yaml: http.max_connections"));
  config.mutable_http()->set_max_connections(64);
  s = ValidateRouterConfig("router.yaml", &config);
  EXPECT_TRUE(s.ok()) << s;
}

// Shutdown() from several threads at once (a signal thread and the
// destructor): each call returns once the router stopped, none races another
// (the TSan build checks) or joins its threads twice.
TEST(RouterShutdownTest, ConcurrentShutdownsAllReturnOnceStopped) {
  std::string tmpl = ::testing::TempDir() + "/router-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
  v1::RouterConfig config;
  config.set_listen("127.0.0.1:0");
  config.set_data_dir(tmpl);
  config.mutable_http()->set_listen("127.0.0.1:0");
  v1::AdapterCredential* adapter = config.add_adapters();
  adapter->set_name("test");
  adapter->set_token("router-test-token");
  absl::Status valid = ValidateRouterConfig("test", &config);
  ASSERT_TRUE(valid.ok()) << valid;
  absl::StatusOr<std::unique_ptr<Router>> router =
      Router::Start(std::move(config));
  ASSERT_TRUE(router.ok()) << router.status();
  ASSERT_GT((*router)->http_port(), 0);

  // Each caller notes the HTTP port it sees once its Shutdown() returned:
  // 0 when the router really stopped.
  std::vector<int> ports_after(4, -1);
  std::vector<std::thread> callers;
  for (int i = 0; i < 4; ++i) {
    callers.emplace_back([&router, &ports_after, i] {
      (*router)->Shutdown();
      ports_after[i] = (*router)->http_port();
    });
  }
  for (std::thread& t : callers) t.join();
  EXPECT_THAT(ports_after, ::testing::Each(0));
  router->reset();  // The destructor's Shutdown() is a no-op now.
}

}  // namespace
}  // namespace imbridge::bridge
