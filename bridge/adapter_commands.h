#ifndef IMBRIDGE_BRIDGE_ADAPTER_COMMANDS_H_
#define IMBRIDGE_BRIDGE_ADAPTER_COMMANDS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "bridge/adapter_session.h"
#include "bridge/chat_commands.h"
#include "imbridge/v1/router.pb.h"

namespace imbridge::bridge {

// OK if every word is a valid adapter command word (router.proto
// Hello.chat_commands); kInvalidArgument naming the first bad one.
absl::Status ValidateCommandWords(const v1::Hello& hello);

// Splits a command's text after the prefix into its lower-case first word
// and the rest (trimmed): " Botsplash start +1 Ann " -> {"botsplash",
// "start +1 Ann"}.
std::pair<std::string, std::string> SplitCommand(absl::string_view text);

// Chat commands addressed to adapters: "<prefix> <word> ..." where <word>
// is one an attached adapter announced in Hello.chat_commands. Forward()
// sends the command to the first attached adapter (in attach order) that
// announced the word and calls `done` with its answer. A command whose
// adapter detached before answering is sent again to the next adapter of
// the word that attaches. An adapter that does not answer within `timeout`
// (or a word none of whose adapters is attached) gets an answer saying so.
// Stop() gives up on the commands still waiting: their `done` gets
// kUnavailable (the committer then does not store the command, so its
// adapter publishes it again and it is forwarded again after a restart).
//
// Thread-safe. `done` runs on any thread, once, without locks held.
class AdapterCommands {
 public:
  using Done = std::function<void(absl::StatusOr<CommandAnswer>)>;

  explicit AdapterCommands(absl::Duration timeout);
  ~AdapterCommands();  // Calls Stop().

  void Attached(std::shared_ptr<AdapterSession> session);
  void Detached(uint64_t session_id);
  // The adapter's answer to command `answer.id()`; ignored when it is not
  // one this session was sent (late, or answered already).
  void Answered(uint64_t session_id, const v1::ChatCommandAnswer& answer);

  // False (and `done` is not called) if no adapter announced `word` since
  // the router started. Otherwise `done` gets the answer.
  bool Forward(const std::string& word, const std::string& args,
               const v1::Event& event, Done done);

  // Each word an attached adapter announced, with that adapter's platform,
  // sorted by word.
  std::vector<std::pair<std::string, std::string>> AttachedWords() const;

  void Stop();

 private:
  struct Pending {
    std::string word;
    std::string platform;  // of the adapter it was first sent to
    v1::ChatCommand command;
    Done done;
    absl::Time deadline;
    uint64_t session_id = 0;  // 0: waiting for an adapter of `word`
  };
  // The first attached session that announced `word`, or null.
  std::shared_ptr<AdapterSession> SessionFor(const std::string& word) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void RunTimer();

  const absl::Duration timeout_;
  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
  // Attached sessions in attach order.
  std::vector<std::shared_ptr<AdapterSession>> sessions_ ABSL_GUARDED_BY(mu_);
  // Every word announced since start -> the platform that announced it.
  std::map<std::string, std::string> known_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, Pending> pending_ ABSL_GUARDED_BY(mu_);
  std::thread timer_;
};

}  // namespace imbridge::bridge

#endif  // IMBRIDGE_BRIDGE_ADAPTER_COMMANDS_H_
