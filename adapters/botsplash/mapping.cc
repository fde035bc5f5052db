#include "adapters/botsplash/mapping.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"

namespace imbridge::adapters::botsplash {
namespace {

using json = nlohmann::json;

constexpr char kStartUsage[] =
    "usage: !bridge botsplash start <phone> <first name> [last name]";

void Put(json& j, const char* name, const std::string& value) {
  if (!value.empty()) j[name] = value;
}

std::string StringOf(const json& j, const char* name) {
  auto it = j.find(name);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// A JSON string or integer as a string; nullopt-like "" otherwise.
bool ScalarText(const json& v, std::string* out) {
  if (v.is_string()) {
    *out = v.get<std::string>();
    return true;
  }
  // Unsigned first: is_number_integer() is true for both, and an id above
  // INT64_MAX read as int64_t would wrap around.
  if (v.is_number_unsigned()) {
    *out = absl::StrCat(v.get<uint64_t>());
    return true;
  }
  if (v.is_number_integer()) {
    *out = absl::StrCat(v.get<int64_t>());
    return true;
  }
  return false;
}

absl::Status Missing(absl::string_view field, absl::string_view path) {
  return absl::InvalidArgumentError(
      absl::StrCat(field, " (", path, ") is missing"));
}

// The year 10000 in Unix milliseconds: later times are refused (they are
// no reply's, and a double beyond int64_t cannot be converted).
constexpr int64_t kYear10000Ms = 253402300800000;

// Unix seconds or milliseconds (a number or digits), or RFC 3339; a time
// after 1970 and before the year 10000.
bool ParseTime(const json& v, int64_t* ms) {
  double number = 0;
  if (v.is_number()) {
    number = v.get<double>();
  } else if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (!absl::SimpleAtod(s, &number)) {
      absl::Time t;
      std::string error;
      if (!absl::ParseTime(absl::RFC3339_full, s, &t, &error)) return false;
      *ms = absl::ToUnixMillis(t);
      return *ms > 0 && *ms < kYear10000Ms;
    }
  } else {
    return false;
  }
  // Before 2001-09-09 in milliseconds is after 33658 in seconds: anything
  // above 1e11 is taken as milliseconds.
  double millis = number > 1e11 ? number : number * 1000;
  // Written so that NaN is refused too.
  if (!(millis > 0 && millis < static_cast<double>(kYear10000Ms))) {
    return false;
  }
  *ms = static_cast<int64_t>(millis);
  return true;
}

}  // namespace

std::string VisitorChat(absl::string_view client_visitor_id) {
  return absl::StrCat(kVisitorPrefix, client_visitor_id);
}

std::string VisitorOfChat(absl::string_view chat_id) {
  if (!absl::ConsumePrefix(&chat_id, kVisitorPrefix)) return "";
  return std::string(chat_id);
}

// The visitor's fields by their Botsplash names, for VisitorJson and
// VisitorFromJson.
constexpr std::pair<const char*, std::string Visitor::*> kVisitorFields[] = {
    {"clientVisitorId", &Visitor::client_visitor_id},
    {"agentClientUserId", &Visitor::agent_client_user_id},
    {"teamCode", &Visitor::team_code},
    {"firstName", &Visitor::first_name},
    {"lastName", &Visitor::last_name},
    {"phoneNumber", &Visitor::phone_number},
};

json VisitorJson(const Visitor& v) {
  json j = json::object();
  for (const auto& [name, field] : kVisitorFields) Put(j, name, v.*field);
  return j;
}

Visitor VisitorFromJson(const json& j) {
  Visitor v;
  if (!j.is_object()) return v;
  for (const auto& [name, field] : kVisitorFields) v.*field = StringOf(j, name);
  return v;
}

json ListenerBody(const Visitor& visitor, absl::string_view message) {
  json body = {{"visitor", VisitorJson(visitor)}};
  if (!message.empty()) body["args"] = {{"message", std::string(message)}};
  return body;
}

json DirectMessageBody(absl::string_view text, const Visitor& visitor,
                       absl::string_view media_key) {
  json body = {{"text", std::string(text)}, {"visitor", VisitorJson(visitor)}};
  if (!media_key.empty()) body["mediaKey"] = std::string(media_key);
  return body;
}

json UpdateVisitorBody(const Visitor& visitor) {
  return {{"updateOnly", true},
          {"agentUpdate", true},
          {"retainAccess", true},
          {"retainPhones", true},
          {"visitor", VisitorJson(visitor)}};
}

std::string MediaKeyOf(const json& answer) {
  if (!answer.is_object()) return "";
  std::string key = StringOf(answer, "key");
  return key.empty() ? StringOf(answer, "mediaKey") : key;
}

std::string ErrorMessageOf(absl::string_view body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_object()) {
    std::string m = StringOf(j, "message");
    if (!m.empty()) return m;
    auto e = j.find("error");
    if (e != j.end() && e->is_string() &&
        !e->get_ref<const std::string&>().empty()) {
      return e->get<std::string>();
    }
    if (e != j.end() && e->is_object()) {
      m = StringOf(*e, "message");
      if (!m.empty()) return m;
    }
    auto errors = j.find("errors");
    if (errors != j.end() && errors->is_array() && !errors->empty()) {
      const json& first = errors->front();
      if (first.is_string() && !first.get_ref<const std::string&>().empty()) {
        return first.get<std::string>();
      }
      if (first.is_object() && !StringOf(first, "message").empty()) {
        return StringOf(first, "message");
      }
    }
  }
  std::string raw(body.substr(0, 200));
  return raw.empty() ? "no reason given" : raw;
}

