#include "common/http/php_form.h"

#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace imbridge {
namespace {

using json = nlohmann::json;

int Hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

absl::StatusOr<std::string> Decode(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%') {
      if (i + 2 >= s.size() || Hex(s[i + 1]) < 0 || Hex(s[i + 2]) < 0) {
        return absl::InvalidArgumentError("bad %-escape in the form body");
      }
      out.push_back(static_cast<char>(Hex(s[i + 1]) * 16 + Hex(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// "a[b][]" -> {"a", "b", ""}.
absl::StatusOr<std::vector<std::string>> KeyPath(const std::string& key) {
  std::vector<std::string> path;
  size_t open = key.find('[');
  path.push_back(key.substr(0, open));
  if (path[0].empty()) return absl::InvalidArgumentError("empty form key");
  while (open != std::string::npos) {
    size_t close = key.find(']', open);
    if (close == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("unbalanced bracket in form key '", key, "'"));
    }
    path.push_back(key.substr(open + 1, close - open - 1));
    open = close + 1;
    if (open == key.size()) break;
    if (key[open] != '[') {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed form key '", key, "'"));
    }
  }
  return path;
}

// Objects keyed exactly "0".."n-1" become arrays, recursively.
void Arrayify(json& j) {
  if (!j.is_object()) return;
  for (auto& [k, v] : j.items()) Arrayify(v);
  if (j.empty()) return;
  for (size_t i = 0; i < j.size(); ++i) {
    if (!j.contains(std::to_string(i))) return;
  }
  json array = json::array();
  for (size_t i = 0; i < j.size(); ++i) {
    array.push_back(std::move(j[std::to_string(i)]));
  }
  j = std::move(array);
}

}  // namespace

absl::StatusOr<json> ParsePhpForm(absl::string_view body) {
  json root = json::object();
  for (absl::string_view pair : absl::StrSplit(body, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(pair, absl::MaxSplits('=', 1));
    absl::StatusOr<std::string> key = Decode(kv.first);
    if (!key.ok()) return key.status();
    absl::StatusOr<std::string> value = Decode(kv.second);
    if (!value.ok()) return value.status();
    absl::StatusOr<std::vector<std::string>> path = KeyPath(*key);
    if (!path.ok()) return path.status();
    json* node = &root;
    for (size_t i = 0; i < path->size(); ++i) {
      if (!node->is_object()) {
        return absl::InvalidArgumentError(
            absl::StrCat("form key '", *key, "' nests into a value"));
      }
      std::string part = (*path)[i];
      if (part.empty()) part = std::to_string(node->size());  // "[]"
      bool last = i + 1 == path->size();
      if (last) {
        if (node->contains(part) && (*node)[part].is_object()) {
          return absl::InvalidArgumentError(
              absl::StrCat("form key '", *key, "' is also a container"));
        }
        (*node)[part] = *value;
      } else {
        if (!node->contains(part)) (*node)[part] = json::object();
        node = &(*node)[part];
      }
    }
  }
  // The form itself stays an object, whatever its keys.
  for (auto& [k, v] : root.items()) Arrayify(v);
  return root;
}

namespace {

void AppendEncoded(absl::string_view s, std::string& out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') ||
        (u >= '0' && u <= '9') || u == '-' || u == '_' || u == '.' ||
        u == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    }
  }
}

void EncodeValue(const std::string& key, const json& value, std::string& out) {
  if (value.is_null()) return;
  if (value.is_object() || value.is_array()) {
    size_t index = 0;
    for (auto it = value.begin(); it != value.end(); ++it, ++index) {
      std::string member = value.is_object() ? it.key() : std::to_string(index);
      EncodeValue(absl::StrCat(key, "[", member, "]"), *it, out);
    }
    return;
  }
  std::string text;
  if (value.is_string()) {
    text = value.get<std::string>();
  } else if (value.is_boolean()) {
    text = value.get<bool>() ? "1" : "0";
  } else {
    text = value.dump();
  }
  if (!out.empty()) out.push_back('&');
  AppendEncoded(key, out);
  out.push_back('=');
  AppendEncoded(text, out);
}

}  // namespace

std::string EncodePhpForm(const json& object) {
  std::string out;
  if (!object.is_object()) return out;
  for (auto it = object.begin(); it != object.end(); ++it) {
    EncodeValue(it.key(), *it, out);
  }
  return out;
}

}  // namespace imbridge
