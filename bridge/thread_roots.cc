#include "bridge/thread_roots.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace imbridge::bridge {
namespace {

// Not a platform name: platforms are letters, digits, '-' and '_'.
constexpr absl::string_view kParkedPrefix = "~parked/";

// Pending deliveries read per page while looking for the root's.
constexpr int kPendingPage = 256;

// The first part of the copy of message `group_id` in `chat_key`, or "".
absl::StatusOr<std::string> CopyIn(Store& store, int64_t group_id,
                                   const std::string& chat_key) {
  absl::StatusOr<std::vector<std::string>> ids =
      store.FindMessagesInChannel(group_id, chat_key);
  if (!ids.ok()) return ids.status();
  return ids->empty() ? std::string() : ids->front();
}

// Whether a delivery of event `group_id` to `target_key` is pending.
absl::StatusOr<bool> DeliveryPending(Store& store, int64_t group_id,
                                     const std::string& target_key) {
  int64_t after = 0;
  while (true) {
    absl::StatusOr<std::vector<DeliveryRecord>> page =
        store.LoadPendingDeliveries(target_key, after, kPendingPage);
    if (!page.ok()) return page.status();
    for (const DeliveryRecord& d : *page) {
      if (d.event_id == group_id) return true;
      after = d.id;
    }
    if (page->size() < static_cast<size_t>(kPendingPage)) return false;
  }
}

}  // namespace

std::string ParkedQueueKey(int64_t root_event, absl::string_view chat_key) {
  return absl::StrCat(kParkedPrefix, root_event, "/", chat_key);
}

bool IsParkedQueue(absl::string_view target_key) {
  return absl::StartsWith(target_key, kParkedPrefix);
}

std::optional<ParkedQueue> ParseParkedQueue(absl::string_view target_key) {
  if (!absl::ConsumePrefix(&target_key, kParkedPrefix)) return std::nullopt;
  size_t slash = target_key.find('/');
  ParkedQueue parked;
  if (slash == absl::string_view::npos ||
      !absl::SimpleAtoi(target_key.substr(0, slash), &parked.root_event)) {
    return std::nullopt;
  }
  parked.chat_key = std::string(target_key.substr(slash + 1));
  return parked;
}

v1::ChannelRef ChatOfKey(absl::string_view chat_key) {
  v1::ChannelRef chat;
  size_t first = chat_key.find('/');
  size_t second = first == absl::string_view::npos
                      ? absl::string_view::npos
                      : chat_key.find('/', first + 1);
  if (second == absl::string_view::npos) return chat;
  chat.set_platform(std::string(chat_key.substr(0, first)));
  chat.set_account(std::string(chat_key.substr(first + 1, second - first - 1)));
  chat.set_chat_id(std::string(chat_key.substr(second + 1)));
  return chat;
}

absl::StatusOr<ThreadRootState> LookUpThreadRoot(Store& store,
                                                 int64_t root_event,
                                                 const v1::ChannelRef& chat) {
  v1::ChannelRef whole = chat;
  whole.clear_thread_id();
  const std::string chat_key = ChannelKey(whole, false);
  ThreadRootState state;
  // Copy, pending, copy again: a delivery that completes between the reads
  // (its copy and its completion are one commit) is found by the second.
  absl::StatusOr<std::string> copy = CopyIn(store, root_event, chat_key);
  if (!copy.ok()) return copy.status();
  if (copy->empty()) {
    absl::StatusOr<bool> pending =
        DeliveryPending(store, root_event, ChannelKey(whole, true));
    if (!pending.ok()) return pending.status();
    if (*pending) return state;
    copy = CopyIn(store, root_event, chat_key);
    if (!copy.ok()) return copy.status();
  }
  if (copy->empty()) {
    state.kind = ThreadRootState::kWholeChat;
  } else {
    state.kind = ThreadRootState::kThread;
    state.thread_id = *std::move(copy);
  }
  return state;
}

}  // namespace imbridge::bridge
