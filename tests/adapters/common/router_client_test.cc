#include "adapters/common/router_client.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "adapters/common/delivery_handler.h"
#include "adapters/common/delivery_journal.h"
#include "common/router_keepalive.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "imbridge/v1/router.grpc.pb.h"

namespace imbridge::adapters {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr absl::Duration kWait = absl::Seconds(5);
constexpr char kToken[] = "secret-token-4f2a";

// What the fake router saw on one Attach stream.
struct Session {
  std::string authorization;
  v1::Hello hello;
  std::vector<v1::Publish> publishes;
  std::vector<v1::DeliveryResult> results;

  std::vector<uint64_t> PublishSeqs() const {
    std::vector<uint64_t> seqs;
    for (const v1::Publish& p : publishes) seqs.push_back(p.seq());
    return seqs;
  }
  std::vector<std::string> PublishKeys() const {
    std::vector<std::string> keys;
    for (const v1::Publish& p : publishes) keys.push_back(p.event().key());
    return keys;
  }
  // The last result for delivery `id`, or null.
  const v1::DeliveryResult* Result(uint64_t id) const {
    for (auto it = results.rbegin(); it != results.rend(); ++it) {
      if (it->id() == id) return &*it;
    }
    return nullptr;
  }
  int ResultCount(uint64_t id) const {
    return static_cast<int>(std::count_if(
        results.begin(), results.end(),
        [id](const v1::DeliveryResult& r) { return r.id() == id; }));
  }
};

struct StoredBlob {
  v1::BlobMeta meta;
  std::string data;
};

// Everything the fake router observed.
struct RouterState {
  int rejected = 0;
  int hellos_without_welcome = 0;
  std::vector<Session> sessions;
  absl::flat_hash_map<std::string, StoredBlob> blobs;
  std::vector<size_t> last_put_chunk_sizes;
  int last_put_chunks_with_meta = 0;
  bool last_put_first_has_meta = false;
  bool get_blob_held = false;
};

// An in-process Router service: checks the token, records what adapters send
// and lets the test push frames down the current Attach stream.
class FakeRouter final : public v1::Router::Service {
 public:
  explicit FakeRouter(std::string token = kToken) : token_(std::move(token)) {}

  void set_auto_ack(bool on) {
    absl::MutexLock lock(&mu_);
    auto_ack_ = on;
  }
  void set_ack(v1::PublishAck::Outcome outcome, std::string detail) {
    absl::MutexLock lock(&mu_);
    ack_outcome_ = outcome;
    ack_detail_ = std::move(detail);
  }
  void set_send_welcome(bool on) {
    absl::MutexLock lock(&mu_);
    send_welcome_ = on;
  }
  void set_max_blob_bytes(size_t max) {
    absl::MutexLock lock(&mu_);
    max_blob_bytes_ = max;
  }
  void set_hold_get_blob(bool on) {
    absl::MutexLock lock(&mu_);
    hold_get_blob_ = on;
  }

  // Writes `frame` on the current stream; false if there is none.
  bool Send(const v1::RouterFrame& frame) {
    absl::MutexLock lock(&write_mu_);
    return stream_ != nullptr && stream_->Write(frame);
  }

  bool SendDeliveries(const std::vector<v1::Delivery>& deliveries) {
    v1::RouterFrame frame;
    for (const v1::Delivery& d : deliveries) *frame.add_deliveries() = d;
    return Send(frame);
  }

  // Ends the current stream with an error (the client sees CANCELLED).
  void DropStream() {
    absl::MutexLock lock(&write_mu_);
    if (context_ != nullptr) context_->TryCancel();
  }

  template <typename Pred>
  bool WaitFor(Pred pred, absl::Duration timeout = kWait) {
    absl::MutexLock lock(&mu_);
    auto cond = [&]()
                    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pred(state_); };
    return mu_.AwaitWithTimeout(absl::Condition(&cond), timeout);
  }

  RouterState Snapshot() {
    absl::MutexLock lock(&mu_);
    return state_;
  }

  grpc::Status Attach(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::RouterFrame, v1::AdapterFrame>* stream)
      override {
    std::string authorization = Authorization(*context);
    if (authorization != absl::StrCat("Bearer ", token_)) {
      absl::MutexLock lock(&mu_);
      ++state_.rejected;
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "bad token");
    }
    v1::AdapterFrame frame;
    if (!stream->Read(&frame) || !frame.has_hello()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no hello");
    }
    bool welcome;
    {
      absl::MutexLock lock(&mu_);
      welcome = send_welcome_;
      if (!welcome) ++state_.hellos_without_welcome;
    }
    if (!welcome) {
      while (stream->Read(&frame)) {
      }
      return grpc::Status::OK;
    }
    size_t session;
    {
      absl::MutexLock write_lock(&write_mu_);
      {
        absl::MutexLock lock(&mu_);
        state_.sessions.push_back({authorization, frame.hello(), {}, {}});
        session = state_.sessions.size() - 1;
      }
      stream_ = stream;
      context_ = context;
      v1::RouterFrame welcome_frame;
      welcome_frame.mutable_welcome()->set_router_id("fake-router");
      v1::ChannelRef* channel = welcome_frame.mutable_welcome()->add_channels();
      channel->set_platform("slack");
      channel->set_account("main");
      channel->set_chat_id("C1");
      stream->Write(welcome_frame);
    }
    while (stream->Read(&frame)) {
      v1::RouterFrame acks;
      {
        absl::MutexLock lock(&mu_);
        Session& s = state_.sessions[session];
        for (const v1::Publish& p : frame.publishes()) {
          s.publishes.push_back(p);
          if (!auto_ack_) continue;
          v1::PublishAck* ack = acks.add_publish_acks();
          ack->set_seq(p.seq());
          ack->set_outcome(ack_outcome_);
          ack->set_detail(ack_detail_);
        }
        for (const v1::DeliveryResult& r : frame.results()) {
          s.results.push_back(r);
        }
      }
      if (acks.publish_acks_size() > 0) {
        absl::MutexLock write_lock(&write_mu_);
        stream->Write(acks);
      }
    }
    absl::MutexLock write_lock(&write_mu_);
    if (stream_ == stream) {
      stream_ = nullptr;
      context_ = nullptr;
    }
    return grpc::Status::OK;
  }

  grpc::Status PutBlob(grpc::ServerContext* context,
                       grpc::ServerReader<v1::BlobChunk>* reader,
                       v1::BlobRef* ref) override {
    if (Authorization(*context) != absl::StrCat("Bearer ", token_)) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "bad token");
    }
    size_t max;
    {
      absl::MutexLock lock(&mu_);
      max = max_blob_bytes_;
    }
    StoredBlob blob;
    std::vector<size_t> sizes;
    int with_meta = 0;
    bool first_has_meta = false;
    v1::BlobChunk chunk;
    while (reader->Read(&chunk)) {
      if (chunk.has_meta()) {
        ++with_meta;
        if (sizes.empty()) {
          first_has_meta = true;
          blob.meta = chunk.meta();
        }
      }
      sizes.push_back(chunk.data().size());
      blob.data += chunk.data();
      if (blob.data.size() > max) {
        return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                            absl::StrCat("blob exceeds ", max, " bytes"));
      }
    }
    absl::MutexLock lock(&mu_);
    std::string id = absl::StrCat("blob-", state_.blobs.size() + 1);
    ref->set_blob_id(id);
    ref->set_size(blob.data.size());
    state_.blobs[id] = std::move(blob);
    state_.last_put_chunk_sizes = std::move(sizes);
    state_.last_put_chunks_with_meta = with_meta;
    state_.last_put_first_has_meta = first_has_meta;
    return grpc::Status::OK;
  }

  grpc::Status GetBlob(grpc::ServerContext* context, const v1::BlobRef* request,
                       grpc::ServerWriter<v1::BlobChunk>* writer) override {
    StoredBlob blob;
    bool hold;
    {
      absl::MutexLock lock(&mu_);
      hold = hold_get_blob_;
      state_.get_blob_held = hold;
    }
    if (hold) {
      // Held open until the client goes away (bounded for safety).
      absl::Time deadline = absl::Now() + absl::Seconds(10);
      while (!context->IsCancelled() && absl::Now() < deadline) {
        absl::SleepFor(absl::Milliseconds(2));
      }
      return grpc::Status(grpc::StatusCode::ABORTED, "held");
    }
    {
      absl::MutexLock lock(&mu_);
      auto it = state_.blobs.find(request->blob_id());
      if (it == state_.blobs.end()) {
        return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such blob");
      }
      blob = it->second;
    }
    constexpr size_t kChunk = 300000;
    size_t offset = 0;
    do {
      v1::BlobChunk chunk;
      if (offset == 0) *chunk.mutable_meta() = blob.meta;
      chunk.set_data(blob.data.substr(offset, kChunk));
      offset += kChunk;
      if (!writer->Write(chunk)) break;
    } while (offset < blob.data.size());
    return grpc::Status::OK;
  }

 private:
  static std::string Authorization(const grpc::ServerContext& context) {
    auto it = context.client_metadata().find("authorization");
    if (it == context.client_metadata().end()) return "";
    return std::string(it->second.data(), it->second.size());
  }

  const std::string token_;

  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  grpc::ServerReaderWriter<v1::RouterFrame, v1::AdapterFrame>* stream_
      ABSL_GUARDED_BY(write_mu_) = nullptr;
  grpc::ServerContext* context_ ABSL_GUARDED_BY(write_mu_) = nullptr;

  absl::Mutex mu_;
  bool auto_ack_ ABSL_GUARDED_BY(mu_) = true;
  v1::PublishAck::Outcome ack_outcome_ ABSL_GUARDED_BY(mu_) =
      v1::PublishAck::ACCEPTED;
  std::string ack_detail_ ABSL_GUARDED_BY(mu_);
  bool send_welcome_ ABSL_GUARDED_BY(mu_) = true;
  size_t max_blob_bytes_ ABSL_GUARDED_BY(mu_) = 64 << 20;
  bool hold_get_blob_ ABSL_GUARDED_BY(mu_) = false;
  RouterState state_ ABSL_GUARDED_BY(mu_);
};

