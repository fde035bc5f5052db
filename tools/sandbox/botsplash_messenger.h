#ifndef IMBRIDGE_TOOLS_SANDBOX_BOTSPLASH_MESSENGER_H_
#define IMBRIDGE_TOOLS_SANDBOX_BOTSPLASH_MESSENGER_H_

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "emulators/botsplash/fake_botsplash.h"
#include "imbridge/v1/sandbox_config.pb.h"
#include "tools/sandbox/messenger.h"

namespace imbridge::sandbox {

// The "customer phone" pane: the emulated Botsplash app, whose customers
// (visitors) are the people of the pane. The messages are what the
// customers received from the bridge (the team's direct messages, shown as
// the bridge's) and the replies they sent, in order; a customer posts or
// attaches a file by replying (the emulator POSTs the reply webhook of the
// adapter). Customers started with `!bridge botsplash start` join the pane
// as Botsplash learns of them. Text messages cannot be edited or deleted
// (kUnimplemented), and customers have no presence.
// Thread-safe (see Messenger).
class BotsplashMessenger : public Messenger {
 public:
  explicit BotsplashMessenger(const v1::SandboxBotsplash& config);

  std::string name() const override { return "botsplash"; }
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
  // The customer's name, or an error for one Botsplash does not know.
  absl::StatusOr<std::string> CustomerName(const std::string& id) const;
  // Replies as `user`; returns the reply's id.
  absl::StatusOr<std::string> Reply(const std::string& user,
                                    const std::string& text,
                                    const std::string& media_url);

  const v1::SandboxBotsplash config_;
  emulators::FakeBotsplash fake_;

  mutable absl::Mutex mu_;
  // When the sandbox first saw each message (the fake keeps no time).
  mutable std::map<std::string, int64_t> first_seen_ ABSL_GUARDED_BY(mu_);
};

}  // namespace imbridge::sandbox

#endif  // IMBRIDGE_TOOLS_SANDBOX_BOTSPLASH_MESSENGER_H_
