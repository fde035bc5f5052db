#include "adapters/slack/user_directory.h"

#include "absl/time/clock.h"
#include "common/logging.h"

namespace imbridge::adapters::slack {

UserDirectory::UserDirectory(const SlackApi* api, absl::Duration timeout,
                             absl::Duration ttl, size_t capacity)
    : api_(api), timeout_(timeout), ttl_(ttl), cache_(capacity) {}

SlackUser UserDirectory::Lookup(absl::string_view user_id) {
  std::string id(user_id);
  {
    absl::MutexLock lock(&mu_);
    const Entry* cached = cache_.Find(id);
    if (cached != nullptr && cached->expires > absl::Now()) {
      return cached->user;
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
  cache_.Put(id, Entry{*user, absl::Now() + ttl_});
  return *user;
}

uint64_t UserDirectory::calls() const {
  absl::MutexLock lock(&mu_);
  return calls_;
}

}  // namespace imbridge::adapters::slack
