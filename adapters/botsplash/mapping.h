#ifndef IMBRIDGE_ADAPTERS_BOTSPLASH_MAPPING_H_
#define IMBRIDGE_ADAPTERS_BOTSPLASH_MAPPING_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "imbridge/v1/botsplash_config.pb.h"
#include "nlohmann/json.hpp"

// The Botsplash wire format as the adapter speaks it: the request bodies of
// the Open API calls (../shared/seeds/002: listener submit, send direct
// message, update visitor by external id), the reply webhook's configurable
// field mapping, and the `!bridge botsplash start` arguments. Pure functions:
// thread-safe, no I/O.

namespace imbridge::adapters::botsplash {

// A customer's channel is "visitor:<clientVisitorId>".
inline constexpr absl::string_view kVisitorPrefix = "visitor:";

// "visitor:<id>" for `client_visitor_id`.
std::string VisitorChat(absl::string_view client_visitor_id);
// The clientVisitorId of a chat id, or "" when it is not "visitor:<id>"
// with a non-empty id.
std::string VisitorOfChat(absl::string_view chat_id);

// What the adapter knows of a visitor (the fields of Botsplash's
// VisitorInfo it fills); empty fields are left out of the bodies.
struct Visitor {
  std::string client_visitor_id;
  std::string first_name;
  std::string last_name;
  std::string phone_number;
  std::string agent_client_user_id;
  std::string team_code;
};

// The `visitor` object of a body: the non-empty fields, by their Botsplash
// names (clientVisitorId, firstName, lastName, phoneNumber,
// agentClientUserId, teamCode).
nlohmann::json VisitorJson(const Visitor& visitor);
// The visitor kept in the adapter's state (VisitorJson) read back; fields
// of other types are ignored.
Visitor VisitorFromJson(const nlohmann::json& j);

// Listener submit: {"visitor": {...}, "args": {"message": ...}} ("args"
// only with a message).
nlohmann::json ListenerBody(const Visitor& visitor, absl::string_view message);

// Send direct message to visitor: {"text": ..., "visitor": {...}}, plus
// "mediaKey" for an uploaded file (the key the upload answered).
nlohmann::json DirectMessageBody(absl::string_view text, const Visitor& visitor,
                                 absl::string_view media_key = "");

// Update visitor by external id, assigning the agent: {"updateOnly": true,
// "agentUpdate": true, "retainAccess": true, "retainPhones": true,
// "visitor": {...}}.
nlohmann::json UpdateVisitorBody(const Visitor& visitor);

// The media key in an upload's answer: "key" (the Open API) or "mediaKey"
// (bspmediaupload); "" when neither is a non-empty string.
std::string MediaKeyOf(const nlohmann::json& answer);

// Botsplash's own reason in an error answer: "message", "error" (a string,
// or an object with "message"), or "errors"[0]; else the body's first 200
// bytes.
std::string ErrorMessageOf(absl::string_view body);

// ---------------------------------------------------------------------------
// The reply webhook.

// Dotted JSON paths ("a.b.0.c": a number indexes an array) of a reply's
// fields; defaults as in botsplash_config.proto.
struct ReplyMapping {
  std::string visitor_id = "visitor.clientVisitorId";
  std::string text = "text";
  std::string message_id = "id";
  std::string media_url = "mediaUrl";
  std::string time = "createdAt";
  std::string name;  // Empty: visitor.firstName + visitor.lastName.
};

// The mapping of `config`, defaults filled in.
ReplyMapping MappingOf(const v1::BotsplashReplyMapping& config);

// OK for a usable path (non-empty segments of letters, digits, _, - and $);
// kInvalidArgument saying why.
absl::Status CheckJsonPath(absl::string_view path);

// The value at `path` in `root`, or nullptr.
const nlohmann::json* FindJsonPath(const nlohmann::json& root,
                                   absl::string_view path);

// One customer reply as the mapping found it.
struct Reply {
  std::string visitor_id;
  std::string message_id;
  std::string text;
  std::string media_url;
  int64_t time_ms = 0;  // 0: the body had none.
  std::string name;     // The customer's name; may be empty.
};

// Maps a reply webhook's body. kInvalidArgument naming the missing field
// and its path ("visitor_id (visitor.clientVisitorId) is missing") when the
// visitor id or the message id is missing, empty or not a string or number,
// when neither text nor media_url is there, or when a time is given that
// cannot be read.
absl::StatusOr<Reply> MapReply(const nlohmann::json& body,
                               const ReplyMapping& mapping);

// ---------------------------------------------------------------------------
// `!bridge botsplash start <phone> <first name> [last name]`.

struct StartRequest {
  std::string phone;  // Digits, with a leading '+' if it had one.
  std::string first_name;
  std::string last_name;
};

// Parses the words after "start". kInvalidArgument with the usage when the
// phone is not 7-15 digits (spaces, dashes, dots and brackets are dropped;
// one leading '+' kept) or the first name is missing.
absl::StatusOr<StartRequest> ParseStart(const std::vector<std::string>& words);

// The clientVisitorId the bridge gives a customer started by phone:
// "imb-" and the phone's digits (the same phone is the same visitor).
std::string VisitorIdForPhone(absl::string_view phone);

}  // namespace imbridge::adapters::botsplash

#endif  // IMBRIDGE_ADAPTERS_BOTSPLASH_MAPPING_H_
