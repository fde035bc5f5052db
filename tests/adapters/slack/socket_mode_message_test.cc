// Socket Mode frames -> what the client does with them
// (ParseSocketModeMessage), fed with literal frames.

#include <string>

#include "adapters/slack/socket_mode.h"
#include "gtest/gtest.h"

namespace imbridge::adapters::slack {
namespace {

using Kind = SocketModeMessage::Kind;

TEST(SocketModeMessage, EventsApiEnvelopeCarriesItsPayloadAndId) {
  SocketModeMessage m = ParseSocketModeMessage(
      R"({"type":"events_api","envelope_id":"e1","accepts_response_payload":false,
          "payload":{"type":"event_callback","event_id":"Ev1"}})");
  EXPECT_EQ(m.kind, Kind::kEvent);
  EXPECT_EQ(m.envelope_id, "e1");
  EXPECT_EQ(m.payload.value("event_id", ""), "Ev1");
}

TEST(SocketModeMessage, HelloDisconnectAndOtherEnvelopes) {
  EXPECT_EQ(ParseSocketModeMessage(R"({"type":"hello"})").kind, Kind::kHello);
  SocketModeMessage bye = ParseSocketModeMessage(
      R"({"type":"disconnect","reason":"refresh_requested"})");
  EXPECT_EQ(bye.kind, Kind::kDisconnect);
  EXPECT_EQ(bye.reason, "refresh_requested");
  SocketModeMessage other = ParseSocketModeMessage(
      R"({"type":"slash_commands","envelope_id":"e2","payload":{}})");
  EXPECT_EQ(other.kind, Kind::kOther);
  EXPECT_EQ(other.envelope_id, "e2");
  // An events_api envelope whose payload is not an object is acked only.
  EXPECT_EQ(ParseSocketModeMessage(
                R"({"type":"events_api","envelope_id":"e3","payload":[1]})")
                .kind,
            Kind::kOther);
}

TEST(SocketModeMessage, NotAJsonObjectIsMalformed) {
  EXPECT_EQ(ParseSocketModeMessage("").kind, Kind::kMalformed);
  EXPECT_EQ(ParseSocketModeMessage("{\"type\":").kind, Kind::kMalformed);
  EXPECT_EQ(ParseSocketModeMessage("[\"hello\"]").kind, Kind::kMalformed);
  EXPECT_EQ(ParseSocketModeMessage("\xff\xfe").kind, Kind::kMalformed);
}

// The client read "type", "envelope_id" and "reason" with json::value(),
// which throws when the member is there with another JSON type; on the
// connection's thread that ended the adapter (std::terminate). Such members
// now count as absent.
TEST(SocketModeMessage, MembersOfTheWrongTypeCountAsAbsent) {
  SocketModeMessage typed =
      ParseSocketModeMessage(R"({"type":1,"envelope_id":"e4"})");
  EXPECT_EQ(typed.kind, Kind::kOther);
  EXPECT_EQ(typed.envelope_id, "e4");
  SocketModeMessage id = ParseSocketModeMessage(
      R"({"type":"events_api","envelope_id":{"x":1},"payload":{}})");
  EXPECT_EQ(id.kind, Kind::kEvent);
  EXPECT_EQ(id.envelope_id, "");
  SocketModeMessage reason =
      ParseSocketModeMessage(R"({"type":"disconnect","reason":null})");
  EXPECT_EQ(reason.kind, Kind::kDisconnect);
  EXPECT_EQ(reason.reason, "");
}

}  // namespace
}  // namespace imbridge::adapters::slack
