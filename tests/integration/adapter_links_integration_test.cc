// Adapters' own runtime links and chat commands against the real router
// binary: links created and deleted over the Attach stream (idempotent,
// authorized by the adapter's accounts and ownership, config links
// untouchable), and "!bridge <word>" commands forwarded to the adapter that
// announced <word>, answered in the command's thread, whose link then routes.

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "adapters/common/connector.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "imbridge/v1/admin.grpc.pb.h"
#include "tests/integration/router_process.h"
#include "tests/integration/test_adapter.h"

namespace imbridge::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kToken[] = "links-test-adapter-token-0123";
constexpr char kAdminToken[] = "links-test-admin-token-456789";
constexpr absl::Duration kWait = absl::Seconds(20);

std::string Config() {
  return absl::StrCat("adapters:\n  - {name: tests, token: ", kToken, "}\n",
                      "admin_token: ", kAdminToken, "\n",
                      "store: {durability: normal}\n",
                      "dispatch: {initial_backoff_ms: 50, max_backoff_ms: "
                      "200}\n",
                      R"(links:
  - name: pair
    members:
      - {platform: alpha, account: a, chat_id: A1}
      - {platform: beta, account: b, chat_id: B1}
)");
}

v1::LinkMember Member(const std::string& platform, const std::string& account,
                      const std::string& chat, const std::string& thread = "") {
  v1::LinkMember m;
  m.set_platform(platform);
  m.set_account(account);
  m.set_chat_id(chat);
  m.set_thread_id(thread);
  return m;
}

v1::Link MakeLink(const std::string& name,
                  std::vector<v1::LinkMember> members) {
  v1::Link link;
  link.set_name(name);
  for (auto& m : members) *link.add_members() = std::move(m);
  return link;
}

class AdapterLinksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(router_.Start().ok());
    admin_ = v1::Admin::NewStub(grpc::CreateChannel(
        router_.address(), grpc::InsecureChannelCredentials()));
  }

  std::unique_ptr<TestAdapter> Adapter(const std::string& platform,
                                       const std::string& account,
                                       bool start = true) {
    auto a = std::make_unique<TestAdapter>(platform, account, router_.address(),
                                           kToken);
    if (start) {
      a->Start();
      EXPECT_TRUE(a->WaitAttached()) << platform;
    }
    return a;
  }

  std::vector<v1::LinkInfo> ListLinks() {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", absl::StrCat("Bearer ", kAdminToken));
    v1::ListLinksResponse resp;
    EXPECT_TRUE(admin_->ListLinks(&ctx, v1::ListLinksRequest(), &resp).ok());
    return {resp.links().begin(), resp.links().end()};
  }

  // Whether an adapter of `platform` is attached, as the router sees it.
  bool Attached(const std::string& platform) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", absl::StrCat("Bearer ", kAdminToken));
    v1::ListAdaptersResponse resp;
    EXPECT_TRUE(
        admin_->ListAdapters(&ctx, v1::ListAdaptersRequest(), &resp).ok());
    for (const v1::AdapterInfo& a : resp.adapters()) {
      if (a.platform() == platform) return true;
    }
    return false;
  }

  RouterProcess router_{Config()};
  std::unique_ptr<v1::Admin::Stub> admin_;
};

