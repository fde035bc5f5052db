// The connector interfaces: capabilities derived from the interfaces a
// connector implements, and the dispatcher that routes each delivery to the
// interface for its kind.

#include "adapters/common/connector.h"

#include <stdexcept>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::adapters {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Only the required interface; records what it was asked.
class TextOnly : public Connector {
 public:
  std::vector<std::string> Accounts() const override { return {"bot1"}; }
  absl::StatusOr<std::vector<std::string>> SendMessage(
      const v1::Delivery& delivery) override {
    calls.push_back("send " + delivery.idempotency_key());
    if (throws) throw std::runtime_error("boom");
    if (!answer.ok()) return answer;
    return std::vector<std::string>{"m1", "m2"};
  }

  std::vector<std::string> calls;
  absl::Status answer;
  bool throws = false;
};

// Every optional interface; presence can be switched off as by a config.
class Everything : public TextOnly,
                   public MessageEditor,
                   public MessageDeleter,
                   public ThreadedMessages,
                   public FileMessages,
                   public PresenceRenderer,
                   public MembershipRenderer {
 public:
  std::vector<std::string> Accounts() const override {
    return {"bot1", "bot2"};
  }
  absl::Status EditMessage(const v1::Delivery& delivery) override {
    calls.push_back("edit " + delivery.target_message_ids(0));
    return answer;
  }
  absl::Status DeleteMessage(const v1::Delivery& delivery) override {
    calls.push_back("delete " + delivery.target_message_ids(0));
    return answer;
  }
  absl::Status SendPresence(const v1::Delivery& delivery) override {
    calls.push_back("presence " + delivery.event().presence().user().id());
    return answer;
  }
  absl::StatusOr<std::vector<std::string>> SendMembership(
      const v1::Delivery& delivery) override {
    calls.push_back("membership " + delivery.event().membership().user().id());
    if (!answer.ok()) return answer;
    return std::vector<std::string>{"notice"};
  }
  bool Offers(Capability capability) const override {
    return capability != Capability::kPresence || relay_presence;
  }

  bool relay_presence = true;
};

// Edits and threads only.
class EditsAndThreads : public TextOnly,
                        public MessageEditor,
                        public ThreadedMessages {
 public:
  absl::Status EditMessage(const v1::Delivery&) override {
    calls.push_back("edit");
    return absl::OkStatus();
  }
};

v1::Delivery To(const std::string& account) {
  v1::Delivery d;
  d.set_id(7);
  d.set_idempotency_key("k7");
  d.mutable_target()->set_platform("alpha");
  d.mutable_target()->set_account(account);
  d.mutable_target()->set_chat_id("C1");
  return d;
}

v1::Delivery Posted(const std::string& account = "bot1") {
  v1::Delivery d = To(account);
  d.mutable_event()->mutable_posted()->mutable_text()->set_text("hi");
  return d;
}

v1::Delivery Edited() {
  v1::Delivery d = To("bot1");
  d.mutable_event()->mutable_edited()->mutable_text()->set_text("hi!");
  d.add_target_message_ids("m1");
  return d;
}

v1::Delivery Deleted() {
  v1::Delivery d = To("bot1");
  d.mutable_event()->mutable_deleted();
  d.add_target_message_ids("m1");
  return d;
}

v1::Delivery Presence() {
  v1::Delivery d = To("bot1");
  d.mutable_event()->mutable_presence()->mutable_user()->set_id("U1");
  return d;
}

v1::Delivery Membership() {
  v1::Delivery d = To("bot1");
  d.mutable_event()->mutable_membership()->mutable_user()->set_id("U2");
  d.mutable_event()->mutable_membership()->set_joined(true);
  return d;
}

TEST(ConnectorCapabilitiesTest, FollowTheInterfacesImplemented) {
  TextOnly text_only;
  EXPECT_THAT(ConnectorCapabilities(text_only), IsEmpty());
  EditsAndThreads some;
  EXPECT_THAT(ConnectorCapabilities(some), ElementsAre("edits", "threads"));
  Everything all;
  EXPECT_THAT(ConnectorCapabilities(all),
              ElementsAre("edits", "deletes", "threads", "files", "presence",
                          "membership"));
}

TEST(ConnectorCapabilitiesTest, AConnectorMayWithholdOneItImplements) {
  Everything all;
  all.relay_presence = false;
  EXPECT_THAT(
      ConnectorCapabilities(all),
      ElementsAre("edits", "deletes", "threads", "files", "membership"));
}

TEST(CapabilityNameTest, NamesAsInHello) {
  EXPECT_EQ(CapabilityName(Capability::kEdits), "edits");
  EXPECT_EQ(CapabilityName(Capability::kDeletes), "deletes");
  EXPECT_EQ(CapabilityName(Capability::kThreads), "threads");
  EXPECT_EQ(CapabilityName(Capability::kFiles), "files");
  EXPECT_EQ(CapabilityName(Capability::kPresence), "presence");
  EXPECT_EQ(CapabilityName(Capability::kMembership), "membership");
}

