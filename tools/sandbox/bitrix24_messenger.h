#ifndef IMBRIDGE_TOOLS_SANDBOX_BITRIX24_MESSENGER_H_
#define IMBRIDGE_TOOLS_SANDBOX_BITRIX24_MESSENGER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "emulators/bitrix24/fake_bitrix24.h"
#include "imbridge/v1/sandbox_config.pb.h"
#include "tools/sandbox/messenger.h"

namespace imbridge::sandbox {

// The emulated Bitrix24 portal: one group chat with the bridge's Chatbots
// 2.0 bot (registered at Start() as a supervisor with the configured bot
// token, as `imbridge-adapter-bitrix24 --register` would) and the
// configured people. The adapter calls the portal through its inbound
// webhook and fetches the bot's events (imbot.v2.Event.get), so nothing is
// pushed to it. Messages are BB-code; a reply carries replyId; the bridge's
// copies are the bot's messages with the sender's name in bold. Bitrix24
// shows no presence to bots, so that action is refused (kUnimplemented).
// Thread-safe (see Messenger).
class Bitrix24Messenger : public Messenger {
 public:
  explicit Bitrix24Messenger(const v1::SandboxBitrix24& config);

  std::string name() const override { return "bitrix24"; }
  absl::Status Start() override;
  void Stop() override;
  // BITRIX24_WEBHOOK_URL, BITRIX24_BOT_ID, BITRIX24_CHAT_ID (the dialog id).
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
  struct Person {
    int64_t id = 0;
    std::string name;
  };
  absl::StatusOr<Person> FindPerson(const std::string& user) const;
  // The person's own message `id`: kNotFound, or kPermissionDenied for
  // someone else's.
  absl::StatusOr<int64_t> OwnMessage(const Person& person,
                                     const std::string& id) const;

  const v1::SandboxBitrix24 config_;
  emulators::FakeBitrix24 fake_;
  // Set by Start(), read-only afterwards.
  int64_t bot_id_ = 0;
  int64_t chat_id_ = 0;
  std::vector<Person> people_;
};

}  // namespace imbridge::sandbox

#endif  // IMBRIDGE_TOOLS_SANDBOX_BITRIX24_MESSENGER_H_
