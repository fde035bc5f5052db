#ifndef IMBRIDGE_TOOLS_SANDBOX_TELEGRAM_MESSENGER_H_
#define IMBRIDGE_TOOLS_SANDBOX_TELEGRAM_MESSENGER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common/http/http_client.h"
#include "emulators/telegram/fake_telegram.h"
#include "imbridge/v1/sandbox_config.pb.h"
#include "tools/sandbox/messenger.h"

namespace imbridge::sandbox {

// The emulated Telegram Bot API: one supergroup with the bridge's bot and
// the configured people. The adapter sets the webhook itself (setWebhook
// with its secret token), as it does against Telegram. Messages are plain
// text with entities (UTF-16 offsets); the bridge's copies are the bot's
// messages with the sender's name in bold, which the page shows as sent.
// Telegram tells bots neither about deletions nor about presence, so those
// actions are refused (kUnimplemented). Thread-safe (see Messenger).
class TelegramMessenger : public Messenger {
 public:
  explicit TelegramMessenger(const v1::SandboxTelegram& config);

  std::string name() const override { return "telegram"; }
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
  absl::StatusOr<fakes::FakeTelegram::User> Person(
      const std::string& user) const;
  // The message id replied to (0 for none); kInvalidArgument if unknown.
  absl::StatusOr<int64_t> ReplyTarget(const std::string& reply_to) const;

  const v1::SandboxTelegram config_;
  fakes::FakeTelegram fake_;
  HttpClient http_;
  // Set by Start(), read-only afterwards.
  int64_t chat_id_ = 0;
  std::vector<fakes::FakeTelegram::User> people_;
};

}  // namespace imbridge::sandbox

#endif  // IMBRIDGE_TOOLS_SANDBOX_TELEGRAM_MESSENGER_H_
