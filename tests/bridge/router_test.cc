#include "bridge/router.h"

#include <stdlib.h>

#include <atomic>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bridge/router_config.h"
#include "bridge/router_service.h"
#include "common/http/http_client.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "imbridge/v1/admin.grpc.pb.h"

namespace imbridge::bridge {
namespace {

// Sets the scalar fields of `m` (not its sub-messages) to values made from
// `n`, so that entries of a frame are told apart.
void FillScalars(google::protobuf::Message* m, int n) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Reflection* r = m->GetReflection();
  const google::protobuf::Descriptor* d = m->GetDescriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->is_repeated() || f->containing_oneof() != nullptr) continue;
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        r->SetString(m, f, "s" + std::to_string(n + i));
        break;
      case FieldDescriptor::CPPTYPE_UINT64:
        r->SetUInt64(m, f, static_cast<uint64_t>(n + i));
        break;
      case FieldDescriptor::CPPTYPE_UINT32:
        r->SetUInt32(m, f, static_cast<uint32_t>(n + i));
        break;
      case FieldDescriptor::CPPTYPE_INT32:
        r->SetInt32(m, f, n + i);
        break;
      case FieldDescriptor::CPPTYPE_INT64:
        r->SetInt64(m, f, n + i);
        break;
      default:
        break;
    }
  }
}

// A frame with every field of RouterFrame set, and two entries in each
// repeated one, numbered from `n`. Set through reflection: a field added to
// RouterFrame later is in it too.
v1::RouterFrame FullFrame(int n) {
  v1::RouterFrame frame;
  const google::protobuf::Reflection* r = frame.GetReflection();
  const google::protobuf::Descriptor* d = frame.GetDescriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* f = d->field(i);
    if (f->is_repeated()) {
      FillScalars(r->AddMessage(&frame, f), n + 10 * i);
      FillScalars(r->AddMessage(&frame, f), n + 10 * i + 1);
    } else {
      FillScalars(r->MutableMessage(&frame, f), n + 10 * i);
    }
  }
  return frame;
}

// The Attach reactor merges the frames queued during a write with
// AppendFrame: every entry of every field arrives, in order, and the
// entries are moved, not copied.
TEST(AppendFrameTest, MovesEveryEntryAsMergeFromWouldCopyIt) {
  for (bool to_has_entries : {false, true}) {
    SCOPED_TRACE(to_has_entries);
    v1::RouterFrame to;
    if (to_has_entries) {
      to = FullFrame(1000);
      to.clear_welcome();  // only a stream's first frame has one
    }
    v1::RouterFrame from = FullFrame(1);
    v1::RouterFrame expected = to;
    expected.MergeFrom(from);
    const v1::Delivery* first_delivery = &from.deliveries(0);
    const v1::PublishAck* last_ack = &from.publish_acks(1);

    AppendFrame(&from, &to);

    EXPECT_TRUE(
        google::protobuf::util::MessageDifferencer::Equals(to, expected))
        << "got " << to.DebugString() << "\nwant " << expected.DebugString();
    EXPECT_EQ(from.ByteSizeLong(), 0u);
    const int delivered_before = to_has_entries ? 2 : 0;
    EXPECT_EQ(&to.deliveries(delivered_before), first_delivery);
    EXPECT_EQ(&to.publish_acks(delivered_before + 1), last_ack);
  }
}

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

// A router config for an in-process router: gRPC and HTTP on loopback
// ports picked by the system, a fresh data_dir, one adapter credential.
v1::RouterConfig LoopbackRouterConfig() {
  std::string dir = ::testing::TempDir() + "/router-XXXXXX";
  EXPECT_NE(mkdtemp(dir.data()), nullptr);
  v1::RouterConfig config;
  config.set_listen("127.0.0.1:0");
  config.set_data_dir(dir);
  config.mutable_http()->set_listen("127.0.0.1:0");
  v1::AdapterCredential* adapter = config.add_adapters();
  adapter->set_name("test");
  adapter->set_token("router-test-token");
  return config;
}

