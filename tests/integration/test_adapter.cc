#include "tests/integration/test_adapter.h"

#include <cstdio>
#include <cstdlib>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace imbridge::testing {

TestAdapter::TestAdapter(std::string platform, std::string account,
                         std::string address, std::string token,
                         Options options)
    : platform_(std::move(platform)),
      account_(std::move(account)),
      options_(std::move(options)) {
  adapters::RouterClient::Options o;
  o.address = std::move(address);
  o.addresses = options_.routers;
  o.token = std::move(token);
  o.adapter_name = absl::StrCat("test-", platform_);
  o.platform = platform_;
  o.accounts = {account_};
  o.capabilities = options_.capabilities;
  o.max_in_flight = options_.max_in_flight;
  o.initial_backoff = absl::Milliseconds(50);
  o.max_backoff = absl::Milliseconds(500);
  client_ = std::make_unique<adapters::RouterClient>(std::move(o), this);
  auto journal = adapters::DeliveryJournal::Open({});
  if (!journal.ok()) {
    std::fprintf(stderr, "test adapter: %s\n",
                 journal.status().ToString().c_str());
    std::abort();
  }
  journal_ = *std::move(journal);
}

TestAdapter::~TestAdapter() { Stop(); }

void TestAdapter::Start() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = false;
  }
  client_->Start();
  echo_thread_ = std::thread([this] { EchoLoop(); });
}

void TestAdapter::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (echo_thread_.joinable()) echo_thread_.join();
  client_->Stop();
}

