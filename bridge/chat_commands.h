#ifndef IMBRIDGE_BRIDGE_CHAT_COMMANDS_H_
#define IMBRIDGE_BRIDGE_CHAT_COMMANDS_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "bridge/link_table.h"
#include "bridge/store.h"
#include "imbridge/v1/config.pb.h"
#include "imbridge/v1/events.pb.h"

namespace imbridge::bridge {

class AdapterCommands;

// The answer to a chat command, as the committer posts it.
struct CommandAnswer {
  std::string text;
  // Post it in the thread rooted at the command message (router.proto
  // ChatCommandAnswer.in_command_thread) instead of where the command was.
  bool in_command_thread = false;
};

// The chat commands the router answers in every linked chat, whatever the
// messenger:
//   !bridge who      the people on the other side of the chat's links (those
//                    who have spoken there), their messenger and last known
//                    presence;
//   !bridge status   the health of the chat's links: per member, whether its
//                    adapter is attached, and its queued and dead-lettered
//                    deliveries;
//   !bridge <word> ...  forwarded to the attached adapter that announced
//                    <word> in its Hello (AdapterCommands), which answers;
//   !bridge          (or anything else after the prefix) a short help,
//                    listing the attached adapters' words too.
// The prefix is configurable. A command is answered in the chat (and thread)
// it was sent in (or, if an adapter asks, in the thread rooted at the
// command) and is not mirrored to the other members.
//
// Called off the writer (the committer answers on a thread of its own);
// answers read the store's committed data. Thread-safe once SetAttachedFn
// has been called.
class ChatCommands {
 public:
  // Whether an adapter serving `channel` (its platform and account) is
  // attached now.
  using AttachedFn = std::function<bool(const v1::ChannelRef& channel)>;

  ChatCommands(const v1::ChatCommandOptions& options, Store* store);

  // Must be set before the first Answer(); until then every member counts
  // as not attached.
  void SetAttachedFn(AttachedFn attached) { attached_ = std::move(attached); }

  // True if `event` is a message that starts with the command prefix
  // (followed by a space or the end of the text).
  bool IsCommand(const v1::Event& event) const;

  // Optional; set before the first Answer(). Commands addressed to adapters
  // are forwarded through it. Must outlive the ChatCommands.
  void SetAdapterCommands(AdapterCommands* adapters) { adapters_ = adapters; }

  // Works out the answer to the command in `event` and hands it to `done`:
  // at once for the router's own commands, when the adapter answered for an
  // adapter's. An error (the router is stopping) means: no answer, do not
  // store the command.
  using AnswerDone = std::function<void(absl::StatusOr<CommandAnswer>)>;
  void Answer(const v1::Event& event, const LinkTable& links, absl::Time now,
              AnswerDone done) const;

 private:
  std::string Who(const v1::Event& event, const LinkTable& links) const;
  std::string Status(const v1::Event& event, const LinkTable& links,
                     absl::Time now) const;
  std::string Help() const;

  const bool enabled_;
  const std::string prefix_;
  Store* const store_;
  AttachedFn attached_;
  AdapterCommands* adapters_ = nullptr;
};

}  // namespace imbridge::bridge

#endif  // IMBRIDGE_BRIDGE_CHAT_COMMANDS_H_
