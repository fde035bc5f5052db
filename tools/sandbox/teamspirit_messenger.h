#ifndef IMBRIDGE_TOOLS_SANDBOX_TEAMSPIRIT_MESSENGER_H_
#define IMBRIDGE_TOOLS_SANDBOX_TEAMSPIRIT_MESSENGER_H_

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "emulators/teamspirit/fake_teamspirit.h"
#include "imbridge/v1/sandbox_config.pb.h"
#include "tools/sandbox/messenger.h"
#include "tools/sandbox/people.h"

namespace imbridge::sandbox {

// The emulated TeamSpirit server: one chat with the bridge bot and the
// configured people, the outgoing webhook signed with the configured secret.
// Messages are TeamSpirit markdown; the bridge's copies are the bot's posts
// under an external user (`author`), whose name the page shows.
// Thread-safe (see Messenger).
class TeamSpiritMessenger : public Messenger {
 public:
  static constexpr char kBotId[] = "u-bridge-bot";

  explicit TeamSpiritMessenger(const v1::SandboxTeamSpirit& config);

  std::string name() const override { return "teamspirit"; }
  absl::Status Start() override;
  void Stop() override;
  std::vector<std::pair<std::string, std::string>> Endpoints() const override;
  nlohmann::json Snapshot() const override;
  absl::StatusOr<std::string> Post(const PostRequest& request) override;
  absl::Status Edit(const std::string& user, const std::string& id,
                    const std::string& text) override;
  absl::Status Delete(const std::string& user, const std::string& id) override;
  absl::StatusOr<std::string> Upload(const UploadRequest& request) override;
  absl::Status SetPresence(const std::string& user,
                           const std::string& status) override;
  absl::StatusOr<FileBody> Download(const std::string& file_id) override;
  void OnChange(std::function<void()> fn) override;

 private:
  absl::StatusOr<fakes::FakeTeamSpirit::PostOptions> ReplyOptions(
      const std::string& reply_to) const;

  const v1::SandboxTeamSpirit config_;
  SandboxPeople people_;
  fakes::FakeTeamSpirit fake_;

  mutable absl::Mutex mu_;
  // When the sandbox first saw each message (the fake keeps no time).
  mutable std::map<std::string, int64_t> first_seen_ ABSL_GUARDED_BY(mu_);
};

}  // namespace imbridge::sandbox

#endif  // IMBRIDGE_TOOLS_SANDBOX_TEAMSPIRIT_MESSENGER_H_
