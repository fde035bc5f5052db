#ifndef IMBRIDGE_TOOLS_SANDBOX_SANDBOX_H_
#define IMBRIDGE_TOOLS_SANDBOX_SANDBOX_H_

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/executor.h"
#include "emulators/chatlio/fake_chatlio.h"
#include "imbridge/v1/sandbox_config.pb.h"
#include "nlohmann/json.hpp"
#include "tools/sandbox/event_stream.h"
#include "tools/sandbox/messenger.h"
#include "tools/sandbox/slack_messenger.h"

namespace imbridge::sandbox {

// The three emulated messengers and the page's view of them, and, with a
// `chatlio` config, the emulated Chatlio widget of a website visitor
// working in the Slack workspace.
//
// Every change in a fake (a person's post, the bridge's copy arriving over
// the fake's API, a presence, an external user) marks that messenger dirty;
// one refresher thread then takes its snapshot, compares it with what the
// page was last told, and publishes the differences on events():
//   "message" {"messenger", "message": {...}}   a new or changed message
//   "roster"  {"messenger", "people", "guests", "bot"}
//   "visitor" {"online", "lines": [{"from": "visitor"|"agent", "text"}]}
// so the page shows the chats as the fakes hold them, including what the
// bridge rendered (sender names, files).
//
// Thread-safe. Act() and Download() block (fakes deliver webhooks).
class Sandbox {
 public:
  explicit Sandbox(const v1::SandboxConfig& config);
  ~Sandbox();  // Stop().

  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  // Starts the fakes; kUnavailable when one cannot listen.
  absl::Status Start();
  // Stops the fakes and answers the page's waiting event readers.
  void Stop();

  // KEY=VALUE lines of every fake (API URLs, chat ids).
  std::vector<std::pair<std::string, std::string>> Endpoints() const;

  // {"last_event_id", "order": [names], "messengers": {name: snapshot}},
  // with "visitor" (as the "visitor" event) when the widget is configured.
  // Events after last_event_id may repeat what the snapshot shows.
  nlohmann::json State() const;

  // A person's action in one pane: `action` is "post" {user, text,
  // reply_to}, "edit" {user, id, text}, "delete" {user, id}, "upload"
  // {user, name, mime_type, content_base64, text, reply_to} or "presence"
  // {user, status}; for `messenger` "visitor" (the Chatlio widget), "say"
  // {text} or "end" (the conversation ends: Chatlio's transcript). Returns
  // {"id"} for posts and uploads, {} otherwise.
  // kNotFound for an unknown messenger or action, kInvalidArgument for bad
  // input, the messenger's error otherwise.
  absl::StatusOr<nlohmann::json> Act(const std::string& messenger,
                                     const std::string& action,
                                     const nlohmann::json& body);

  absl::StatusOr<FileBody> Download(const std::string& messenger,
                                    const std::string& file_id);

  EventStream& events() { return events_; }

 private:
  Messenger* Find(const std::string& name) const;
  void MarkDirty(size_t index);
  void MarkVisitorDirty();
  nlohmann::json VisitorSnapshot() const;
  absl::StatusOr<nlohmann::json> ActAsVisitor(const std::string& action,
                                              const nlohmann::json& body);
  // Runs on the refresher thread only.
  void RefreshVisitor();
  // Runs on the refresher thread only.
  void Refresh(size_t index);

  const v1::SandboxConfig config_;
  std::vector<std::unique_ptr<Messenger>> messengers_;
  SlackMessenger* slack_ = nullptr;              // One of messengers_.
  std::unique_ptr<fakes::FakeChatlio> chatlio_;  // With a chatlio config.
  EventStream events_;

  absl::Mutex mu_;
  std::vector<bool> dirty_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool visitor_dirty_ ABSL_GUARDED_BY(mu_) = false;

  // What the page was last told, per messenger (refresher thread only).
  std::vector<std::map<std::string, std::string>> shown_messages_;
  std::vector<std::string> shown_roster_;
  std::string shown_visitor_;
  // Declared last: its destructor finishes refreshes before the rest goes.
  std::unique_ptr<Executor> refresher_;
};

}  // namespace imbridge::sandbox

#endif  // IMBRIDGE_TOOLS_SANDBOX_SANDBOX_H_
