// Fuzzes the Botsplash adapter's inbound path: a reply webhook's body read
// through the reply mapping (MapReply, with the default paths and with
// configured nested ones, as the handler does once the secret checked out),
// the visitor kept in the adapter's state read back (VisitorFromJson), an
// Open API answer's media key and error reason (MediaKeyOf, ErrorMessageOf),
// JSON paths (CheckJsonPath, FindJsonPath) and the words of
// `!bridge botsplash start` (ParseStart). The first byte picks the mapping;
// the rest is the body.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "adapters/botsplash/mapping.h"
#include "fuzz/fuzz_support.h"
#include "imbridge/v1/botsplash_config.pb.h"
#include "nlohmann/json.hpp"

namespace {

namespace botsplash = imbridge::adapters::botsplash;
using imbridge::fuzz::Check;

// The year 10000 in milliseconds: times are refused from there on.
constexpr int64_t kYear10000Ms = 253402300800000;

botsplash::ReplyMapping NestedMapping() {
  imbridge::v1::BotsplashReplyMapping config;
  config.set_visitor_id("message.visitor.clientVisitorId");
  config.set_text("message.body");
  config.set_message_id("message.messageId");
  config.set_media_url("message.attachments.0.url");
  config.set_time("message.sentAt");
  config.set_name("message.visitor.firstName");
  return botsplash::MappingOf(config);
}

void CheckReply(const nlohmann::json& body,
                const botsplash::ReplyMapping& mapping) {
  absl::StatusOr<botsplash::Reply> reply = botsplash::MapReply(body, mapping);
  if (!reply.ok()) {
    Check(absl::IsInvalidArgument(reply.status()),
          "MapReply refuses with kInvalidArgument");
    const std::string message(reply.status().message());
    Check(absl::StrContains(message, " (" + mapping.visitor_id + ")") ||
              absl::StrContains(message, " (" + mapping.message_id + ")") ||
              absl::StrContains(message, " (" + mapping.text + ")") ||
              absl::StrContains(message, " (" + mapping.time + ")"),
          "a refusal names the field's path");
    return;
  }
  Check(!reply->visitor_id.empty() && !reply->message_id.empty(),
        "a reply has a visitor and a message id");
  Check(!reply->text.empty() || !reply->media_url.empty(),
        "a reply has a text or a file");
  Check(reply->time_ms >= 0 && reply->time_ms < kYear10000Ms,
        "a reply's time is 0 or between 1970 and 9999");
  Check(botsplash::VisitorOfChat(botsplash::VisitorChat(reply->visitor_id)) ==
            reply->visitor_id,
        "the visitor's chat names the visitor");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool nested = data[0] % 2 == 1;
  absl::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);

  const std::string reason = botsplash::ErrorMessageOf(body);
  Check(!reason.empty(), "an error answer has a reason");

  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_discarded()) {
    if (j.is_object()) {
      CheckReply(j, nested ? NestedMapping() : botsplash::ReplyMapping());
    }
    botsplash::MediaKeyOf(j);
    botsplash::Visitor visitor = botsplash::VisitorFromJson(j);
    botsplash::Visitor again =
        botsplash::VisitorFromJson(botsplash::VisitorJson(visitor));
    Check(again.client_visitor_id == visitor.client_visitor_id &&
              again.first_name == visitor.first_name &&
              again.last_name == visitor.last_name &&
              again.phone_number == visitor.phone_number &&
              again.agent_client_user_id == visitor.agent_client_user_id &&
              again.team_code == visitor.team_code,
          "a visitor survives VisitorJson and VisitorFromJson");
  }

  // The body as a JSON path, read in the body (a path that CheckJsonPath
  // refuses is never configured).
  if (botsplash::CheckJsonPath(body).ok() && !j.is_discarded()) {
    botsplash::FindJsonPath(j, body);
  }

  // The body as the words after `!bridge botsplash start`.
  std::vector<std::string> words = absl::StrSplit(body, ' ', absl::SkipEmpty());
  absl::StatusOr<botsplash::StartRequest> start = botsplash::ParseStart(words);
  if (start.ok()) {
    absl::string_view digits = start->phone;
    absl::ConsumePrefix(&digits, "+");
    Check(digits.size() >= 7 && digits.size() <= 15,
          "a started phone has 7 to 15 digits");
    for (char c : digits) Check(absl::ascii_isdigit(c), "a phone is digits");
    Check(!start->first_name.empty(), "a started visitor has a first name");
    Check(absl::StartsWith(botsplash::VisitorIdForPhone(start->phone), "imb-"),
          "a phone's visitor id starts with imb-");
  }
  return 0;
}
