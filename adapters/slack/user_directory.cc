#include "adapters/slack/user_directory.h"

#include "absl/time/clock.h"
#include "common/logging.h"

namespace imbridge::adapters::slack {

UserDirectory::UserDirectory(const SlackApi* api, absl::Duration timeout,
                             absl::Duration ttl, size_t capacity)
    : api_(api), timeout_(timeout), ttl_(ttl), capacity_(capacity) {}

SlackUser UserDirectory::Lookup(absl::string_view user_id) {
  std::string id(user_id);
  {
    absl::MutexLock lock(&mu_);
    auto it = cache_.find(id);
    if (it != cache_.end() && it->second.expires > absl::Now()) {
      return it->second.user;
    }
    ++calls_;
  }
  auto user = api_->UserInfo(id, timeout_);
  if (!user.ok()) {
    LogWarn("users.info failed; showing the user id",
            {{"user", id}, {"error", user.status().message()}});
    SlackUser fallback;
    fallback.id = id;
    fallback.display_name = id;
    return fallback;
  }
  absl::MutexLock lock(&mu_);
  auto [it, inserted] =
      cache_.insert_or_assign(id, Entry{*user, absl::Now() + ttl_});
  if (inserted) {
    order_.push_back(id);
    while (order_.size() > capacity_) {
      cache_.erase(order_.front());
      order_.pop_front();
    }
  }
  return *user;
}

uint64_t UserDirectory::calls() const {
  absl::MutexLock lock(&mu_);
  return calls_;
}

}  // namespace imbridge::adapters::slack