// Shutdown() from several threads at once (a signal thread and the
// destructor): each call returns once the router stopped, none races another
// (the TSan build checks) or joins its threads twice.
TEST(RouterShutdownTest, ConcurrentShutdownsAllReturnOnceStopped) {
  v1::RouterConfig config = LoopbackRouterConfig();
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

// The port file holds the number and a newline; a directory that is not
// there is an error naming the path (Router::Start makes data_dir first).
TEST(WritePortFileTest, WritesTheNumberOrNamesThePath) {
  std::string dir = ::testing::TempDir() + "/ports-XXXXXX";
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  ASSERT_TRUE(WritePortFile(dir + "/router.port", 4242).ok());
  std::ifstream in(dir + "/router.port");
  std::string content((std::istreambuf_iterator<char>(in)),
                      std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "4242\n");
  absl::Status missing = WritePortFile(dir + "/gone/router.port", 1);
  EXPECT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.message()),
              ::testing::HasSubstr(dir + "/gone/router.port"));
}

// /metrics lists a series for every linked channel, read from the link
// table while links change through the Admin API (each change swaps the
// table and frees the old one). Before, the scrape iterated the links of a
// temporary's table: a change during a scrape made it read freed memory
// (the ASan build reported a heap-use-after-free; the lease thread of a
// router on PostgreSQL did the same at every record change).
TEST(RouterLinksTest, ScrapesWhileLinksChangeReadALiveTable) {
  v1::RouterConfig config = LoopbackRouterConfig();
  config.set_admin_token("admin-token-0123456789");
  // Enough links that reading them takes a while.
  constexpr int kConfigLinks = 300;
  for (int i = 0; i < kConfigLinks; ++i) {
    v1::Link* link = config.add_links();
    link->set_name(absl::StrCat("config-", i));
    for (const char* side : {"alpha", "beta"}) {
      v1::LinkMember* m = link->add_members();
      m->set_platform(side);
      m->set_account("a");
      m->set_chat_id(absl::StrCat(side, "-", i));
    }
  }
  absl::Status valid = ValidateRouterConfig("test", &config);
  ASSERT_TRUE(valid.ok()) << valid;
  absl::StatusOr<std::unique_ptr<Router>> router =
      Router::Start(std::move(config));
  ASSERT_TRUE(router.ok()) << router.status();

  std::atomic<bool> done{false};
  std::atomic<int> scrapes{0};
  std::atomic<int> bad_scrapes{0};
  std::thread scraper([&] {
    HttpClient http;
    const std::string url =
        absl::StrCat("http://127.0.0.1:", (*router)->http_port(), "/metrics");
    while (!done.load()) {
      absl::StatusOr<HttpResponse> r = http.Get(url);
      const bool good =
          r.ok() && r->status == 200 &&
          r->body.find("target=\"beta/a/beta-299\"") != std::string::npos;
      (good ? scrapes : bad_scrapes).fetch_add(1);
    }
  });

  auto admin = v1::Admin::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*router)->port()),
                          grpc::InsecureChannelCredentials()));
  auto call = [](grpc::ClientContext* ctx) {
    ctx->AddMetadata("authorization", "Bearer admin-token-0123456789");
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::seconds(20));
  };
  constexpr int kChanges = 60;
  for (int i = 0; i < kChanges; ++i) {
    v1::CreateLinkRequest create;
    create.mutable_link()->set_name("runtime");
    for (const char* side : {"alpha", "beta"}) {
      v1::LinkMember* m = create.mutable_link()->add_members();
      m->set_platform(side);
      m->set_account("a");
      m->set_chat_id(absl::StrCat(side, "-runtime-", i));
    }
    grpc::ClientContext c1;
    call(&c1);
    v1::LinkInfo made;
    grpc::Status s = admin->CreateLink(&c1, create, &made);
    if (!s.ok()) {
      ADD_FAILURE() << "CreateLink: " << s.error_message();
      break;
    }
    grpc::ClientContext c2;
    call(&c2);
    v1::DeleteLinkRequest del;
    del.set_name("runtime");
    v1::DeleteLinkResponse deleted;
    s = admin->DeleteLink(&c2, del, &deleted);
    if (!s.ok()) {
      ADD_FAILURE() << "DeleteLink: " << s.error_message();
      break;
    }
  }
  // At least a few scrapes overlap the changes.
  while (scrapes.load() + bad_scrapes.load() < 5)
    absl::SleepFor(absl::Milliseconds(10));
  done.store(true);
  scraper.join();
  EXPECT_EQ(bad_scrapes.load(), 0);
  EXPECT_GE(scrapes.load(), 5);
  router->reset();
}

}  // namespace
}  // namespace imbridge::bridge