TEST_F(AdapterLinksTest, AdapterCreatesAndDeletesItsOwnLinks) {
  auto alpha = Adapter("alpha", "a");
  auto gamma = Adapter("gamma", "g");
  v1::Link mine = MakeLink(
      "alpha-gamma", {Member("alpha", "a", "A2"), Member("gamma", "g", "G1")});

  absl::StatusOr<v1::Link> created = alpha->client().CreateLink(mine, kWait);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->name(), "alpha-gamma");
  // It routes at once.
  alpha->Post("A2", "over the new link");
  ASSERT_TRUE(gamma->WaitForCalls(1));
  EXPECT_EQ(gamma->calls()[0].text, "over the new link");
  EXPECT_EQ(gamma->calls()[0].chat, "G1");

  // Idempotent; the same name with other members is refused.
  EXPECT_TRUE(alpha->client().CreateLink(mine, kWait).ok());
  v1::Link other = mine;
  other.mutable_members(1)->set_chat_id("G2");
  EXPECT_EQ(alpha->client().CreateLink(other, kWait).status().code(),
            absl::StatusCode::kAlreadyExists);
  // The config link's name is taken too.
  v1::Link clash = mine;
  clash.set_name("pair");
  EXPECT_EQ(alpha->client().CreateLink(clash, kWait).status().code(),
            absl::StatusCode::kAlreadyExists);

  // Owned by alpha, visible to the operator.
  bool listed = false;
  for (const v1::LinkInfo& info : ListLinks()) {
    if (info.link().name() != "alpha-gamma") continue;
    listed = true;
    EXPECT_EQ(info.source(), v1::RUNTIME);
    EXPECT_EQ(info.owner_platform(), "alpha");
  }
  EXPECT_TRUE(listed);

  // Another platform may not delete it, though it is a member.
  absl::Status by_gamma = gamma->client().DeleteLink("alpha-gamma", kWait);
  EXPECT_EQ(by_gamma.code(), absl::StatusCode::kPermissionDenied) << by_gamma;
  // Config links are never touched.
  EXPECT_EQ(alpha->client().DeleteLink("pair", kWait).code(),
            absl::StatusCode::kFailedPrecondition);

  ASSERT_TRUE(alpha->client().DeleteLink("alpha-gamma", kWait).ok());
  EXPECT_EQ(alpha->client().DeleteLink("alpha-gamma", kWait).code(),
            absl::StatusCode::kNotFound);
  for (const v1::LinkInfo& info : ListLinks()) {
    EXPECT_NE(info.link().name(), "alpha-gamma");
  }
}

