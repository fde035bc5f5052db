#ifndef IMBRIDGE_BRIDGE_CHAT_COMMANDS_H_
#define IMBRIDGE_BRIDGE_CHAT_COMMANDS_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "bridge/link_table.h"
#include "bridge/store.h"
#include "imbridge/v1/config.pb.h"
#include "imbridge/v1/events.pb.h"

namespace imbridge::bridge {

// The chat commands the router answers in every linked chat, whatever the
// messenger:
//   !bridge who      the people on the other side of the chat's links (those
//                    who have spoken there), their messenger and last known
//                    presence;
//   !bridge status   the health of the chat's links: per member, whether its
//                    adapter is attached, and its queued and dead-lettered
//                    deliveries;
//   !bridge          (or anything else after the prefix) a short help.
// The prefix is configurable. A command is answered in the chat (and thread)
// it was sent in and is not mirrored to the other members.
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

  // The answer to the command in `event`, as plain text.
  std::string Answer(const v1::Event& event, const LinkTable& links,
                     absl::Time now) const;

 private:
  std::string Who(const v1::Event& event, const LinkTable& links) const;
  std::string Status(const v1::Event& event, const LinkTable& links,
                     absl::Time now) const;
  std::string Help() const;

  const bool enabled_;
  const std::string prefix_;
  Store* const store_;
  AttachedFn attached_;
};

}  // namespace imbridge::bridge

#endif  // IMBRIDGE_BRIDGE_CHAT_COMMANDS_H_