ReplyMapping MappingOf(const v1::BotsplashReplyMapping& c) {
  ReplyMapping m;
  if (!c.visitor_id().empty()) m.visitor_id = c.visitor_id();
  if (!c.text().empty()) m.text = c.text();
  if (!c.message_id().empty()) m.message_id = c.message_id();
  if (!c.media_url().empty()) m.media_url = c.media_url();
  if (!c.time().empty()) m.time = c.time();
  m.name = c.name();
  return m;
}

absl::Status CheckJsonPath(absl::string_view path) {
  if (path.empty()) return absl::InvalidArgumentError("empty path");
  for (absl::string_view segment : absl::StrSplit(path, '.')) {
    if (segment.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", path, "' has an empty segment"));
    }
    bool ok = std::all_of(segment.begin(), segment.end(), [](char c) {
      return absl::ascii_isalnum(c) || c == '_' || c == '-' || c == '$';
    });
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "'", path, "': segments are letters, digits, _, - and $"));
    }
  }
  return absl::OkStatus();
}

const json* FindJsonPath(const json& root, absl::string_view path) {
  const json* at = &root;
  for (absl::string_view segment : absl::StrSplit(path, '.')) {
    if (at->is_object()) {
      auto it = at->find(std::string(segment));
      if (it == at->end()) return nullptr;
      at = &*it;
    } else if (at->is_array()) {
      size_t index = 0;
      if (!absl::SimpleAtoi(segment, &index) || index >= at->size()) {
        return nullptr;
      }
      at = &(*at)[index];
    } else {
      return nullptr;
    }
  }
  return at;
}

absl::StatusOr<Reply> MapReply(const json& body, const ReplyMapping& m) {
  Reply r;
  auto scalar = [&](const std::string& path, std::string* out) {
    const json* v = FindJsonPath(body, path);
    return v != nullptr && ScalarText(*v, out) && !out->empty();
  };
  if (!scalar(m.visitor_id, &r.visitor_id)) {
    return Missing("visitor_id", m.visitor_id);
  }
  if (!scalar(m.message_id, &r.message_id)) {
    return Missing("message_id", m.message_id);
  }
  scalar(m.text, &r.text);
  scalar(m.media_url, &r.media_url);
  if (r.text.empty() && r.media_url.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("text (", m.text, ") is missing, and so is media_url (",
                     m.media_url, ")"));
  }
  if (const json* t = FindJsonPath(body, m.time);
      t != nullptr && !t->is_null()) {
    if (!ParseTime(*t, &r.time_ms)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "time (", m.time, ") is not an ISO 8601 time or Unix time"));
    }
  }
  if (!m.name.empty()) {
    scalar(m.name, &r.name);
  } else {
    std::string first, last;
    scalar("visitor.firstName", &first);
    scalar("visitor.lastName", &last);
    r.name =
        std::string(absl::StripAsciiWhitespace(absl::StrCat(first, " ", last)));
  }
  return r;
}

absl::StatusOr<StartRequest> ParseStart(const std::vector<std::string>& words) {
  if (words.size() < 2) return absl::InvalidArgumentError(kStartUsage);
  StartRequest s;
  absl::string_view raw = words[0];
  if (absl::ConsumePrefix(&raw, "+")) s.phone = "+";
  size_t digits = 0;
  for (char c : raw) {
    if (absl::ascii_isdigit(c)) {
      s.phone.push_back(c);
      ++digits;
    } else if (c != '-' && c != '.' && c != '(' && c != ')' && c != ' ') {
      return absl::InvalidArgumentError(absl::StrCat(
          "'", words[0], "' is not a phone number; ", kStartUsage));
    }
  }
  if (digits < 7 || digits > 15) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", words[0], "' is not a phone number (7-15 digits); ", kStartUsage));
  }
  s.first_name = words[1];
  if (words.size() > 2) {
    s.last_name = absl::StrJoin(words.begin() + 2, words.end(), " ");
  }
  return s;
}

std::string VisitorIdForPhone(absl::string_view phone) {
  std::string id = "imb-";
  for (char c : phone) {
    if (absl::ascii_isdigit(c)) id.push_back(c);
  }
  return id;
}

}  // namespace imbridge::adapters::botsplash
