#ifndef IMBRIDGE_TOOLS_SANDBOX_PEOPLE_H_
#define IMBRIDGE_TOOLS_SANDBOX_PEOPLE_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "imbridge/v1/sandbox_config.pb.h"
#include "nlohmann/json.hpp"

namespace imbridge::sandbox {

// The simulated people of one chat pane whose ids come from the sandbox
// config (Slack, TeamSpirit), and the presence each was last set to ("" until
// set). The list is fixed at construction; presence changes.
//
// Thread-safe.
class SandboxPeople {
 public:
  // `where` names the chat in errors ("the Slack workspace");
  // `presence_choices` are the statuses SetPresence accepts, as the page offers
  // them.
  SandboxPeople(
      const google::protobuf::RepeatedPtrField<v1::SandboxPerson>& people,
      std::string where, std::vector<std::string> presence_choices);

  // (id, name) in config order.
  const std::vector<std::pair<std::string, std::string>>& list() const {
    return people_;
  }

  // kInvalidArgument "no person '<id>' in <where>" for an unknown id.
  absl::Status Check(const std::string& id) const;

  // The person's name, or `id` itself for someone else.
  std::string NameOf(const std::string& id) const;

  // Checks the person and the status (one of the choices); records it.
  // kInvalidArgument and no change on bad input.
  absl::Status SetPresence(const std::string& id, const std::string& status);

  // [{"id","name","presence"}] for Messenger::Snapshot().
  nlohmann::json PeopleJson() const;
  // The choices as a JSON array.
  nlohmann::json PresenceChoicesJson() const;

 private:
  const std::vector<std::pair<std::string, std::string>> people_;
  const std::string where_;
  const std::vector<std::string> presence_choices_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::string> presence_ ABSL_GUARDED_BY(mu_);
};

// One entry of a message's "files" in Messenger::Snapshot().
nlohmann::json FileJson(const std::string& id, const std::string& name,
                        size_t size, const std::string& mime_type);

}  // namespace imbridge::sandbox

#endif  // IMBRIDGE_TOOLS_SANDBOX_PEOPLE_H_
