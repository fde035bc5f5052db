#include "bridge/publish_sequencer.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace imbridge::bridge {
namespace {

// The chat a publish is ordered in: as the adapters' router client computes
// it for Publish.after_seq.
std::string OriginChat(const v1::Event& event) {
  const v1::ChannelRef& c = event.channel();
  return absl::StrCat(c.platform(), "/", c.account(), "/", c.chat_id());
}

}  // namespace

PublishSequencer::PublishSequencer(Commit commit, Answer answer,
                                   AnsweredFirst answered_first,
                                   size_t max_failed_seqs)
    : commit_(std::move(commit)),
      answer_(std::move(answer)),
      answered_first_(std::move(answered_first)),
      max_failed_seqs_(max_failed_seqs) {}

void PublishSequencer::Publish(v1::Publish publish) {
  Answers answers;
  {
    absl::MutexLock lock(&mu_);
    std::string chat_key = OriginChat(publish.event());
    Chat& chat = chats_[chat_key];
    if (chat.committing > 0 || !chat.held.empty()) {
      chat.held.push_back(std::move(publish));
      ++held_;
    } else {
      StartLocked(chat_key, chat, std::move(publish), &answers);
      if (chat.committing == 0) chats_.erase(chat_key);
    }
  }
  for (v1::PublishAck& ack : answers) answer_(std::move(ack));
}

size_t PublishSequencer::chats() const {
  absl::MutexLock lock(&mu_);
  return chats_.size();
}

size_t PublishSequencer::held() const {
  absl::MutexLock lock(&mu_);
  return held_;
}

bool PublishSequencer::AdmitOrWait(size_t limit, std::function<void()> resume) {
  absl::MutexLock lock(&mu_);
  if (held_ < limit) return true;
  resume_below_ = limit;
  resume_ = std::move(resume);
  return false;
}

void PublishSequencer::StartLocked(const std::string& chat_key, Chat& chat,
                                   v1::Publish publish, Answers* answers) {
  const uint64_t seq = publish.seq();
  if (publish.after_seq() != 0 && failed_.contains(publish.after_seq())) {
    NoteFailedLocked(seq);
    v1::PublishAck ack;
    ack.set_seq(seq);
    ack.set_outcome(v1::PublishAck::FAILED);
    ack.set_detail(kBehindFailed);
    answers->push_back(std::move(ack));
    return;
  }
  ++chat.committing;
  commit_(
      std::move(*publish.mutable_event()),
      [self = shared_from_this(), chat_key, seq](const v1::PublishAck& ack) {
        self->Committed(chat_key, seq, ack);
      });
}

void PublishSequencer::Committed(const std::string& chat_key, uint64_t seq,
                                 const v1::PublishAck& ack) {
  Answers answers;
  std::function<void()> resume;
  v1::PublishAck own = ack;
  own.set_seq(seq);
  answers.push_back(std::move(own));
  {
    absl::MutexLock lock(&mu_);
    if (ack.outcome() == v1::PublishAck::FAILED) NoteFailedLocked(seq);
    auto it = chats_.find(chat_key);
    if (it != chats_.end()) {
      Chat& chat = it->second;
      if (chat.committing > 0) --chat.committing;
      if (chat.committing == 0) {
        // The next group: everything that arrived while this one committed,
        // up to the first publish that is answered first.
        std::deque<v1::Publish> group;
        group.swap(chat.held);
        held_ -= group.size();
        while (!group.empty()) {
          const bool ends_group = answered_first_ != nullptr &&
                                  answered_first_(group.front().event());
          const size_t before = chat.committing;
          StartLocked(chat_key, chat, std::move(group.front()), &answers);
          group.pop_front();
          if (ends_group && chat.committing > before) {
            chat.held.swap(group);
            held_ += chat.held.size();
            break;
          }
        }
        if (chat.committing == 0) chats_.erase(it);
      }
    }
    if (resume_ != nullptr && held_ < resume_below_) resume.swap(resume_);
  }
  for (v1::PublishAck& a : answers) answer_(std::move(a));
  if (resume != nullptr) resume();
}

void PublishSequencer::NoteFailedLocked(uint64_t seq) {
  if (!failed_.insert(seq).second) return;
  failed_order_.push_back(seq);
  while (failed_order_.size() > max_failed_seqs_) {
    failed_.erase(failed_order_.front());
    failed_order_.pop_front();
  }
}

}  // namespace imbridge::bridge