// A gRPC server on 127.0.0.1 serving `service`; port 0 picks a free port.
class TestServer {
 public:
  explicit TestServer(grpc::Service* service, int port = 0) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort(absl::StrCat("127.0.0.1:", port),
                             grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(service);
    AcceptRouterKeepalive(builder);
    server_ = builder.BuildAndStart();
  }
  ~TestServer() { Shutdown(); }

  // Stops at once; calls in progress are cancelled.
  void Shutdown() {
    if (server_ == nullptr) return;
    server_->Shutdown(std::chrono::system_clock::now());
    server_->Wait();
    server_.reset();
  }

  bool ok() const { return server_ != nullptr && port_ > 0; }
  int port() const { return port_; }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

 private:
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

// A port nothing listens on (it was just released).
int UnusedPort() {
  FakeRouter fake;
  TestServer server(&fake);
  return server.port();
}

RouterClient::Options TestOptions(const std::string& address) {
  RouterClient::Options options;
  options.address = address;
  options.token = kToken;
  options.adapter_name = "slack-test";
  options.platform = "slack";
  options.accounts = {"main", "other"};
  options.capabilities = {"edits", "threads"};
  options.max_in_flight = 7;
  options.delivery_threads = 4;
  options.initial_backoff = absl::Milliseconds(20);
  options.max_backoff = absl::Milliseconds(200);
  return options;
}

bool WaitUntil(const std::function<bool()>& pred,
               absl::Duration timeout = kWait) {
  absl::Time deadline = absl::Now() + timeout;
  while (!pred()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

v1::Event MakeEvent(const std::string& key) {
  v1::Event event;
  event.set_key(key);
  event.mutable_channel()->set_platform("slack");
  event.mutable_channel()->set_account("main");
  event.mutable_channel()->set_chat_id("C1");
  event.mutable_posted();
  return event;
}

// MakeEvent(key) posted in chat `chat_id` instead of C1.
v1::Event EventInChat(const std::string& key, const std::string& chat_id) {
  v1::Event event = MakeEvent(key);
  event.mutable_channel()->set_chat_id(chat_id);
  return event;
}

v1::Delivery MakeDelivery(uint64_t id, const std::string& chat,
                          const std::string& thread = "",
                          const std::string& key = "") {
  v1::Delivery delivery;
  delivery.set_id(id);
  delivery.mutable_target()->set_platform("slack");
  delivery.mutable_target()->set_account("main");
  delivery.mutable_target()->set_chat_id(chat);
  delivery.mutable_target()->set_thread_id(thread);
  delivery.set_idempotency_key(key.empty() ? absl::StrCat("key-", id) : key);
  delivery.set_attempt(1);
  *delivery.mutable_event() = MakeEvent(absl::StrCat("origin-", id));
  return delivery;
}

// Records calls and answers with `script` (default: success "native-<id>").
class ScriptedHandler : public DeliveryHandler {
 public:
  using Script = std::function<absl::StatusOr<std::vector<std::string>>(
      const v1::Delivery&)>;

  explicit ScriptedHandler(Script script = nullptr)
      : script_(std::move(script)) {}

  absl::StatusOr<std::vector<std::string>> Deliver(
      const v1::Delivery& delivery) override {
    {
      absl::MutexLock lock(&mu_);
      calls_[delivery.target().chat_id()].push_back(delivery.id());
      ++total_;
    }
    if (script_) return script_(delivery);
    return std::vector<std::string>{absl::StrCat("native-", delivery.id())};
  }

  std::vector<uint64_t> Calls(const std::string& chat) {
    absl::MutexLock lock(&mu_);
    return calls_[chat];
  }
  int total() {
    absl::MutexLock lock(&mu_);
    return total_;
  }

 private:
  Script script_;
  absl::Mutex mu_;
  std::map<std::string, std::vector<uint64_t>> calls_ ABSL_GUARDED_BY(mu_);
  int total_ ABSL_GUARDED_BY(mu_) = 0;
};

// Collects publish acknowledgements.
class AckLog {
 public:
  RouterClient::PublishCallback Callback() {
    return [this](const v1::PublishAck& ack) {
      absl::MutexLock lock(&mu_);
      acks_.push_back(ack);
    };
  }
  bool WaitForCount(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return acks_.size() >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), kWait);
  }
  std::vector<uint64_t> Seqs() {
    absl::MutexLock lock(&mu_);
    std::vector<uint64_t> seqs;
    for (const v1::PublishAck& ack : acks_) seqs.push_back(ack.seq());
    return seqs;
  }
  std::vector<v1::PublishAck> Acks() {
    absl::MutexLock lock(&mu_);
    return acks_;
  }

 private:
  absl::Mutex mu_;
  std::vector<v1::PublishAck> acks_ ABSL_GUARDED_BY(mu_);
};

// Aborts a test that hangs (for example in a Stop() that never returns)
// instead of letting it block the suite.
class RouterClientTest : public testing::Test {
 protected:
  RouterClientTest()
      : watchdog_([this] {
          if (!done_.WaitForNotificationWithTimeout(absl::Seconds(15))) {
            std::fprintf(stderr, "test hung for 15 s\n");
            std::abort();
          }
        }) {}
  ~RouterClientTest() override {
    done_.Notify();
    watchdog_.join();
  }

