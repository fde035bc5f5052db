#include "bridge/adapter_commands.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"

namespace imbridge::bridge {
namespace {

bool IsWordChar(char c) {
  return absl::ascii_islower(static_cast<unsigned char>(c)) ||
         absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '-' ||
         c == '_';
}

}  // namespace

absl::Status ValidateCommandWords(const v1::Hello& hello) {
  for (const std::string& word : hello.chat_commands()) {
    if (word.empty() || !std::all_of(word.begin(), word.end(), IsWordChar)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "hello.chat_commands: '", word,
          "' is not a command word (lower case letters, digits, '-', '_')"));
    }
    if (word == "who" || word == "status" || word == "help") {
      return absl::InvalidArgumentError(absl::StrCat(
          "hello.chat_commands: '", word, "' is the router's own command"));
    }
  }
  return absl::OkStatus();
}

std::pair<std::string, std::string> SplitCommand(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  size_t end = 0;
  while (end < text.size() &&
         !absl::ascii_isspace(static_cast<unsigned char>(text[end]))) {
    ++end;
  }
  return {absl::AsciiStrToLower(text.substr(0, end)),
          std::string(absl::StripAsciiWhitespace(text.substr(end)))};
}

AdapterCommands::AdapterCommands(absl::Duration timeout)
    : timeout_(timeout), timer_([this] { RunTimer(); }) {}

AdapterCommands::~AdapterCommands() { Stop(); }

void AdapterCommands::Stop() {
  std::map<uint64_t, Pending> abandoned;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    abandoned.swap(pending_);
  }
  if (timer_.joinable()) timer_.join();
  for (auto& [id, p] : abandoned) {
    p.done(absl::UnavailableError("the router stopped before the answer"));
  }
}

std::shared_ptr<AdapterSession> AdapterCommands::SessionFor(
    const std::string& word) const {
  for (const auto& session : sessions_) {
    const auto& words = session->hello().chat_commands();
    if (std::find(words.begin(), words.end(), word) != words.end()) {
      return session;
    }
  }
  return nullptr;
}

void AdapterCommands::Attached(std::shared_ptr<AdapterSession> session) {
  if (session->hello().chat_commands().empty()) return;
  absl::MutexLock lock(&mu_);
  for (const std::string& word : session->hello().chat_commands()) {
    known_[word] = session->platform();
  }
  sessions_.push_back(session);
  // Commands whose adapter detached before answering.
  for (auto& [id, p] : pending_) {
    if (p.session_id != 0 || SessionFor(p.word) != session) continue;
    p.session_id = session->id();
    session->SendChatCommand(p.command);
  }
}

void AdapterCommands::Detached(uint64_t session_id) {
  absl::MutexLock lock(&mu_);
  sessions_.erase(std::remove_if(sessions_.begin(), sessions_.end(),
                                 [session_id](const auto& s) {
                                   return s->id() == session_id;
                                 }),
                  sessions_.end());
  for (auto& [id, p] : pending_) {
    if (p.session_id != session_id) continue;
    p.session_id = 0;
    if (auto next = SessionFor(p.word); next != nullptr) {
      p.session_id = next->id();
      next->SendChatCommand(p.command);
    }
  }
}

void AdapterCommands::Answered(uint64_t session_id,
                               const v1::ChatCommandAnswer& answer) {
  Done done;
  CommandAnswer result;
  {
    absl::MutexLock lock(&mu_);
    auto it = pending_.find(answer.id());
    if (it == pending_.end() || it->second.session_id != session_id) return;
    done = std::move(it->second.done);
    pending_.erase(it);
  }
  result.text = answer.text();
  result.in_command_thread = answer.in_command_thread();
  done(std::move(result));
}

bool AdapterCommands::Forward(const std::string& word, const std::string& args,
                              const v1::Event& event, Done done) {
  std::string not_attached;
  {
    absl::MutexLock lock(&mu_);
    auto known = known_.find(word);
    if (known == known_.end()) return false;
    std::shared_ptr<AdapterSession> session = SessionFor(word);
    if (session == nullptr) {
      not_attached = known->second;
    } else {
      Pending p;
      p.word = word;
      p.platform = session->platform();
      p.command.set_id(++next_id_);
      p.command.set_word(word);
      p.command.set_args(args);
      *p.command.mutable_event() = event;
      p.done = std::move(done);
      p.deadline = absl::Now() + timeout_;
      p.session_id = session->id();
      session->SendChatCommand(p.command);
      pending_.emplace(p.command.id(), std::move(p));
      return true;
    }
  }
  done(CommandAnswer{
      absl::StrCat("The ", not_attached, " adapter, which answers '", word,
                   "', is not attached to the router now; the command was "
                   "not run. Try again later."),
      false});
  return true;
}

std::vector<std::pair<std::string, std::string>>
AdapterCommands::AttachedWords() const {
  absl::MutexLock lock(&mu_);
  std::map<std::string, std::string> words;
  for (const auto& session : sessions_) {
    for (const std::string& word : session->hello().chat_commands()) {
      words.emplace(word, session->platform());
    }
  }
  return {words.begin(), words.end()};
}

void AdapterCommands::RunTimer() {
  while (true) {
    std::vector<Pending> expired;
    {
      absl::MutexLock lock(&mu_);
      absl::Time next = absl::InfiniteFuture();
      for (const auto& [id, p] : pending_) next = std::min(next, p.deadline);
      mu_.AwaitWithDeadline(
          absl::Condition(
              +[](bool* stopping) { return *stopping; }, &stopping_),
          std::min(next, absl::Now() + absl::Seconds(1)));
      if (stopping_) return;
      absl::Time now = absl::Now();
      for (auto it = pending_.begin(); it != pending_.end();) {
        if (it->second.deadline > now) {
          ++it;
          continue;
        }
        expired.push_back(std::move(it->second));
        it = pending_.erase(it);
      }
    }
    for (Pending& p : expired) {
      LogWarn("adapter did not answer a chat command in time",
              {{"word", p.word}, {"event_key", p.command.event().key()}});
      p.done(CommandAnswer{
          absl::StrCat("The ", p.platform, " adapter did not answer '", p.word,
                       "' within ", absl::FormatDuration(timeout_),
                       "; it may still act on the command."),
          false});
    }
  }
}

}  // namespace imbridge::bridge
