#include "adapters/telegram/chat_aliases.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace imbridge::adapters::telegram {
namespace {

// Longest migration chain followed (a group migrates at most once, so real
// chains have one step).
constexpr int kMaxChain = 16;

std::string Follow(const absl::flat_hash_map<std::string, std::string>& map,
                   absl::string_view start) {
  std::string id(start);
  for (int i = 0; i < kMaxChain; ++i) {
    auto it = map.find(id);
    if (it == map.end()) break;
    id = it->second;
  }
  return id;
}

}  // namespace

ChatAliases::ChatAliases(std::string path) : path_(std::move(path)) {}

absl::Status ChatAliases::Load() {
  if (path_.empty()) return absl::OkStatus();
  std::ifstream in(path_);
  if (!in) return absl::OkStatus();  // No migrations yet.
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, false);
  if (!j.is_object()) {
    return absl::DataLossError(
        absl::StrCat(path_, ": not a JSON object of chat aliases"));
  }
  absl::flat_hash_map<std::string, Map> forward, backward;
  for (auto& [account, aliases] : j.items()) {
    if (!aliases.is_object()) {
      return absl::DataLossError(
          absl::StrCat(path_, ": ", account, ": not an object of aliases"));
    }
    for (auto& [old_id, new_id] : aliases.items()) {
      if (!new_id.is_string()) {
        return absl::DataLossError(
            absl::StrCat(path_, ": ", account, ".", old_id, ": not a string"));
      }
      forward[account][old_id] = new_id.get<std::string>();
      backward[account][new_id.get<std::string>()] = old_id;
    }
  }
  absl::MutexLock lock(&mu_);
  forward_ = std::move(forward);
  backward_ = std::move(backward);
  return absl::OkStatus();
}

absl::Status ChatAliases::Record(absl::string_view account,
                                 absl::string_view old_id,
                                 absl::string_view new_id) {
  if (old_id.empty() || new_id.empty() || old_id == new_id) {
    return absl::InvalidArgumentError("a chat alias needs two different ids");
  }
  absl::MutexLock lock(&mu_);
  Map& forward = forward_[account];
  auto it = forward.find(old_id);
  if (it != forward.end() && it->second == new_id) return absl::OkStatus();
  if (Follow(forward, new_id) == old_id) {
    return absl::InvalidArgumentError("chat alias would form a cycle");
  }
  forward[std::string(old_id)] = std::string(new_id);
  backward_[account][std::string(new_id)] = std::string(old_id);
  return SaveLocked();
}

std::string ChatAliases::Current(absl::string_view account,
                                 absl::string_view chat_id) const {
  absl::MutexLock lock(&mu_);
  auto it = forward_.find(account);
  if (it == forward_.end()) return std::string(chat_id);
  return Follow(it->second, chat_id);
}

std::string ChatAliases::Original(absl::string_view account,
                                  absl::string_view chat_id) const {
  absl::MutexLock lock(&mu_);
  auto it = backward_.find(account);
  if (it == backward_.end()) return std::string(chat_id);
  return Follow(it->second, chat_id);
}

absl::Status ChatAliases::SaveLocked() {
  if (path_.empty()) return absl::OkStatus();
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [account, map] : forward_) {
    nlohmann::json& a = j[account];
    a = nlohmann::json::object();
    for (const auto& [old_id, new_id] : map) a[old_id] = new_id;
  }
  std::string tmp = path_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump(2) << "\n";
    out.flush();
    if (!out) {
      return absl::InternalError(absl::StrCat("cannot write ", tmp));
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path_, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot replace ", path_, ": ", ec.message()));
  }
  return absl::OkStatus();
}

}  // namespace imbridge::adapters::telegram