 private:
  absl::Notification done_;
  std::thread watchdog_;
};

TEST_F(RouterClientTest, AttachesWithHelloAndToken) {
  FakeRouter fake;
  TestServer server(&fake);
  ASSERT_TRUE(server.ok());
  RouterClient client(TestOptions(server.address()), nullptr);
  EXPECT_FALSE(client.attached());
  client.Start();
  ASSERT_TRUE(WaitUntil([&] { return client.attached(); }));

  RouterState state = fake.Snapshot();
  ASSERT_EQ(state.sessions.size(), 1u);
  const Session& session = state.sessions[0];
  EXPECT_EQ(session.authorization, absl::StrCat("Bearer ", kToken));
  EXPECT_EQ(session.hello.adapter_name(), "slack-test");
  EXPECT_EQ(session.hello.platform(), "slack");
  EXPECT_THAT(session.hello.accounts(), ElementsAre("main", "other"));
  EXPECT_THAT(session.hello.capabilities(), ElementsAre("edits", "threads"));
  EXPECT_EQ(session.hello.max_in_flight(), 7u);
  EXPECT_EQ(client.welcome().router_id(), "fake-router");
  ASSERT_EQ(client.welcome().channels_size(), 1);
  EXPECT_EQ(client.welcome().channels(0).chat_id(), "C1");
}

TEST_F(RouterClientTest, WrongTokenIsNotAttachedAndKeepsRetrying) {
  FakeRouter fake("the-right-token");
  TestServer server(&fake);
  ASSERT_TRUE(server.ok());
  testing::internal::CaptureStderr();
  {
    RouterClient client(TestOptions(server.address()), nullptr);
    client.Start();
    EXPECT_TRUE(
        fake.WaitFor([](const RouterState& s) { return s.rejected >= 3; }));
    EXPECT_FALSE(client.attached());
  }
  std::string log = testing::internal::GetCapturedStderr();
  EXPECT_TRUE(fake.Snapshot().sessions.empty());
  EXPECT_THAT(log, HasSubstr("rejected the adapter's token"));
  EXPECT_THAT(log, Not(HasSubstr(kToken)));
}

TEST_F(RouterClientTest, PublishCallbackGetsTheAckOutcome) {
  AckLog acks;
  FakeRouter fake;
  fake.set_ack(v1::PublishAck::DUPLICATE, "seen before");
  TestServer server(&fake);
  RouterClient client(TestOptions(server.address()), nullptr);
  client.Start();

  ASSERT_TRUE(client.Publish(MakeEvent("ev-1"), acks.Callback()).ok());
  ASSERT_TRUE(acks.WaitForCount(1));
  std::vector<v1::PublishAck> got = acks.Acks();
  EXPECT_EQ(got[0].seq(), 1u);
  EXPECT_EQ(got[0].outcome(), v1::PublishAck::DUPLICATE);
  EXPECT_EQ(got[0].detail(), "seen before");

  absl::StatusOr<v1::PublishAck> waited =
      client.PublishAndWait(MakeEvent("ev-2"), kWait);
  ASSERT_TRUE(waited.ok()) << waited.status();
  EXPECT_EQ(waited->seq(), 2u);
  EXPECT_EQ(waited->outcome(), v1::PublishAck::DUPLICATE);

  RouterState state = fake.Snapshot();
  ASSERT_EQ(state.sessions.size(), 1u);
  EXPECT_THAT(state.sessions[0].PublishKeys(), ElementsAre("ev-1", "ev-2"));
  EXPECT_EQ(acks.Acks().size(), 1u);
}

TEST_F(RouterClientTest, UnackedPublishesAreResentInOrderAfterRestart) {
  AckLog acks;
  auto fake = std::make_unique<FakeRouter>();
  fake->set_auto_ack(false);
  auto server = std::make_unique<TestServer>(fake.get());
  int port = server->port();
  RouterClient client(TestOptions(server->address()), nullptr);
  client.Start();
  ASSERT_TRUE(WaitUntil([&] { return client.attached(); }));

  for (int i = 1; i <= 4; ++i) {
    ASSERT_TRUE(
        client.Publish(MakeEvent(absl::StrCat("ev-", i)), acks.Callback())
            .ok());
  }
  ASSERT_TRUE(fake->WaitFor([](const RouterState& s) {
    return s.sessions[0].publishes.size() == 4;
  }));
  v1::RouterFrame ack_frame;
  ack_frame.add_publish_acks()->set_seq(1);
  ack_frame.add_publish_acks()->set_seq(2);
  ASSERT_TRUE(fake->Send(ack_frame));
  ASSERT_TRUE(acks.WaitForCount(2));

  server->Shutdown();
  ASSERT_TRUE(WaitUntil([&] { return !client.attached(); }));
  for (int i = 5; i <= 6; ++i) {
    ASSERT_TRUE(
        client.Publish(MakeEvent(absl::StrCat("ev-", i)), acks.Callback())
            .ok());
  }

  FakeRouter restarted;
  TestServer server2(&restarted, port);
  ASSERT_TRUE(server2.ok());
  ASSERT_TRUE(acks.WaitForCount(6));
  ASSERT_TRUE(client.Publish(MakeEvent("ev-7"), acks.Callback()).ok());
  ASSERT_TRUE(acks.WaitForCount(7));

  RouterState state = restarted.Snapshot();
  ASSERT_EQ(state.sessions.size(), 1u);
  EXPECT_THAT(state.sessions[0].PublishSeqs(), ElementsAre(3u, 4u, 5u, 6u, 7u));
  EXPECT_THAT(state.sessions[0].PublishKeys(),
              ElementsAre("ev-3", "ev-4", "ev-5", "ev-6", "ev-7"));
  EXPECT_THAT(acks.Seqs(), ElementsAre(1u, 2u, 3u, 4u, 5u, 6u, 7u));
}

// Publish.after_seq names the chat's last publish still waiting for the
// router, so that the router can refuse what follows a failed one.
TEST_F(RouterClientTest, APublishNamesItsChatsUnacknowledgedPredecessor) {
  FakeRouter fake;
  fake.set_auto_ack(false);
  TestServer server(&fake);
  ASSERT_TRUE(server.ok());
  RouterClient client(TestOptions(server.address()), nullptr);
  client.Start();
  ASSERT_TRUE(WaitUntil([&] { return client.attached(); }));
  AckLog acks;
  ASSERT_TRUE(client.Publish(EventInChat("a1", "A"), acks.Callback()).ok());
  ASSERT_TRUE(client.Publish(EventInChat("b1", "B"), acks.Callback()).ok());
  ASSERT_TRUE(client.Publish(EventInChat("a2", "A"), acks.Callback()).ok());
  ASSERT_TRUE(fake.WaitFor([](const RouterState& s) {
    return s.sessions[0].publishes.size() == 3;
  }));
  // a4 is published by a3's callback: a3 still counts as waiting then.
  std::atomic<bool> published_a3{false};
  ASSERT_TRUE(client
                  .Publish(EventInChat("a3", "A"),
                           [&](const v1::PublishAck&) {
                             published_a3 = client
                                                .Publish(EventInChat("a4", "A"),
                                                         acks.Callback())
                                                .ok();
                           })
                  .ok());
  ASSERT_TRUE(fake.WaitFor([](const RouterState& s) {
    return s.sessions[0].publishes.size() == 4;
  }));
  v1::RouterFrame ack_frame;
  for (uint64_t seq : {1u, 2u, 3u, 4u}) {
    v1::PublishAck* ack = ack_frame.add_publish_acks();
    ack->set_seq(seq);
    ack->set_outcome(seq == 4 ? v1::PublishAck::FAILED
                              : v1::PublishAck::ACCEPTED);
  }
  ASSERT_TRUE(fake.Send(ack_frame));
  ASSERT_TRUE(fake.WaitFor([](const RouterState& s) {
    return s.sessions[0].publishes.size() == 5;
  }));
  ASSERT_TRUE(WaitUntil([&] { return published_a3.load(); }));
  // The client forgets acknowledged publishes after their callbacks ran;
  // each later frame shows that it is through with the earlier ones.
  ack_frame.Clear();
  ack_frame.add_publish_acks()->set_seq(5);  // a4
  ASSERT_TRUE(fake.Send(ack_frame));
  ASSERT_TRUE(acks.WaitForCount(4));
  ASSERT_TRUE(client.Publish(EventInChat("b2", "B"), acks.Callback()).ok());
  ASSERT_TRUE(fake.WaitFor([](const RouterState& s) {
    return s.sessions[0].publishes.size() == 6;
  }));
  ack_frame.Clear();
  ack_frame.add_publish_acks()->set_seq(6);  // b2
  ASSERT_TRUE(fake.Send(ack_frame));
  ASSERT_TRUE(acks.WaitForCount(5));
  // Nothing of chat A waits any more: a fresh start.
  ASSERT_TRUE(client.Publish(EventInChat("a5", "A"), acks.Callback()).ok());
  ASSERT_TRUE(fake.WaitFor([](const RouterState& s) {
    return s.sessions[0].publishes.size() == 7;
  }));
  std::vector<std::pair<std::string, uint64_t>> after;
  RouterState state = fake.Snapshot();
  for (const v1::Publish& p : state.sessions[0].publishes) {
    after.emplace_back(p.event().key(), p.after_seq());
  }
  EXPECT_THAT(after, ElementsAre(std::pair<std::string, uint64_t>("a1", 0),
                                 std::pair<std::string, uint64_t>("b1", 0),
                                 std::pair<std::string, uint64_t>("a2", 1),
                                 std::pair<std::string, uint64_t>("a3", 3),
                                 std::pair<std::string, uint64_t>("a4", 4),
                                 std::pair<std::string, uint64_t>("b2", 0),
                                 std::pair<std::string, uint64_t>("a5", 0)));
}

// The router knows which seqs failed only on the stream they failed on. If
// the stream breaks between the FAILED ack of a chat's publish and the ack
// of the publish behind it, the client must not send that one again on the
// next stream (the router would store it ahead of the failed one, which the
// adapter publishes again): it answers it FAILED itself, and what follows
// it too. Other chats are re-sent as usual.
TEST_F(RouterClientTest, APublishBehindOneThatFailedIsNotResentAfterReconnect) {
  FakeRouter fake;
  fake.set_auto_ack(false);
  TestServer server(&fake);
  ASSERT_TRUE(server.ok());
  RouterClient client(TestOptions(server.address()), nullptr);
  client.Start();
  ASSERT_TRUE(WaitUntil([&] { return client.attached(); }));
  AckLog acks;
  ASSERT_TRUE(client.Publish(EventInChat("a1", "A"), acks.Callback()).ok());
  ASSERT_TRUE(client.Publish(EventInChat("a2", "A"), acks.Callback()).ok());
  ASSERT_TRUE(client.Publish(EventInChat("b1", "B"), acks.Callback()).ok());
  ASSERT_TRUE(client.Publish(EventInChat("a3", "A"), acks.Callback()).ok());
  ASSERT_TRUE(fake.WaitFor([](const RouterState& s) {
    return s.sessions[0].publishes.size() == 4;
  }));
  v1::RouterFrame ack_frame;
  v1::PublishAck* failed = ack_frame.add_publish_acks();
  failed->set_seq(1);
  failed->set_outcome(v1::PublishAck::FAILED);
  ASSERT_TRUE(fake.Send(ack_frame));
  ASSERT_TRUE(acks.WaitForCount(1));
  // The stream breaks before the router's answers to a2 and a3 arrive.
  fake.DropStream();
  ASSERT_TRUE(fake.WaitFor([](const RouterState& s) {
    return s.sessions.size() == 2 && !s.sessions[1].publishes.empty();
  }));
  ASSERT_TRUE(acks.WaitForCount(3));
  std::vector<v1::PublishAck> answered = acks.Acks();
  ASSERT_EQ(answered.size(), 3u);
  for (const v1::PublishAck& ack : answered) {
    EXPECT_EQ(ack.outcome(), v1::PublishAck::FAILED) << ack.seq();
  }
  EXPECT_THAT(acks.Seqs(), ElementsAre(1u, 2u, 4u));
  EXPECT_EQ(answered[1].detail(),
            "an earlier event of the same chat was not stored; publish it "
            "again first");

  // The adapter publishes chat A again from a1: nothing of it waits now.
  ASSERT_TRUE(client.Publish(EventInChat("a1", "A"), acks.Callback()).ok());
  ASSERT_TRUE(fake.WaitFor([](const RouterState& s) {
    return s.sessions[1].publishes.size() == 2;
  }));
  std::vector<std::pair<std::string, uint64_t>> resent;
  RouterState state = fake.Snapshot();
  for (const v1::Publish& p : state.sessions[1].publishes) {
    resent.emplace_back(p.event().key(), p.after_seq());
  }
  EXPECT_THAT(resent, ElementsAre(std::pair<std::string, uint64_t>("b1", 0),
                                  std::pair<std::string, uint64_t>("a1", 0)));
}

TEST_F(RouterClientTest, UnackedPublishesAreResentAfterStreamError) {
  AckLog acks;
  FakeRouter fake;
  fake.set_auto_ack(false);
  TestServer server(&fake);
  RouterClient client(TestOptions(server.address()), nullptr);
  client.Start();

  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(
        client.Publish(MakeEvent(absl::StrCat("ev-", i)), acks.Callback())
            .ok());
  }
  ASSERT_TRUE(fake.WaitFor([](const RouterState& s) {
    return s.sessions.size() == 1 && s.sessions[0].publishes.size() == 3;
  }));
  fake.DropStream();
  ASSERT_TRUE(fake.WaitFor([](const RouterState& s) {
    return s.sessions.size() == 2 && s.sessions[1].publishes.size() == 3;
  }));
  EXPECT_THAT(fake.Snapshot().sessions[1].PublishSeqs(),
              ElementsAre(1u, 2u, 3u));