bool TestAdapter::WaitAttached(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (!client_->attached()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

v1::Event TestAdapter::NewEvent(const std::string& chat) {
  v1::Event e;
  e.mutable_channel()->set_platform(platform_);
  e.mutable_channel()->set_account(account_);
  e.mutable_channel()->set_chat_id(chat);
  e.set_occurred_at_ms(absl::ToUnixMillis(absl::Now()));
  return e;
}

v1::PublishAck TestAdapter::Publish(v1::Event event) {
  if (event.key().empty()) {
    absl::MutexLock lock(&mu_);
    event.set_key(absl::StrCat(platform_, ":", account_, ":ev", ++next_id_));
  }
  if (event.channel().platform().empty()) {
    event.mutable_channel()->set_platform(platform_);
    event.mutable_channel()->set_account(account_);
  }
  auto ack = client_->PublishAndWait(std::move(event), absl::Seconds(30));
  if (!ack.ok()) {
    v1::PublishAck failed;
    failed.set_outcome(v1::PublishAck::FAILED);
    failed.set_detail(std::string(ack.status().message()));
    return failed;
  }
  return *ack;
}

std::string TestAdapter::Post(const std::string& chat, const std::string& text,
                              const std::string& reply_to,
                              const std::string& thread_root,
                              v1::PublishAck* ack) {
  std::string id;
  {
    absl::MutexLock lock(&mu_);
    id = absl::StrCat(chat, "-u", ++next_id_);
  }
  v1::Event e = NewEvent(chat);
  v1::MessagePosted* p = e.mutable_posted();
  p->set_message_id(id);
  p->mutable_sender()->set_id("user-" + platform_);
  p->mutable_sender()->set_display_name("Person on " + platform_);
  p->mutable_text()->set_text(text);
  p->set_reply_to_message_id(reply_to);
  p->set_thread_root_id(thread_root);
  v1::PublishAck a = Publish(std::move(e));
  if (ack != nullptr) *ack = a;
  return id;
}

v1::PublishAck TestAdapter::Edit(const std::string& chat,
                                 const std::string& native_id,
                                 const std::string& text) {
  v1::Event e = NewEvent(chat);
  e.mutable_edited()->set_message_id(native_id);
  e.mutable_edited()->mutable_text()->set_text(text);
  e.mutable_edited()->mutable_editor()->set_id("user-" + platform_);
  return Publish(std::move(e));
}

v1::PublishAck TestAdapter::Delete(const std::string& chat,
                                   const std::string& native_id) {
  v1::Event e = NewEvent(chat);
  e.mutable_deleted()->set_message_id(native_id);
  return Publish(std::move(e));
}

v1::PublishAck TestAdapter::SetPresence(const std::string& user_id,
                                        v1::Presence presence) {
  v1::Event e = NewEvent("");
  e.mutable_presence()->mutable_user()->set_id(user_id);
  e.mutable_presence()->mutable_user()->set_display_name(user_id);
  e.mutable_presence()->set_presence(presence);
  return Publish(std::move(e));
}

void TestAdapter::FailNext(int n, bool retryable, absl::Duration retry_after) {
  absl::MutexLock lock(&mu_);
  fail_next_ = n;
  fail_retryable_ = retryable;
  fail_retry_after_ = retry_after;
}

std::vector<TestAdapter::Call> TestAdapter::calls() const {
  absl::MutexLock lock(&mu_);
  return calls_;
}

std::vector<v1::Delivery> TestAdapter::deliveries() const {
  absl::MutexLock lock(&mu_);
  return deliveries_;
}

std::string TestAdapter::CopyOf(const std::string& origin_message_id) const {
  absl::MutexLock lock(&mu_);
  std::string copy;
  for (size_t i = 0; i < deliveries_.size(); ++i) {
    const v1::Event& e = deliveries_[i].event();
    if (e.has_posted() && e.posted().message_id() == origin_message_id) {
      copy = calls_[i].native_id;
    }
  }
  return copy;
}

bool TestAdapter::WaitForCalls(size_t n, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return calls_.size() >= n;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

absl::StatusOr<std::vector<std::string>> TestAdapter::Deliver(
    const v1::Delivery& d) {
  // A simulated messenger answers every call, so a step left open by a
  // crash cannot happen here: nothing to reconcile.
  return journal_->Run(
      d.idempotency_key(),
      absl::StrCat(platform_, "/", account_, "/", d.target().chat_id()),
      {[this, &d] { return Render(d); }},
      [](size_t, const adapters::DeliveryJournal::Step&)
          -> absl::StatusOr<std::optional<std::vector<std::string>>> {
        return std::nullopt;
      });
}

absl::StatusOr<std::vector<std::string>> TestAdapter::Render(
    const v1::Delivery& d) {
  absl::MutexLock lock(&mu_);
  if (fail_next_ > 0) {
    --fail_next_;
    if (fail_retryable_) {
      return adapters::RetryableError("simulated outage", fail_retry_after_);
    }
    return absl::InvalidArgumentError("simulated permanent failure");
  }
  const v1::Event& e = d.event();
  Call call;
  call.chat = d.target().chat_id();
  call.sender_name = d.sender_name();
  call.delivery_id = d.id();
  call.target_ids.assign(d.target_message_ids().begin(),
                         d.target_message_ids().end());
  std::vector<std::string> created;
  switch (e.kind_case()) {
    case v1::Event::kPosted: {
      call.kind = "post";
      call.text = e.posted().text().text();
      call.reply_to = d.reply_to_target_id();
      call.thread_root = d.thread_root_target_id();
      call.native_id = absl::StrCat(call.chat, "-b", ++next_id_);
      created.push_back(call.native_id);
      if (options_.emit_echoes) {
        // The messenger reports the bridge's own post as a new message.
        v1::Event echo = NewEvent(call.chat);
        echo.set_key(
            absl::StrCat(platform_, ":", account_, ":echo-", call.native_id));
        echo.mutable_posted()->set_message_id(call.native_id);
        echo.mutable_posted()->mutable_sender()->set_id("bridge-bot");
        echo.mutable_posted()->mutable_text()->set_text(call.text);
        echoes_.emplace_back(absl::Now() + absl::Milliseconds(30),
                             std::move(echo));
      }
      break;
    }
    case v1::Event::kEdited:
      call.kind = "edit";
      call.text = e.edited().text().text();
      if (options_.emit_echoes && !call.target_ids.empty()) {
        v1::Event echo = NewEvent(call.chat);
        echo.set_key(
            absl::StrCat(platform_, ":", account_, ":echo-edit-", d.id()));
        echo.mutable_edited()->set_message_id(call.target_ids[0]);
        echo.mutable_edited()->mutable_text()->set_text(call.text);
        echoes_.emplace_back(absl::Now() + absl::Milliseconds(30),
                             std::move(echo));
      }
      break;
    case v1::Event::kDeleted:
      call.kind = "delete";
      break;
    case v1::Event::kPresence:
      call.kind = "presence";
      call.text = absl::StrCat(e.presence().user().id(), "=",
                               v1::Presence_Name(e.presence().presence()));
      break;
    case v1::Event::kMembership:
      call.kind = "membership";
      break;
    default:
      return absl::InvalidArgumentError("unknown event kind");
  }
  calls_.push_back(std::move(call));
  deliveries_.push_back(d);
  return created;
}

void TestAdapter::EchoLoop() {
  while (true) {
    std::vector<v1::Event> due;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::Milliseconds(10));
      if (stopping_) return;
      absl::Time now = absl::Now();
      for (auto it = echoes_.begin(); it != echoes_.end();) {
        if (it->first <= now) {
          due.push_back(std::move(it->second));
          it = echoes_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (v1::Event& e : due) {
      client_->Publish(std::move(e), [](const v1::PublishAck&) {})
          .IgnoreError();
    }
  }
}

}  // namespace imbridge::testing