TEST(ConnectorDeliveryHandlerTest, RoutesEachKindToItsInterface) {
  Everything connector;
  ConnectorDeliveryHandler handler(&connector);

  absl::StatusOr<std::vector<std::string>> ids = handler.Deliver(Posted());
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_THAT(*ids, ElementsAre("m1", "m2"));

  ids = handler.Deliver(Edited());
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_THAT(*ids, IsEmpty());
  ids = handler.Deliver(Deleted());
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_THAT(*ids, IsEmpty());
  ids = handler.Deliver(Presence());
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_THAT(*ids, IsEmpty());
  ids = handler.Deliver(Membership());
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_THAT(*ids, ElementsAre("notice"));

  EXPECT_THAT(connector.calls, ElementsAre("send k7", "edit m1", "delete m1",
                                           "presence U1", "membership U2"));
}

TEST(ConnectorDeliveryHandlerTest, EveryServedAccountIsTaken) {
  Everything connector;
  ConnectorDeliveryHandler handler(&connector);
  EXPECT_TRUE(handler.Deliver(Posted("bot2")).ok());
  EXPECT_THAT(connector.calls, ElementsAre("send k7"));
}

TEST(ConnectorDeliveryHandlerTest, FailuresPassThroughAsTheyAre) {
  Everything connector;
  connector.answer = RetryableError("slow down", absl::Seconds(3));
  ConnectorDeliveryHandler handler(&connector);
  for (const v1::Delivery& d :
       {Posted(), Edited(), Deleted(), Presence(), Membership()}) {
    absl::StatusOr<std::vector<std::string>> ids = handler.Deliver(d);
    ASSERT_FALSE(ids.ok());
    EXPECT_TRUE(IsRetryable(ids.status()));
    EXPECT_EQ(RetryAfter(ids.status()), absl::Seconds(3));
  }
  connector.answer = absl::PermissionDeniedError("not in channel");
  absl::StatusOr<std::vector<std::string>> ids = handler.Deliver(Edited());
  EXPECT_EQ(ids.status().code(), absl::StatusCode::kPermissionDenied);
}

TEST(ConnectorDeliveryHandlerTest, AKindNotImplementedIsPermanentAndNotCalled) {
  EditsAndThreads connector;
  ConnectorDeliveryHandler handler(&connector);
  for (const auto& [delivery, name] :
       std::vector<std::pair<v1::Delivery, std::string>>{
           {Deleted(), "deletes"},
           {Presence(), "presence"},
           {Membership(), "membership"}}) {
    absl::StatusOr<std::vector<std::string>> ids = handler.Deliver(delivery);
    ASSERT_FALSE(ids.ok()) << name;
    EXPECT_EQ(ids.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_FALSE(IsRetryable(ids.status()));
    EXPECT_THAT(ids.status().message(), HasSubstr(name));
  }
  EXPECT_THAT(connector.calls, IsEmpty());
  EXPECT_TRUE(handler.Deliver(Edited()).ok());
  EXPECT_THAT(connector.calls, ElementsAre("edit"));
}

TEST(ConnectorDeliveryHandlerTest, AWithheldCapabilityIsNotCalled) {
  Everything connector;
  connector.relay_presence = false;
  ConnectorDeliveryHandler handler(&connector);
  absl::StatusOr<std::vector<std::string>> ids = handler.Deliver(Presence());
  EXPECT_EQ(ids.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(connector.calls, IsEmpty());
}

TEST(ConnectorDeliveryHandlerTest, AnAccountNotServedIsRefusedBeforeTheCall) {
  TextOnly connector;
  ConnectorDeliveryHandler handler(&connector);
  absl::StatusOr<std::vector<std::string>> ids =
      handler.Deliver(Posted("stranger"));
  EXPECT_EQ(ids.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(ids.status().message(), HasSubstr("'stranger'"));
  EXPECT_THAT(connector.calls, IsEmpty());
}

TEST(ConnectorDeliveryHandlerTest, AnEventWithoutAKindIsInvalid) {
  TextOnly connector;
  ConnectorDeliveryHandler handler(&connector);
  absl::StatusOr<std::vector<std::string>> ids = handler.Deliver(To("bot1"));
  EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(connector.calls, IsEmpty());
}

TEST(ConnectorDeliveryHandlerTest, BehindTheBarrierAThrowIsAPermanentError) {
  TextOnly connector;
  connector.throws = true;
  ConnectorDeliveryHandler handler(&connector);
  absl::StatusOr<std::vector<std::string>> ids =
      DeliverGuarded(handler, Posted());
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(ids.status().message(), HasSubstr("boom"));
  // The handler keeps serving.
  connector.throws = false;
  EXPECT_TRUE(DeliverGuarded(handler, Posted()).ok());
}

}  // namespace
}  // namespace imbridge::adapters