  v1::RouterFrame ack_frame;
  for (uint64_t seq : {1, 2, 3}) ack_frame.add_publish_acks()->set_seq(seq);
  ASSERT_TRUE(fake.Send(ack_frame));
  // The same acks again must not run any callback twice.
  ASSERT_TRUE(fake.Send(ack_frame));
  ASSERT_TRUE(client.Publish(MakeEvent("marker"), acks.Callback()).ok());
  ASSERT_TRUE(fake.WaitFor([](const RouterState& s) {
    return s.sessions[1].publishes.size() == 4;
  }));
  v1::RouterFrame marker_ack;
  marker_ack.add_publish_acks()->set_seq(4);
  ASSERT_TRUE(fake.Send(marker_ack));
  ASSERT_TRUE(acks.WaitForCount(4));
  EXPECT_THAT(acks.Seqs(), ElementsAre(1u, 2u, 3u, 4u));
}

TEST_F(RouterClientTest, DeliveriesAreSerialPerTargetAndConcurrentAcross) {
  absl::Mutex mu;
  absl::flat_hash_map<std::string, int> running;
  absl::flat_hash_map<std::string, int> max_running;
  bool b_started = false;
  bool thread_started = false;
  bool first_a_saw_others = false;
  ScriptedHandler handler(
      [&](const v1::Delivery& d) -> absl::StatusOr<std::vector<std::string>> {
        const v1::ChannelRef& t = d.target();
        std::string key = absl::StrCat(t.chat_id(), "#", t.thread_id());
        {
          absl::MutexLock lock(&mu);
          int now = ++running[key];
          max_running[key] = std::max(max_running[key], now);
          if (key == "B#") b_started = true;
          if (key == "A#t1") thread_started = true;
          if (d.id() == 1) {
            // A's first delivery waits for the other targets to start.
            auto others = [&] { return b_started && thread_started; };
            first_a_saw_others =
                mu.AwaitWithTimeout(absl::Condition(&others), kWait);
          }
        }
        absl::SleepFor(absl::Microseconds(200));
        absl::MutexLock lock(&mu);
        --running[key];
        return std::vector<std::string>{absl::StrCat("native-", d.id())};
      });
  FakeRouter fake;
  TestServer server(&fake);
  RouterClient client(TestOptions(server.address()), &handler);
  client.Start();
  ASSERT_TRUE(WaitUntil([&] { return client.attached(); }));

  std::vector<v1::Delivery> deliveries;
  std::vector<uint64_t> a_ids, b_ids, t_ids;
  for (uint64_t id = 1; id <= 30; ++id) {
    switch (id % 3) {
      case 1:
        deliveries.push_back(MakeDelivery(id, "A"));
        a_ids.push_back(id);
        break;
      case 2:
        deliveries.push_back(MakeDelivery(id, "B"));
        b_ids.push_back(id);
        break;
      default:
        deliveries.push_back(MakeDelivery(id, "A", "t1"));
        t_ids.push_back(id);
    }
  }
  ASSERT_TRUE(fake.SendDeliveries(deliveries));
  ASSERT_TRUE(fake.WaitFor(
      [](const RouterState& s) { return s.sessions[0].results.size() == 30; }));

  std::vector<uint64_t> a_calls;
  for (uint64_t id : handler.Calls("A")) {
    if (id % 3 == 1) a_calls.push_back(id);
  }
  std::vector<uint64_t> t_calls;
  for (uint64_t id : handler.Calls("A")) {
    if (id % 3 == 0) t_calls.push_back(id);
  }
  EXPECT_EQ(a_calls, a_ids);
  EXPECT_EQ(t_calls, t_ids);
  EXPECT_EQ(handler.Calls("B"), b_ids);
  absl::MutexLock lock(&mu);
  EXPECT_TRUE(first_a_saw_others);
  EXPECT_EQ(max_running["A#"], 1);
  EXPECT_EQ(max_running["B#"], 1);
  EXPECT_EQ(max_running["A#t1"], 1);
  RouterState state = fake.Snapshot();
  for (uint64_t id = 1; id <= 30; ++id) {
    const v1::DeliveryResult* result = state.sessions[0].Result(id);
    ASSERT_NE(result, nullptr) << id;
    EXPECT_FALSE(result->has_error());
    EXPECT_THAT(result->native_ids(), ElementsAre(absl::StrCat("native-", id)));
  }
}

TEST_F(RouterClientTest, RetryableFailureMakesLaterDeliveriesNotAttempted) {
  std::atomic<int> attempts_of_10{0};
  ScriptedHandler handler(
      [&](const v1::Delivery& d) -> absl::StatusOr<std::vector<std::string>> {
        if (d.id() == 10 && attempts_of_10++ == 0) {
          return RetryableError("rate limited", absl::Milliseconds(1500));
        }
        if (d.id() == 20) return absl::InvalidArgumentError("chat is gone");
        return std::vector<std::string>{absl::StrCat("native-", d.id())};
      });
  FakeRouter fake;
  TestServer server(&fake);
  RouterClient client(TestOptions(server.address()), &handler);
  client.Start();
  ASSERT_TRUE(WaitUntil([&] { return client.attached(); }));

  auto results_for = [&](std::vector<uint64_t> ids) {
    return fake.WaitFor([ids](const RouterState& s) {
      for (uint64_t id : ids) {
        if (s.sessions[0].Result(id) == nullptr) return false;
      }
      return true;
    });
  };

  // 11 and 12 are queued behind 10 when it fails.
  ASSERT_TRUE(fake.SendDeliveries(
      {MakeDelivery(10, "T"), MakeDelivery(11, "T"), MakeDelivery(12, "T")}));
  ASSERT_TRUE(results_for({10, 11, 12}));
  // 13 arrives while T is blocked.
  ASSERT_TRUE(fake.SendDeliveries({MakeDelivery(13, "T")}));
  ASSERT_TRUE(results_for({13}));
  // A permanent failure does not block its target.
  ASSERT_TRUE(
      fake.SendDeliveries({MakeDelivery(20, "V"), MakeDelivery(21, "V")}));
  ASSERT_TRUE(results_for({20, 21}));

  RouterState state = fake.Snapshot();
  const Session& s = state.sessions[0];
  const v1::DeliveryResult* r10 = s.Result(10);
  ASSERT_TRUE(r10->has_error());
  EXPECT_TRUE(r10->error().retryable());
  EXPECT_FALSE(r10->error().not_attempted());
  EXPECT_EQ(r10->error().retry_after_ms(), 1500u);
  EXPECT_EQ(r10->error().message(), "rate limited");
  for (uint64_t id : {11, 12, 13}) {
    const v1::DeliveryResult* r = s.Result(id);
    ASSERT_TRUE(r->has_error()) << id;
    EXPECT_TRUE(r->error().retryable()) << id;
    EXPECT_TRUE(r->error().not_attempted()) << id;
  }
  EXPECT_THAT(handler.Calls("T"), ElementsAre(10u));
  // The failure is reported before what it caused.
  auto first_index = [&s](uint64_t id) {
    for (size_t i = 0; i < s.results.size(); ++i) {
      if (s.results[i].id() == id) return i;
    }
    return s.results.size();
  };
  EXPECT_LT(first_index(10), first_index(11));
  const v1::DeliveryResult* r20 = s.Result(20);
  ASSERT_TRUE(r20->has_error());
  EXPECT_FALSE(r20->error().retryable());
  EXPECT_EQ(r20->error().message(), "chat is gone");
  EXPECT_FALSE(s.Result(21)->has_error());
  EXPECT_THAT(handler.Calls("V"), ElementsAre(20u, 21u));

  // The router re-sends 10 first, which lifts the block.
  v1::Delivery again = MakeDelivery(10, "T");
  again.set_attempt(2);
  ASSERT_TRUE(
      fake.SendDeliveries({again, MakeDelivery(11, "T"), MakeDelivery(12, "T"),
                           MakeDelivery(13, "T")}));
  ASSERT_TRUE(fake.WaitFor([](const RouterState& st) {
    return st.sessions[0].results.size() == 10;
  }));
  state = fake.Snapshot();
  for (uint64_t id : {10, 11, 12, 13}) {
    EXPECT_FALSE(state.sessions[0].Result(id)->has_error()) << id;
  }
  EXPECT_THAT(handler.Calls("T"), ElementsAre(10u, 10u, 11u, 12u, 13u));
}

