#ifndef IMBRIDGE_TOOLS_SANDBOX_SLACK_MESSENGER_H_
#define IMBRIDGE_TOOLS_SANDBOX_SLACK_MESSENGER_H_

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "emulators/slack/fake_slack.h"
#include "imbridge/v1/sandbox_config.pb.h"
#include "tools/sandbox/messenger.h"
#include "tools/sandbox/people.h"

namespace imbridge::sandbox {

// The emulated Slack workspace: one channel, the configured people, Events
// API callbacks signed with the configured signing secret. Messages are
// mrkdwn; a reply is a thread reply (Slack has no other kind); the bridge's
// copies are the app's posts with a `username`, which the page shows.
// Presence is "active" or "away"; Slack sends no event for it, the adapter
// polls users.getPresence. Thread-safe (see Messenger).
class SlackMessenger : public Messenger {
 public:
  explicit SlackMessenger(const v1::SandboxSlack& config);

  std::string name() const override { return "slack"; }
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

  // The workspace, for the emulated Chatlio widget that works in it.
  fakes::FakeSlack& fake() { return fake_; }

 private:
  std::optional<fakes::FakeSlackMessage> Find(const std::string& ts) const;
  // The thread a reply to `reply_to` goes into ("" for none).
  absl::StatusOr<std::string> ThreadOf(const std::string& reply_to) const;

  const v1::SandboxSlack config_;
  SandboxPeople people_;
  fakes::FakeSlack fake_;
};

}  // namespace imbridge::sandbox

#endif  // IMBRIDGE_TOOLS_SANDBOX_SLACK_MESSENGER_H_
