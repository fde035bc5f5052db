#include "tools/sandbox/people.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace imbridge::sandbox {
namespace {

std::vector<std::pair<std::string, std::string>> IdsAndNames(
    const google::protobuf::RepeatedPtrField<v1::SandboxPerson>& people) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const v1::SandboxPerson& p : people) out.emplace_back(p.id(), p.name());
  return out;
}

}  // namespace

SandboxPeople::SandboxPeople(
    const google::protobuf::RepeatedPtrField<v1::SandboxPerson>& people,
    std::string where, std::vector<std::string> presence_choices)
    : people_(IdsAndNames(people)),
      where_(std::move(where)),
      presence_choices_(std::move(presence_choices)) {}

absl::Status SandboxPeople::Check(const std::string& id) const {
  for (const auto& [person, name] : people_) {
    if (person == id) return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("no person '", id, "' in ", where_));
}

std::string SandboxPeople::NameOf(const std::string& id) const {
  for (const auto& [person, name] : people_) {
    if (person == id) return name;
  }
  return id;
}

absl::Status SandboxPeople::SetPresence(const std::string& id,
                                        const std::string& status) {
  if (absl::Status s = Check(id); !s.ok()) return s;
  if (std::find(presence_choices_.begin(), presence_choices_.end(), status) ==
      presence_choices_.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("presence '", status, "' is not one of ",
                     absl::StrJoin(presence_choices_, ", ")));
  }
  absl::MutexLock lock(&mu_);
  presence_[id] = status;
  return absl::OkStatus();
}

nlohmann::json SandboxPeople::PeopleJson() const {
  nlohmann::json out = nlohmann::json::array();
  absl::MutexLock lock(&mu_);
  for (const auto& [id, name] : people_) {
    auto it = presence_.find(id);
    out.push_back({{"id", id},
                   {"name", name},
                   {"presence", it == presence_.end() ? "" : it->second}});
  }
  return out;
}

nlohmann::json SandboxPeople::PresenceChoicesJson() const {
  return presence_choices_;
}

nlohmann::json FileJson(const std::string& id, const std::string& name,
                        size_t size, const std::string& mime_type) {
  return {{"id", id}, {"name", name}, {"size", size}, {"mime_type", mime_type}};
}

}  // namespace imbridge::sandbox