TEST_F(RouterClientTest, BlockEndsWhenTheRouterMovesPastTheFailedDelivery) {
  ScriptedHandler handler(
      [](const v1::Delivery& d) -> absl::StatusOr<std::vector<std::string>> {
        if (d.id() == 30) return RetryableError("down");
        return std::vector<std::string>{absl::StrCat("native-", d.id())};
      });
  FakeRouter fake;
  TestServer server(&fake);
  RouterClient client(TestOptions(server.address()), &handler);
  client.Start();
  ASSERT_TRUE(WaitUntil([&] { return client.attached(); }));

  ASSERT_TRUE(
      fake.SendDeliveries({MakeDelivery(30, "T"), MakeDelivery(31, "T")}));
  ASSERT_TRUE(fake.WaitFor(
      [](const RouterState& s) { return s.sessions[0].results.size() == 2; }));
  EXPECT_TRUE(fake.Snapshot().sessions[0].Result(31)->error().not_attempted());
  // The router dead-lettered 30 and sends 31 again: it must be attempted.
  ASSERT_TRUE(fake.SendDeliveries({MakeDelivery(31, "T")}));
  ASSERT_TRUE(fake.WaitFor(
      [](const RouterState& s) { return s.sessions[0].results.size() == 3; }));
  EXPECT_FALSE(fake.Snapshot().sessions[0].Result(31)->has_error());
  EXPECT_THAT(handler.Calls("T"), ElementsAre(30u, 31u));
}

// A re-sent delivery goes to the handler again (the client keeps no results
// of its own): the adapter's journal answers a completed one with its
// recorded ids and no second native call; failures are tried again (a dead
// letter an operator retries comes back with its old key).
TEST_F(RouterClientTest, ResentDeliveriesAreAnsweredByTheHandlersJournal) {
  std::unique_ptr<DeliveryJournal> journal =
      *DeliveryJournal::Open(DeliveryJournal::Options());
  std::atomic<int> native_calls{0};
  ScriptedHandler handler(
      [&](const v1::Delivery& d) -> absl::StatusOr<std::vector<std::string>> {
        if (d.idempotency_key() == "k-perm") {
          return absl::PermissionDeniedError("not a member");
        }
        if (d.idempotency_key() == "k-retry") return RetryableError("503");
        DeliveryJournal::StepCall post =
            [&]() -> absl::StatusOr<std::vector<std::string>> {
          ++native_calls;
          return std::vector<std::string>{"n1", "n2"};
        };
        return journal->Run(d.idempotency_key(), "A", {post}, nullptr);
      });
  FakeRouter fake;
  TestServer server(&fake);
  RouterClient client(TestOptions(server.address()), &handler);
  client.Start();
  ASSERT_TRUE(WaitUntil([&] { return client.attached(); }));

  std::vector<v1::Delivery> batch = {MakeDelivery(1, "A", "", "k-ok"),
                                     MakeDelivery(2, "B", "", "k-perm"),
                                     MakeDelivery(3, "C", "", "k-retry")};
  ASSERT_TRUE(fake.SendDeliveries(batch));
  ASSERT_TRUE(fake.WaitFor(
      [](const RouterState& s) { return s.sessions[0].results.size() == 3; }));
  for (v1::Delivery& d : batch) d.set_attempt(2);
  ASSERT_TRUE(fake.SendDeliveries(batch));
  ASSERT_TRUE(fake.WaitFor(
      [](const RouterState& s) { return s.sessions[0].results.size() == 6; }));

  EXPECT_THAT(handler.Calls("A"), ElementsAre(1u, 1u));
  EXPECT_EQ(native_calls.load(), 1);
  EXPECT_THAT(handler.Calls("B"), ElementsAre(2u, 2u));
  EXPECT_THAT(handler.Calls("C"), ElementsAre(3u, 3u));
  RouterState state = fake.Snapshot();
  const Session& s = state.sessions[0];
  EXPECT_EQ(s.ResultCount(1), 2);
  EXPECT_THAT(s.Result(1)->native_ids(), ElementsAre("n1", "n2"));
  EXPECT_EQ(s.ResultCount(2), 2);
  ASSERT_TRUE(s.Result(2)->has_error());
  EXPECT_FALSE(s.Result(2)->error().retryable());
  EXPECT_EQ(s.Result(2)->error().message(), "not a member");
}

// The result of a delivery that finished after its stream ended is lost
// with the stream; the router sends the delivery again on the next stream
// and the handler's journal answers it without a second native call.
TEST_F(RouterClientTest, AResultLostWithItsStreamIsAnsweredByTheJournal) {
  std::unique_ptr<DeliveryJournal> journal =
      *DeliveryJournal::Open(DeliveryJournal::Options());
  absl::Notification started;
  absl::Notification release;
  std::atomic<int> native_calls{0};
  ScriptedHandler handler(
      [&](const v1::Delivery& d) -> absl::StatusOr<std::vector<std::string>> {
        DeliveryJournal::StepCall post =
            [&]() -> absl::StatusOr<std::vector<std::string>> {
          ++native_calls;
          if (!started.HasBeenNotified()) started.Notify();
          release.WaitForNotificationWithTimeout(kWait);
          return std::vector<std::string>{"native-slow"};
        };
        return journal->Run(d.idempotency_key(), "A", {post}, nullptr);
      });
  FakeRouter fake;
  TestServer server(&fake);
  RouterClient client(TestOptions(server.address()), &handler);
  client.Start();
  ASSERT_TRUE(WaitUntil([&] { return client.attached(); }));

  v1::Delivery slow = MakeDelivery(5, "A", "", "k-slow");
  ASSERT_TRUE(fake.SendDeliveries({slow}));
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(kWait));
  fake.DropStream();
  ASSERT_TRUE(fake.WaitFor(
      [](const RouterState& s) { return s.sessions.size() == 2; }));
  release.Notify();
  slow.set_attempt(2);
  ASSERT_TRUE(fake.SendDeliveries({slow}));
  ASSERT_TRUE(fake.WaitFor(
      [](const RouterState& s) { return s.sessions[1].results.size() == 1; }));

  RouterState state = fake.Snapshot();
  EXPECT_TRUE(state.sessions[0].results.empty());
  EXPECT_THAT(state.sessions[1].Result(5)->native_ids(),
              ElementsAre("native-slow"));
  EXPECT_EQ(native_calls.load(), 1);
}

TEST_F(RouterClientTest, RetryAfterRoundTripsThroughTheStatus) {
  absl::Status status = RetryableError("slow down", absl::Milliseconds(1500));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(status.message(), "slow down");
  EXPECT_TRUE(IsRetryable(status));
  EXPECT_EQ(RetryAfter(status), absl::Milliseconds(1500));

  absl::Status quota =
      WithRetryAfter(absl::ResourceExhaustedError("quota"), absl::Seconds(2));
  EXPECT_EQ(quota.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(RetryAfter(quota), absl::Seconds(2));
  EXPECT_EQ(RetryAfter(WithRetryAfter(quota, absl::ZeroDuration())),
            absl::ZeroDuration());
  EXPECT_EQ(RetryAfter(RetryableError("no hint")), absl::ZeroDuration());
  EXPECT_EQ(RetryAfter(RetryableError("tiny", absl::Microseconds(1500))),
            absl::Milliseconds(2));

  EXPECT_TRUE(IsRetryable(absl::AbortedError("")));
  EXPECT_TRUE(IsRetryable(absl::DeadlineExceededError("")));
  EXPECT_TRUE(IsRetryable(absl::ResourceExhaustedError("")));
  EXPECT_FALSE(IsRetryable(absl::InvalidArgumentError("")));
  EXPECT_FALSE(IsRetryable(absl::NotFoundError("")));
  EXPECT_FALSE(IsRetryable(absl::OkStatus()));
}

std::string TestBytes(size_t n) {
  std::string data(n, '\0');
  uint32_t x = 12345;
  for (char& c : data) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 24);
  }
  return data;
}

TEST_F(RouterClientTest, BlobRoundTripInChunks) {
  FakeRouter fake;
  TestServer server(&fake);
  RouterClient client(TestOptions(server.address()), nullptr);
  std::string data = TestBytes(1000003);
  v1::BlobMeta meta;
  meta.set_name("photo.jpg");
  meta.set_mime_type("image/jpeg");
  meta.set_size(data.size());

  absl::StatusOr<v1::BlobRef> ref = client.PutBlob(meta, data);
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_EQ(ref->size(), data.size());
  RouterState state = fake.Snapshot();
  EXPECT_THAT(state.last_put_chunk_sizes,
              ElementsAre(262144u, 262144u, 262144u, 1000003u - 3 * 262144u));
  EXPECT_TRUE(state.last_put_first_has_meta);
  EXPECT_EQ(state.last_put_chunks_with_meta, 1);
  EXPECT_EQ(state.blobs[ref->blob_id()].meta.name(), "photo.jpg");
  EXPECT_TRUE(state.blobs[ref->blob_id()].data == data);

  // Short reads still make full chunks.
  size_t offset = 0;
  absl::StatusOr<v1::BlobRef> ref2 = client.PutBlob(
      meta, [&](char* buf, size_t max) -> absl::StatusOr<size_t> {
        size_t n = std::min<size_t>({max, 1000, data.size() - offset});
        std::copy_n(data.data() + offset, n, buf);
        offset += n;
        return n;
      });
  ASSERT_TRUE(ref2.ok()) << ref2.status();
  EXPECT_EQ(fake.Snapshot().last_put_chunk_sizes.size(), 4u);

  std::string got;
  int chunks = 0;
  absl::StatusOr<v1::BlobMeta> got_meta =
      client.GetBlob(ref->blob_id(), [&](absl::string_view chunk) {
        ++chunks;
        got.append(chunk.data(), chunk.size());
        return absl::OkStatus();
      });
  ASSERT_TRUE(got_meta.ok()) << got_meta.status();
  EXPECT_EQ(got_meta->name(), "photo.jpg");
  EXPECT_EQ(got_meta->mime_type(), "image/jpeg");
  EXPECT_GT(chunks, 1);
  EXPECT_TRUE(got == data);

  absl::StatusOr<std::string> in_memory =
      client.GetBlob(ref->blob_id(), data.size());
  ASSERT_TRUE(in_memory.ok()) << in_memory.status();
  EXPECT_TRUE(*in_memory == data);
  EXPECT_EQ(client.GetBlob(ref->blob_id(), 1000).status().code(),
            absl::StatusCode::kOutOfRange);
}