TEST_F(AdapterLinksTest, AdapterMayOnlyLinkItsOwnChats) {
  auto alpha = Adapter("alpha", "a");
  // No member on alpha's account "a".
  v1::Link foreign = MakeLink(
      "foreign", {Member("beta", "b", "B9"), Member("gamma", "g", "G9")});
  absl::StatusOr<v1::Link> refused = alpha->client().CreateLink(foreign, kWait);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
  v1::Link other_account = MakeLink(
      "foreign", {Member("alpha", "z", "A9"), Member("gamma", "g", "G9")});
  EXPECT_EQ(alpha->client().CreateLink(other_account, kWait).status().code(),
            absl::StatusCode::kPermissionDenied);
  // Bad links are refused as such.
  EXPECT_EQ(
      alpha->client()
          .CreateLink(MakeLink("lonely", {Member("alpha", "a", "A9")}), kWait)
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
  for (const v1::LinkInfo& info : ListLinks()) {
    EXPECT_EQ(info.link().name(), "pair");
  }

  // A link the operator created is not the adapter's to delete.
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", absl::StrCat("Bearer ", kAdminToken));
  v1::CreateLinkRequest create;
  *create.mutable_link() = MakeLink(
      "by-operator", {Member("alpha", "a", "A3"), Member("beta", "b", "B3")});
  v1::LinkInfo info;
  ASSERT_TRUE(admin_->CreateLink(&ctx, create, &info).ok());
  EXPECT_EQ(alpha->client().DeleteLink("by-operator", kWait).code(),
            absl::StatusCode::kPermissionDenied);

  // Not attached: fails at once, for the caller to retry.
  auto detached = Adapter("alpha", "a", /*start=*/false);
  EXPECT_EQ(detached->client()
                .CreateLink(MakeLink("x", {Member("alpha", "a", "A4"),
                                           Member("beta", "b", "B4")}),
                            kWait)
                .status()
                .code(),
            absl::StatusCode::kUnavailable);
}

// A "gamma" adapter that answers "!bridge gamma start <chat>" by linking a new
// thread of the command's chat with its chat <chat> and answering there.
class GammaCommands {
 public:
  explicit GammaCommands(TestAdapter* adapter) : adapter_(adapter) {
    EXPECT_TRUE(adapter_->client()
                    .OnChatCommand({"gamma"},
                                   [this](const v1::ChatCommand& command) {
                                     return Handle(command);
                                   })
                    .ok());
  }

  std::vector<v1::ChatCommand> commands() const {
    absl::MutexLock lock(&mu_);
    return commands_;
  }

 private:
  v1::ChatCommandAnswer Handle(const v1::ChatCommand& command) {
    {
      absl::MutexLock lock(&mu_);
      commands_.push_back(command);
    }
    v1::ChatCommandAnswer answer;
    if (!absl::StartsWith(command.args(), "start ")) {
      answer.set_text("usage: !bridge gamma start <chat>");
      return answer;
    }
    std::string chat = command.args().substr(6);
    v1::ChannelRef thread = adapters::CommandThread(command);
    v1::Link link = MakeLink(absl::StrCat("gamma-", chat),
                             {Member(thread.platform(), thread.account(),
                                     thread.chat_id(), thread.thread_id()),
                              Member("gamma", "g", chat)});
    absl::StatusOr<v1::Link> created =
        adapter_->client().CreateLink(link, kWait);
    if (!created.ok()) {
      answer.set_text(absl::StrCat("failed: ", created.status().ToString()));
      return answer;
    }
    answer.set_text(absl::StrCat("Talking to ", chat, " in this thread"));
    answer.set_in_command_thread(true);
    return answer;
  }

  TestAdapter* const adapter_;
  mutable absl::Mutex mu_;
  std::vector<v1::ChatCommand> commands_ ABSL_GUARDED_BY(mu_);
};

TEST_F(AdapterLinksTest, CommandIsAnsweredInItsThreadAndItsLinkRoutes) {
  auto alpha = Adapter("alpha", "a");
  auto beta = Adapter("beta", "b");
  auto gamma = Adapter("gamma", "g", /*start=*/false);
  GammaCommands handler(gamma.get());
  gamma->Start();
  ASSERT_TRUE(gamma->WaitAttached());

  std::string command_id = alpha->Post("A1", "!bridge Gamma start G7");
  ASSERT_TRUE(alpha->WaitForCalls(1));
  v1::Delivery answer = alpha->deliveries()[0];
  EXPECT_EQ(answer.event().posted().text().text(),
            "Talking to G7 in this thread");
  EXPECT_EQ(answer.sender_name(), "imbridge");
  EXPECT_EQ(answer.target().chat_id(), "A1");
  EXPECT_EQ(answer.target().thread_id(), command_id);
  EXPECT_EQ(answer.thread_root_target_id(), command_id);

  std::vector<v1::ChatCommand> commands = handler.commands();
  ASSERT_EQ(commands.size(), 1u);
  const v1::ChatCommand& forwarded = commands[0];
  EXPECT_EQ(forwarded.word(), "gamma");
  EXPECT_EQ(forwarded.args(), "start G7");
  EXPECT_EQ(forwarded.event().channel().chat_id(), "A1");
  EXPECT_EQ(forwarded.event().posted().message_id(), command_id);
  EXPECT_EQ(forwarded.event().posted().sender().id(), "user-alpha");

  // A message in the new thread reaches gamma's chat through the new link.
  v1::Event in_thread;
  in_thread.mutable_channel()->set_chat_id("A1");
  in_thread.mutable_channel()->set_thread_id(command_id);
  in_thread.mutable_posted()->set_message_id("A1-in-thread");
  in_thread.mutable_posted()->set_thread_root_id(command_id);
  in_thread.mutable_posted()->mutable_sender()->set_id("user-alpha");
  in_thread.mutable_posted()->mutable_text()->set_text("hello G7");
  EXPECT_EQ(alpha->Publish(in_thread).outcome(), v1::PublishAck::ACCEPTED);
  ASSERT_TRUE(gamma->WaitForCalls(1));
  EXPECT_EQ(gamma->calls()[0].chat, "G7");
  EXPECT_EQ(gamma->calls()[0].text, "hello G7");
  // The command and its answer stayed in alpha's chat; the thread message
  // also went to beta through the whole-chat link "pair".
  ASSERT_TRUE(beta->WaitForCalls(1));
  for (const auto& call : beta->calls()) {
    EXPECT_EQ(call.text, "hello G7");
  }
}

TEST_F(AdapterLinksTest, UnknownWordGetsHelpAndDetachedAdapterIsNamed) {
  auto alpha = Adapter("alpha", "a");
  auto gamma = Adapter("gamma", "g", /*start=*/false);
  GammaCommands handler(gamma.get());
  gamma->Start();
  ASSERT_TRUE(gamma->WaitAttached());

  alpha->Post("A1", "!bridge nosuch thing");
  ASSERT_TRUE(alpha->WaitForCalls(1));
  std::string help = alpha->calls()[0].text;
  EXPECT_THAT(help, HasSubstr("!bridge who"));
  EXPECT_THAT(help,
              HasSubstr("!bridge gamma ...: answered by the gamma adapter"));

  // Answered where it was sent (no thread asked for).
  alpha->Post("A1", "!bridge gamma");
  ASSERT_TRUE(alpha->WaitForCalls(2));
  EXPECT_EQ(alpha->calls()[1].text, "usage: !bridge gamma start <chat>");
  EXPECT_TRUE(alpha->deliveries()[1].target().thread_id().empty());

  gamma->Stop();
  absl::Time deadline = absl::Now() + kWait;
  while (Attached("gamma") && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_FALSE(Attached("gamma"));
  alpha->Post("A1", "!bridge gamma start G8");
  ASSERT_TRUE(alpha->WaitForCalls(3));
  EXPECT_THAT(alpha->calls()[2].text,
              HasSubstr("The gamma adapter, which answers 'gamma', is not "
                        "attached to the router now"));
}

TEST_F(AdapterLinksTest, CommandOfAnAdapterThatDetachedGoesToTheNextOne) {
  auto alpha = Adapter("alpha", "a");
  absl::Notification received;
  absl::Notification release;
  // The command's event key as each adapter saw it.
  absl::Mutex key_mu;
  std::string first_key;
  std::string key;
  auto first = Adapter("gamma", "g", /*start=*/false);
  ASSERT_TRUE(first->client()
                  .OnChatCommand({"gamma"},
                                 [&](const v1::ChatCommand& c) {
                                   {
                                     absl::MutexLock lock(&key_mu);
                                     first_key = c.event().key();
                                   }
                                   received.Notify();
                                   release.WaitForNotification();
                                   v1::ChatCommandAnswer answer;
                                   answer.set_text("from the first");
                                   return answer;
                                 })
                  .ok());
  first->Start();
  ASSERT_TRUE(first->WaitAttached());

  // The publish is acknowledged only once the answer is stored.
  std::thread command([&] { alpha->Post("A1", "!bridge gamma ping"); });
  EXPECT_TRUE(received.WaitForNotificationWithTimeout(kWait));
  // The first adapter goes away before answering.
  std::thread stop([&] { first->Stop(); });
  absl::Time deadline = absl::Now() + kWait;
  while (Attached("gamma") && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_FALSE(Attached("gamma"));
  release.Notify();
  stop.join();

  auto second = Adapter("gamma", "g", /*start=*/false);
  EXPECT_TRUE(second->client()
                  .OnChatCommand({"gamma"},
                                 [&](const v1::ChatCommand& c) {
                                   absl::MutexLock lock(&key_mu);
                                   key = c.event().key();
                                   v1::ChatCommandAnswer answer;
                                   answer.set_text("from the second");
                                   return answer;
                                 })
                  .ok());
  second->Start();
  EXPECT_TRUE(alpha->WaitForCalls(1));
  // (Threads are joined before any assertion can return.)
  command.join();
  ASSERT_EQ(alpha->calls().size(), 1u);
  EXPECT_EQ(alpha->calls()[0].text, "from the second");
  {
    absl::MutexLock lock(&key_mu);
    EXPECT_FALSE(key.empty());
    EXPECT_EQ(key, first_key);
  }
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(alpha->calls().size(), 1u);
}

}  // namespace
}  // namespace imbridge::testing
