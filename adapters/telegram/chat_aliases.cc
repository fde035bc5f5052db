#include "adapters/telegram/chat_aliases.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace imbridge::adapters::telegram {
namespace {

// Longest migration chain followed (a group migrates at most once, so real
// chains have one step).
constexpr int kMaxChain = 16;

// Names of the journal's state values: <prefix><account>/<old id>.
constexpr char kStatePrefix[] = "telegram/chat_alias/";

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

ChatAliases::ChatAliases(DeliveryJournal* journal, std::string legacy_file)
    : journal_(journal), legacy_file_(std::move(legacy_file)) {}

absl::StatusOr<bool> ChatAliases::ReadLegacyFile(
    absl::flat_hash_map<std::string, Map>* forward) const {
  if (legacy_file_.empty()) return false;
  std::ifstream in(legacy_file_);
  if (!in) return false;  // None (any more).
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, false);
  if (!j.is_object()) {
    return absl::DataLossError(
        absl::StrCat(legacy_file_, ": not a JSON object of chat aliases"));
  }
  for (auto& [account, aliases] : j.items()) {
    if (!aliases.is_object()) {
      return absl::DataLossError(absl::StrCat(legacy_file_, ": ", account,
                                              ": not an object of aliases"));
    }
    for (auto& [old_id, new_id] : aliases.items()) {
      if (!new_id.is_string()) {
        return absl::DataLossError(absl::StrCat(legacy_file_, ": ", account,
                                                ".", old_id, ": not a string"));
      }
      (*forward)[account][old_id] = new_id.get<std::string>();
    }
  }
  return true;
}

absl::Status ChatAliases::Load() {
  absl::flat_hash_map<std::string, Map> legacy;
  absl::StatusOr<bool> has_legacy = ReadLegacyFile(&legacy);
  if (!has_legacy.ok()) return has_legacy.status();
  if (journal_ != nullptr) {
    for (const auto& [account, map] : legacy) {
      for (const auto& [old_id, new_id] : map) {
        absl::Status s = journal_->PutState(
            absl::StrCat(kStatePrefix, account, "/", old_id), new_id);
        if (!s.ok()) return s;
      }
    }
    if (*has_legacy) {
      std::error_code ec;
      std::filesystem::rename(legacy_file_, legacy_file_ + ".imported", ec);
      if (ec) {
        return absl::InternalError(
            absl::StrCat("cannot rename ", legacy_file_,
                         " after importing it: ", ec.message()));
      }
    }
    absl::StatusOr<std::vector<std::pair<std::string, std::string>>> stored =
        journal_->ListState(kStatePrefix);
    if (!stored.ok()) return stored.status();
    for (const auto& [name, new_id] : *stored) {
      absl::string_view rest = absl::string_view(name).substr(
          std::char_traits<char>::length(kStatePrefix));
      size_t slash = rest.find('/');
      if (slash == absl::string_view::npos) continue;
      legacy[std::string(rest.substr(0, slash))]
            [std::string(rest.substr(slash + 1))] = new_id;
    }
  }
  absl::MutexLock lock(&mu_);
  for (const auto& [account, map] : legacy) {
    for (const auto& [old_id, new_id] : map) AddLocked(account, old_id, new_id);
  }
  return absl::OkStatus();
}

void ChatAliases::AddLocked(const std::string& account,
                            const std::string& old_id,
                            const std::string& new_id) {
  forward_[account][old_id] = new_id;
  backward_[account][new_id] = old_id;
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
  AddLocked(std::string(account), std::string(old_id), std::string(new_id));
  if (journal_ == nullptr) return absl::OkStatus();
  return journal_->PutState(absl::StrCat(kStatePrefix, account, "/", old_id),
                            new_id);
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

}  // namespace imbridge::adapters::telegram