TEST_F(RouterClientTest, BlobErrorsKeepTheRouterCode) {
  FakeRouter fake;
  fake.set_max_blob_bytes(100000);
  TestServer server(&fake);
  RouterClient client(TestOptions(server.address()), nullptr);
  v1::BlobMeta meta;
  meta.set_name("big.bin");

  absl::StatusOr<v1::BlobRef> too_big = client.PutBlob(meta, TestBytes(300000));
  EXPECT_EQ(too_big.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(too_big.status().message(), "blob exceeds 100000 bytes");

  EXPECT_EQ(client.GetBlob("blob-404", 100).status().code(),
            absl::StatusCode::kNotFound);

  absl::StatusOr<v1::BlobRef> failed_read =
      client.PutBlob(meta, [](char*, size_t) -> absl::StatusOr<size_t> {
        return absl::DataLossError("disk on fire");
      });
  EXPECT_EQ(failed_read.status(), absl::DataLossError("disk on fire"));

  RouterClient::Options wrong = TestOptions(server.address());
  wrong.token = "wrong";
  RouterClient intruder(wrong, nullptr);
  EXPECT_EQ(intruder.PutBlob(meta, "x").status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(RouterClientTest, ABlobReadForAnUploadFailsRetryably) {
  FakeRouter fake;
  TestServer server(&fake);
  RouterClient client(TestOptions(server.address()), nullptr);
  v1::BlobMeta meta;
  meta.set_name("report.pdf");
  absl::StatusOr<v1::BlobRef> ref = client.PutBlob(meta, "0123456789");
  ASSERT_TRUE(ref.ok()) << ref.status();

  absl::StatusOr<std::string> bytes =
      ReadBlobForUpload(client, ref->blob_id(), 10);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(*bytes, "0123456789");
  for (const absl::Status& failed :
       {ReadBlobForUpload(client, "blob-404", 10).status(),
        ReadBlobForUpload(client, ref->blob_id(), 9).status()}) {
    EXPECT_TRUE(IsRetryable(failed)) << failed;
    EXPECT_THAT(failed.message(),
                HasSubstr("cannot read the file from the router: "));
  }
}

TEST_F(RouterClientTest, PublishAndWaitTimesOutWithoutARouter) {
  RouterClient client(TestOptions(absl::StrCat("127.0.0.1:", UnusedPort())),
                      nullptr);
  client.Start();
  absl::Time start = absl::Now();
  absl::StatusOr<v1::PublishAck> ack =
      client.PublishAndWait(MakeEvent("ev-1"), absl::Milliseconds(300));
  absl::Duration took = absl::Now() - start;
  EXPECT_EQ(ack.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_GE(took, absl::Milliseconds(290));
  EXPECT_LT(took, absl::Seconds(3));
  EXPECT_FALSE(client.attached());
}

TEST_F(RouterClientTest, PublishFailsBeyondMaxPending) {
  RouterClient::Options options =
      TestOptions(absl::StrCat("127.0.0.1:", UnusedPort()));
  options.max_pending_publishes = 2;
  RouterClient client(options, nullptr);
  EXPECT_TRUE(client.Publish(MakeEvent("a"), nullptr).ok());
  EXPECT_TRUE(client.Publish(MakeEvent("b"), nullptr).ok());
  EXPECT_EQ(client.Publish(MakeEvent("c"), nullptr).code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(RouterClientTest, PublishRefusesAnEventTooLargeForAFrame) {
  RouterClient client(TestOptions(absl::StrCat("127.0.0.1:", UnusedPort())),
                      nullptr);
  EXPECT_EQ(
      client.Publish(MakeEvent(std::string(2 << 20, 'k')), nullptr).code(),
      absl::StatusCode::kInvalidArgument);
}

// Runs client->Stop() and returns how long it took. A Stop() that hangs
// aborts the test binary instead of hanging it.
absl::Duration TimedStop(RouterClient* client) {
  absl::Time start = absl::Now();
  absl::Notification done;
  std::thread watchdog([&done] {
    if (!done.WaitForNotificationWithTimeout(absl::Seconds(3))) {
      std::fprintf(stderr, "RouterClient::Stop() hung for 3 s\n");
      std::abort();
    }
  });
  client->Stop();
  done.Notify();
  watchdog.join();
  return absl::Now() - start;
}

// Publishers write on their own thread when no write is in flight and leave
// the rest to the writer thread: from several threads at once, the router
// still gets every publish once, in seq order, each chained to its chat's
// previous one.
TEST_F(RouterClientTest, PublishesFromManyThreadsReachTheRouterInSeqOrder) {
  constexpr int kThreads = 4;
  constexpr int kEach = 150;
  AckLog acks;
  FakeRouter fake;
  TestServer server(&fake);
  ASSERT_TRUE(server.ok());
  RouterClient client(TestOptions(server.address()), nullptr);
  client.Start();
  ASSERT_TRUE(WaitUntil([&] { return client.attached(); }));

  std::vector<std::thread> publishers;
  for (int t = 0; t < kThreads; ++t) {
    publishers.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        std::string chat = absl::StrCat("T", t);
        ASSERT_TRUE(client
                        .Publish(EventInChat(absl::StrCat(chat, "-", i), chat),
                                 acks.Callback())
                        .ok());
      }
    });
  }
  for (std::thread& publisher : publishers) publisher.join();
  ASSERT_TRUE(acks.WaitForCount(kThreads * kEach));

  RouterState state = fake.Snapshot();
  ASSERT_EQ(state.sessions.size(), 1u);
  const std::vector<v1::Publish>& got = state.sessions[0].publishes;
  ASSERT_EQ(got.size(), static_cast<size_t>(kThreads * kEach));
  std::map<std::string, int> next_of_chat;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].seq(), i + 1);
    const std::string& chat = got[i].event().channel().chat_id();
    int n = next_of_chat[chat]++;
    EXPECT_EQ(got[i].event().key(), absl::StrCat(chat, "-", n));
  }
  EXPECT_EQ(acks.Acks().size(), static_cast<size_t>(kThreads * kEach));
}

// Stop() while threads publish returns promptly and drops what is pending.
TEST_F(RouterClientTest, StopWhilePublishersWriteReturnsPromptly) {
  FakeRouter fake;
  fake.set_auto_ack(false);
  TestServer server(&fake);
  ASSERT_TRUE(server.ok());
  RouterClient client(TestOptions(server.address()), nullptr);
  client.Start();
  ASSERT_TRUE(WaitUntil([&] { return client.attached(); }));
  std::atomic<bool> go_on{true};
  std::vector<std::thread> publishers;
  for (int t = 0; t < 3; ++t) {
    publishers.emplace_back([&, t] {
      for (int i = 0; go_on.load(); ++i) {
        absl::Status published =
            client.Publish(MakeEvent(absl::StrCat("p", t, "-", i)), nullptr);
        if (!published.ok()) {
          EXPECT_EQ(published.code(), absl::StatusCode::kUnavailable);
          return;
        }
      }
    });
  }
  ASSERT_TRUE(fake.WaitFor([](const RouterState& s) {
    return s.sessions[0].publishes.size() >= 100;
  }));
  EXPECT_LT(TimedStop(&client), absl::Seconds(5));
  go_on = false;
  for (std::thread& publisher : publishers) publisher.join();
  EXPECT_FALSE(client.attached());
}

