#ifndef IMBRIDGE_TOOLS_SANDBOX_MESSENGER_H_
#define IMBRIDGE_TOOLS_SANDBOX_MESSENGER_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace imbridge::sandbox {

// What a person types in a chat pane.
struct PostRequest {
  std::string user;      // The person's id in the pane's messenger.
  std::string text;      // In the messenger's own markup.
  std::string reply_to;  // Message id replied to; empty for none.
};

// A file a person attaches in a chat pane.
struct UploadRequest {
  std::string user;
  std::string name;
  std::string mime_type;
  std::string content;
  std::string text;  // Caption / comment; may be empty.
  std::string reply_to;
};

// A stored file, for the page's download links.
struct FileBody {
  std::string name;
  std::string mime_type;
  std::string content;
};

// One emulated messenger as the sandbox page drives it: an emulator
// (emulators/<name>) serving the messenger's API to the adapter, seeded
// with one linked chat and a few people, plus the chat as the page shows it.
//
// The page's view of the chat is JSON shared by all messengers (see
// Snapshot()); messages carry the messenger's own markup (`format`) and the
// page renders it the way that messenger would.
//
// Thread-safe. Post/Edit/Delete/Upload/SetPresence block while the fake
// delivers its webhook to the adapter (call them off any server thread).
class Messenger {
 public:
  virtual ~Messenger() = default;

  // "teamspirit", "slack" or "telegram".
  virtual std::string name() const = 0;
  // Starts the fake on 127.0.0.1 (a free port) and seeds it.
  virtual absl::Status Start() = 0;
  virtual void Stop() = 0;
  // KEY=VALUE pairs for the endpoints file (API base URL, chat id).
  virtual std::vector<std::pair<std::string, std::string>> Endpoints()
      const = 0;

  // The chat as the page shows it:
  //   {"title", "chat_id", "features": {"delete", "presence"},
  //    "presence_choices": [...],
  //    "people": [{"id","name","presence"}],     (simulated people)
  //    "guests": [{"id","name","presence"}],     (people the bridge created)
  //    "bot": {"name","presence","text"},
  //    "messages": [{"id","user_id","name","bridged","text","format",
  //                  "entities","time","reply_to","thread","files":[
  //                  {"id","name","size","mime_type"}],"edited","deleted"}]}
  virtual nlohmann::json Snapshot() const = 0;

  // A person's actions; each emits the messenger's webhook or update.
  // kInvalidArgument for an unknown person or message, kUnimplemented for
  // what the messenger cannot tell a bot (a Telegram delete).
  virtual absl::StatusOr<std::string> Post(const PostRequest& request) = 0;
  virtual absl::Status Edit(const std::string& user, const std::string& id,
                            const std::string& text) = 0;
  virtual absl::Status Delete(const std::string& user,
                              const std::string& id) = 0;
  virtual absl::StatusOr<std::string> Upload(const UploadRequest& request) = 0;
  virtual absl::Status SetPresence(const std::string& user,
                                   const std::string& status) = 0;
  // A file of the chat (posted by a person or by the bridge); kNotFound for
  // an unknown id.
  virtual absl::StatusOr<FileBody> Download(const std::string& file_id) = 0;

  // Calls `fn` after every change of the fake's state, on whatever thread
  // made it, without the fake's locks held. Register before Start().
  virtual void OnChange(std::function<void()> fn) = 0;
};

}  // namespace imbridge::sandbox

#endif  // IMBRIDGE_TOOLS_SANDBOX_MESSENGER_H_