TEST_F(RouterClientTest, StopReturnsPromptlyWhileAttached) {
  AckLog acks;
  FakeRouter fake;
  fake.set_auto_ack(false);
  TestServer server(&fake);
  ScriptedHandler handler;
  RouterClient client(TestOptions(server.address()), &handler);
  client.Start();
  ASSERT_TRUE(WaitUntil([&] { return client.attached(); }));
  ASSERT_TRUE(client.Publish(MakeEvent("never-acked"), acks.Callback()).ok());
  ASSERT_TRUE(fake.WaitFor([](const RouterState& s) {
    return s.sessions[0].publishes.size() == 1;
  }));

  EXPECT_LT(TimedStop(&client), absl::Seconds(1));
  EXPECT_FALSE(client.attached());
  EXPECT_EQ(client.Publish(MakeEvent("late"), nullptr).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_TRUE(acks.Acks().empty());
  client.Stop();
}

TEST_F(RouterClientTest, StopReturnsPromptlyBeforeWelcome) {
  FakeRouter fake;
  fake.set_send_welcome(false);
  TestServer server(&fake);
  RouterClient client(TestOptions(server.address()), nullptr);
  client.Start();
  ASSERT_TRUE(fake.WaitFor(
      [](const RouterState& s) { return s.hellos_without_welcome >= 1; }));
  EXPECT_FALSE(client.attached());
  EXPECT_LT(TimedStop(&client), absl::Seconds(1));
}

TEST_F(RouterClientTest, StopReturnsPromptlyDuringBackoff) {
  RouterClient::Options options =
      TestOptions(absl::StrCat("127.0.0.1:", UnusedPort()));
  options.initial_backoff = absl::Seconds(30);
  options.max_backoff = absl::Seconds(60);
  RouterClient client(options, nullptr);
  client.Start();
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_LT(TimedStop(&client), absl::Seconds(1));
}

TEST_F(RouterClientTest, StopCancelsABlobDownload) {
  FakeRouter fake;
  fake.set_hold_get_blob(true);
  TestServer server(&fake);
  RouterClient client(TestOptions(server.address()), nullptr);
  absl::Status download;
  std::thread downloader(
      [&] { download = client.GetBlob("blob-1", 100).status(); });
  ASSERT_TRUE(
      fake.WaitFor([](const RouterState& s) { return s.get_blob_held; }));
  EXPECT_LT(TimedStop(&client), absl::Seconds(1));
  downloader.join();
  EXPECT_EQ(download.code(), absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace imbridge::adapters

namespace imbridge::adapters {
namespace {

TEST_F(RouterClientTest, StopSendsTheResultOfADeliveryInProgress) {
  absl::Notification started;
  absl::Notification release;
  ScriptedHandler handler(
      [&](const v1::Delivery&) -> absl::StatusOr<std::vector<std::string>> {
        started.Notify();
        release.WaitForNotificationWithTimeout(kWait);
        return std::vector<std::string>{"posted-1"};
      });
  FakeRouter fake;
  TestServer server(&fake);
  RouterClient client(TestOptions(server.address()), &handler);
  client.Start();
  ASSERT_TRUE(WaitUntil([&] { return client.attached(); }));
  ASSERT_TRUE(fake.SendDeliveries({MakeDelivery(7, "A", "", "k7")}));
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(kWait));

  // Stop while the messenger call is in flight: its result must still reach
  // the router, or the router would send it again after a restart.
  std::thread stopper([&] { client.Stop(); });
  absl::SleepFor(absl::Milliseconds(100));
  release.Notify();
  stopper.join();
  ASSERT_TRUE(fake.WaitFor(
      [](const RouterState& s) { return s.sessions[0].results.size() == 1; }));
  RouterState state = fake.Snapshot();
  const Session& s = state.sessions[0];
  ASSERT_NE(s.Result(7), nullptr);
  EXPECT_THAT(s.Result(7)->native_ids(), ElementsAre("posted-1"));
}

}  // namespace
}  // namespace imbridge::adapters

namespace imbridge::adapters {
namespace {

TEST(DeliveryHandlerTest, HttpStatusesWorthRetrying) {
  for (int status : {0, 429, 500, 502, 503, 504}) {
    EXPECT_TRUE(IsRetryableHttpStatus(status)) << status;
  }
  for (int status : {200, 400, 401, 403, 404, 409, 413}) {
    EXPECT_FALSE(IsRetryableHttpStatus(status)) << status;
  }
}

}  // namespace
}  // namespace imbridge::adapters

namespace imbridge::adapters {
namespace {

// Issue 11, exception barrier: a handler that throws, or returns what
// cannot be sent, fails that delivery permanently with the reason, and the
// client goes on serving.
TEST_F(RouterClientTest, AThrowingHandlerFailsTheDeliveryPermanently) {
  ScriptedHandler handler(
      [](const v1::Delivery& d) -> absl::StatusOr<std::vector<std::string>> {
        if (d.id() == 1) throw std::runtime_error("json: type must be string");
        if (d.id() == 2) throw 42;
        if (d.id() == 3) return std::vector<std::string>{"ok", "bad\xC3("};
        return std::vector<std::string>{absl::StrCat("native-", d.id())};
      });
  FakeRouter fake;
  TestServer server(&fake);
  RouterClient client(TestOptions(server.address()), &handler);
  client.Start();
  ASSERT_TRUE(WaitUntil([&] { return client.attached(); }));
  // Same target: a permanent failure does not hold back the next one.
  ASSERT_TRUE(
      fake.SendDeliveries({MakeDelivery(1, "A"), MakeDelivery(2, "A"),
                           MakeDelivery(3, "A"), MakeDelivery(4, "A")}));
  ASSERT_TRUE(fake.WaitFor(
      [](const RouterState& s) { return s.sessions[0].results.size() == 4; }));
  RouterState state = fake.Snapshot();
  ASSERT_EQ(state.sessions.size(), 1u) << "the stream broke";
  const Session& s = state.sessions[0];
  for (uint64_t id : {1, 2, 3}) {
    ASSERT_NE(s.Result(id), nullptr) << id;
    ASSERT_TRUE(s.Result(id)->has_error()) << id;
    EXPECT_FALSE(s.Result(id)->error().retryable()) << id;
  }
  EXPECT_THAT(s.Result(1)->error().message(),
              HasSubstr("json: type must be string"));
  EXPECT_THAT(s.Result(2)->error().message(),
              HasSubstr("an unknown exception"));
  EXPECT_THAT(s.Result(3)->error().message(),
              HasSubstr("native id that is not valid UTF-8"));
  ASSERT_NE(s.Result(4), nullptr);
  EXPECT_THAT(s.Result(4)->native_ids(), ElementsAre("native-4"));
  EXPECT_TRUE(client.attached());
}

TEST_F(RouterClientTest, AnErrorMessageThatIsNotUtf8IsRepaired) {
  ScriptedHandler handler(
      [](const v1::Delivery&) -> absl::StatusOr<std::vector<std::string>> {
        return absl::InvalidArgumentError("messenger said: \xFF\xFE");
      });
  FakeRouter fake;
  TestServer server(&fake);
  RouterClient client(TestOptions(server.address()), &handler);
  client.Start();
  ASSERT_TRUE(WaitUntil([&] { return client.attached(); }));
  ASSERT_TRUE(fake.SendDeliveries({MakeDelivery(1, "A")}));
  ASSERT_TRUE(fake.WaitFor(
      [](const RouterState& s) { return s.sessions[0].results.size() == 1; }));
  RouterState state = fake.Snapshot();
  ASSERT_NE(state.sessions[0].Result(1), nullptr);
  EXPECT_EQ(state.sessions[0].Result(1)->error().message(),
            "messenger said: \xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST_F(RouterClientTest, AnEventThatIsNotUtf8IsRefusedAtOnce) {
  FakeRouter fake;
  TestServer server(&fake);
  RouterClient client(TestOptions(server.address()), nullptr);
  client.Start();
  ASSERT_TRUE(WaitUntil([&] { return client.attached(); }));
  v1::Event bad = MakeEvent("bad");
  bad.mutable_posted()->mutable_text()->set_text("caf\xC3");
  AckLog acks;
  absl::Status refused = client.Publish(bad, acks.Callback());
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.message(), HasSubstr("posted.text.text"));
  // The stream is unharmed: the next event goes through.
  ASSERT_TRUE(client.Publish(MakeEvent("good"), acks.Callback()).ok());
  ASSERT_TRUE(acks.WaitForCount(1));
  RouterState state = fake.Snapshot();
  ASSERT_EQ(state.sessions.size(), 1u);
  EXPECT_THAT(state.sessions[0].PublishKeys(), ElementsAre("good"));
}

// A publish callback that throws is logged; the client keeps going.
TEST_F(RouterClientTest, AThrowingPublishCallbackDoesNotStopTheClient) {
  FakeRouter fake;
  TestServer server(&fake);
  RouterClient client(TestOptions(server.address()), nullptr);
  client.Start();
  ASSERT_TRUE(WaitUntil([&] { return client.attached(); }));
  ASSERT_TRUE(client
                  .Publish(MakeEvent("first"),
                           [](const v1::PublishAck&) {
                             throw std::runtime_error("boom");
                           })
                  .ok());
  absl::StatusOr<v1::PublishAck> second =
      client.PublishAndWait(MakeEvent("second"), kWait);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(client.attached());
}

// Two fake routers sharing one database, as one client's router list
// (first, second).
struct TwoRouters {
  explicit TwoRouters(bool auto_ack) {
    first.set_auto_ack(auto_ack);
    second.set_auto_ack(auto_ack);
  }
  RouterClient::Options Options() const {
    RouterClient::Options options = TestOptions("");
    options.addresses = {first_server.address(), second_server.address()};
    return options;
  }

  FakeRouter first;
  FakeRouter second;
  TestServer first_server{&first};
  TestServer second_server{&second};
};

// Which configured routers the client is attached to and publishes through,
// as "a" (attached), "p" (attached and publishing) or "-" per router.
std::string RouterStates(const RouterClient& client) {
  std::string states;
  for (const RouterClient::RouterStatus& r : client.routers()) {
    states += r.publishing ? "p" : (r.attached ? "a" : "-");
  }
  return states;
}

TEST_F(RouterClientTest, OptionsFromConfigTakesEveryRouterAddress) {
  v1::RouterConnection config;
  config.set_token(kToken);
  config.add_addresses("10.0.0.1:7700");
  config.add_addresses("10.0.0.2:7700");
  RouterClient::Options options =
      RouterClient::OptionsFromConfig(config, "slack", {"main"}, {});
  EXPECT_THAT(options.RouterAddresses(),
              ElementsAre("10.0.0.1:7700", "10.0.0.2:7700"));
  config.clear_addresses();
  config.set_address("10.0.0.3:7700");
  EXPECT_THAT(RouterClient::OptionsFromConfig(config, "slack", {"main"}, {})
                  .RouterAddresses(),
              ElementsAre("10.0.0.3:7700"));
  config.clear_address();
  EXPECT_THAT(RouterClient::OptionsFromConfig(config, "slack", {"main"}, {})
                  .RouterAddresses(),
              ElementsAre("127.0.0.1:7700"));
}

// Each router gets its own stream with its own Hello, publishes go through
// the first one only, and when it fails the second gets everything not
// acknowledged, in the original order with the same keys, before anything
// published later.
TEST_F(RouterClientTest, PublishesMoveToTheNextRouterInOrderWhenTheFirstFails) {
  AckLog acks;
  TwoRouters routers(/*auto_ack=*/false);
  FakeRouter& first = routers.first;
  FakeRouter& second = routers.second;
  RouterClient client(routers.Options(), nullptr);
  client.Start();
  ASSERT_TRUE(WaitUntil([&] { return RouterStates(client) == "pa"; }))
      << RouterStates(client);
  for (FakeRouter* fake : {&first, &second}) {
    RouterState state = fake->Snapshot();
    ASSERT_EQ(state.sessions.size(), 1u);
    EXPECT_EQ(state.sessions[0].authorization, absl::StrCat("Bearer ", kToken));
    EXPECT_EQ(state.sessions[0].hello.adapter_name(), "slack-test");
  }

  for (int i = 1; i <= 5; ++i) {
    ASSERT_TRUE(
        client.Publish(MakeEvent(absl::StrCat("ev-", i)), acks.Callback())
            .ok());
  }
  ASSERT_TRUE(first.WaitFor([](const RouterState& s) {
    return s.sessions[0].publishes.size() == 5;
  }));
  v1::RouterFrame ack_frame;
  ack_frame.add_publish_acks()->set_seq(1);
  ack_frame.add_publish_acks()->set_seq(2);
  ASSERT_TRUE(first.Send(ack_frame));
  ASSERT_TRUE(acks.WaitForCount(2));

  routers.first_server.Shutdown();
  ASSERT_TRUE(second.WaitFor([](const RouterState& s) {
    return s.sessions[0].publishes.size() == 3;
  }));
  EXPECT_EQ(RouterStates(client), "-p");
  EXPECT_TRUE(client.attached());
  ASSERT_TRUE(client.Publish(MakeEvent("ev-6"), acks.Callback()).ok());
  ASSERT_TRUE(second.WaitFor([](const RouterState& s) {
    return s.sessions[0].publishes.size() == 4;
  }));
  Session on_second = second.Snapshot().sessions[0];
  EXPECT_THAT(on_second.PublishSeqs(), ElementsAre(3u, 4u, 5u, 6u));
  EXPECT_THAT(on_second.PublishKeys(),
              ElementsAre("ev-3", "ev-4", "ev-5", "ev-6"));
  v1::RouterFrame rest;
  for (uint64_t seq : {3, 4, 5, 6}) rest.add_publish_acks()->set_seq(seq);
  ASSERT_TRUE(second.Send(rest));
  ASSERT_TRUE(acks.WaitForCount(6));
  EXPECT_THAT(acks.Seqs(), ElementsAre(1u, 2u, 3u, 4u, 5u, 6u));
  EXPECT_EQ(first.Snapshot().sessions[0].publishes.size(), 5u);
}

// After a move, only the router a publish was last sent on answers for it:
// an ack from the router the client moved away from (here FAILED, on its
// new stream) is ignored. Once nothing is pending, publishes go back to the
// first router in config order.
TEST_F(RouterClientTest, AnAckFromTheRouterMovedAwayFromIsIgnored) {
  AckLog acks;
  TwoRouters routers(/*auto_ack=*/false);
  FakeRouter& first = routers.first;
  FakeRouter& second = routers.second;
  ScriptedHandler handler;
  RouterClient client(routers.Options(), &handler);
  client.Start();
  ASSERT_TRUE(WaitUntil([&] { return RouterStates(client) == "pa"; }));
  ASSERT_TRUE(client.Publish(MakeEvent("ev-1"), acks.Callback()).ok());
  ASSERT_TRUE(client.Publish(MakeEvent("ev-2"), acks.Callback()).ok());
  ASSERT_TRUE(first.WaitFor([](const RouterState& s) {
    return s.sessions[0].publishes.size() == 2;
  }));

  first.DropStream();
  ASSERT_TRUE(second.WaitFor([](const RouterState& s) {
    return s.sessions[0].publishes.size() == 2;
  }));
  // The first router is back; the publishes stay with the second.
  ASSERT_TRUE(WaitUntil([&] { return RouterStates(client) == "ap"; }))
      << RouterStates(client);
  v1::RouterFrame late;
  v1::PublishAck* failed = late.add_publish_acks();
  failed->set_seq(1);
  failed->set_outcome(v1::PublishAck::FAILED);
  late.add_publish_acks()->set_seq(2);
  ASSERT_TRUE(first.Send(late));
  // Frames of one stream are handled in order: once this delivery's result
  // is back, the acks before it were seen.
  ASSERT_TRUE(first.SendDeliveries({MakeDelivery(1, "C7")}));
  ASSERT_TRUE(first.WaitFor([](const RouterState& s) {
    return s.sessions.size() == 2 && s.sessions[1].Result(1) != nullptr;
  }));
  EXPECT_TRUE(acks.Seqs().empty());

  v1::RouterFrame stored;
  for (uint64_t seq : {1, 2}) {
    v1::PublishAck* ack = stored.add_publish_acks();
    ack->set_seq(seq);
    ack->set_outcome(v1::PublishAck::ACCEPTED);
  }
  ASSERT_TRUE(second.Send(stored));
  ASSERT_TRUE(acks.WaitForCount(2));
  for (const v1::PublishAck& ack : acks.Acks()) {
    EXPECT_EQ(ack.outcome(), v1::PublishAck::ACCEPTED) << ack.seq();
  }

  // Nothing pending: the first router publishes again.
  ASSERT_TRUE(client.Publish(MakeEvent("ev-3"), acks.Callback()).ok());
  ASSERT_TRUE(first.WaitFor([](const RouterState& s) {
    return s.sessions[1].publishes.size() == 1;
  }));
  EXPECT_THAT(first.Snapshot().sessions[1].PublishKeys(), ElementsAre("ev-3"));
  EXPECT_EQ(RouterStates(client), "pa");
  EXPECT_EQ(second.Snapshot().sessions[0].publishes.size(), 2u);
}

// Deliveries come from whichever router sends them; each result goes back
// on the stream its delivery came on (delivery ids are each router's own).
TEST_F(RouterClientTest, EachResultGoesBackToTheRouterItsDeliveryCameFrom) {
  TwoRouters routers(/*auto_ack=*/true);
  FakeRouter& first = routers.first;
  FakeRouter& second = routers.second;
  ScriptedHandler handler;
  RouterClient client(routers.Options(), &handler);
  client.Start();
  ASSERT_TRUE(WaitUntil([&] { return RouterStates(client) == "pa"; }));
  ASSERT_TRUE(first.SendDeliveries({MakeDelivery(1, "C1")}));
  ASSERT_TRUE(second.SendDeliveries({MakeDelivery(1, "C2")}));
  ASSERT_TRUE(first.WaitFor(
      [](const RouterState& s) { return s.sessions[0].Result(1) != nullptr; }));
  ASSERT_TRUE(second.WaitFor(
      [](const RouterState& s) { return s.sessions[0].Result(1) != nullptr; }));
  EXPECT_THAT(handler.Calls("C1"), ElementsAre(1u));
  EXPECT_THAT(handler.Calls("C2"), ElementsAre(1u));
  EXPECT_EQ(first.Snapshot().sessions[0].ResultCount(1), 1);
  EXPECT_EQ(second.Snapshot().sessions[0].ResultCount(1), 1);
}

// A router that cannot be reached does not keep the others from attaching;
// the client is attached while any router is.
TEST_F(RouterClientTest, AnUnreachableRouterDoesNotHoldTheOthersBack) {
  AckLog acks;
  FakeRouter second;
  TestServer second_server(&second);
  RouterClient::Options options = TestOptions("");
  options.addresses = {absl::StrCat("127.0.0.1:", UnusedPort()),
                       second_server.address()};
  RouterClient client(options, nullptr);
  client.Start();
  ASSERT_TRUE(WaitUntil([&] { return RouterStates(client) == "-p"; }));
  EXPECT_TRUE(client.attached());
  EXPECT_NE(client.session(), 0u);
  ASSERT_TRUE(client.Publish(MakeEvent("ev-1"), acks.Callback()).ok());
  ASSERT_TRUE(acks.WaitForCount(1));
  EXPECT_THAT(second.Snapshot().sessions[0].PublishKeys(), ElementsAre("ev-1"));
}

}  // namespace
}  // namespace imbridge::adapters
