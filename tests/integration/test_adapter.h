#ifndef IMBRIDGE_TESTS_INTEGRATION_TEST_ADAPTER_H_
#define IMBRIDGE_TESTS_INTEGRATION_TEST_ADAPTER_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "adapters/common/delivery_journal.h"
#include "adapters/common/router_client.h"

namespace imbridge::testing {

// A messenger simulated in memory together with its adapter, built on the
// real RouterClient: people "type" with Post/Edit/Delete (published to the
// router like a webhook would be), and deliveries from the router land in
// the simulated chats, each new message getting a native id. Like real
// messengers it can report the bridge's own copies back as new events
// (echoes), and it can be told to fail deliveries. Like every adapter on the
// SDK it renders deliveries through a delivery journal (in memory: the
// simulated messenger lives as long as the object), so a delivery the router
// sends again after its own restart is answered with the ids recorded the
// first time instead of being posted twice.
//
// Thread-safe.
class TestAdapter : public adapters::DeliveryHandler {
 public:
  // What the simulated messenger was asked to do, in order.
  struct Call {
    std::string kind;  // "post", "edit", "delete", "presence", "membership"
    std::string chat;
    std::string text;
    std::string sender_name;
    std::vector<std::string> target_ids;  // edit/delete: the copy's ids
    std::string native_id;                // post: the id it created
    std::string reply_to;
    std::string thread_root;
    uint64_t delivery_id = 0;
  };

  struct Options {
    bool emit_echoes = false;
    std::vector<std::string> capabilities = {"edits", "deletes",  "threads",
                                             "files", "presence", "membership"};
    uint32_t max_in_flight = 64;
    // Every router's address (routers sharing one database), instead of
    // the constructor's `address` when not empty.
    std::vector<std::string> routers;
  };

  TestAdapter(std::string platform, std::string account, std::string address,
              std::string token, Options options);
  TestAdapter(std::string platform, std::string account, std::string address,
              std::string token)
      : TestAdapter(std::move(platform), std::move(account), std::move(address),
                    std::move(token), Options()) {}
  ~TestAdapter() override;

  void Start();
  void Stop();
  bool WaitAttached(absl::Duration timeout = absl::Seconds(20));

  // A person posts `text` in `chat`; returns the message's native id. The
  // publish is acknowledged before this returns (outcome in *ack).
  std::string Post(const std::string& chat, const std::string& text,
                   const std::string& reply_to = "",
                   const std::string& thread_root = "",
                   v1::PublishAck* ack = nullptr);
  v1::PublishAck Edit(const std::string& chat, const std::string& native_id,
                      const std::string& text);
  v1::PublishAck Delete(const std::string& chat, const std::string& native_id);
  v1::PublishAck SetPresence(const std::string& user_id, v1::Presence presence);
  // Publishes any event (key, platform and account filled in if empty) and
  // waits for the router's answer; a failed publish is a FAILED ack with the
  // error in `detail`.
  v1::PublishAck Publish(v1::Event event);

  // The next `n` deliveries fail: retryable (with retry_after) or permanent.
  void FailNext(int n, bool retryable,
                absl::Duration retry_after = absl::ZeroDuration());

  std::vector<Call> calls() const;
  // The delivery behind each call, whole (attachments, sender, target):
  // deliveries()[i] made calls()[i]. Failed (FailNext) deliveries are in
  // neither.
  std::vector<v1::Delivery> deliveries() const;
  // The native id of this messenger's copy of message `origin_message_id`
  // of another platform (the latest post delivered for it); "" if none.
  std::string CopyOf(const std::string& origin_message_id) const;
  // Waits until at least `n` calls (and so deliveries) were made; returns
  // false on timeout.
  bool WaitForCalls(size_t n, absl::Duration timeout = absl::Seconds(30)) const;

  adapters::RouterClient& client() { return *client_; }
  const std::string& platform() const { return platform_; }
  const std::string& account() const { return account_; }

  // DeliveryHandler.
  absl::StatusOr<std::vector<std::string>> Deliver(
      const v1::Delivery& delivery) override;

 private:
  v1::Event NewEvent(const std::string& chat);
  void EchoLoop();
  // What the simulated messenger does with `delivery` (one native call).
  absl::StatusOr<std::vector<std::string>> Render(const v1::Delivery& delivery);

  const std::string platform_;
  const std::string account_;
  const Options options_;
  std::unique_ptr<adapters::DeliveryJournal> journal_;
  std::unique_ptr<adapters::RouterClient> client_;

  mutable absl::Mutex mu_;
  std::vector<Call> calls_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::Delivery> deliveries_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
  int fail_next_ ABSL_GUARDED_BY(mu_) = 0;
  bool fail_retryable_ ABSL_GUARDED_BY(mu_) = true;
  absl::Duration fail_retry_after_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<absl::Time, v1::Event>> echoes_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread echo_thread_;
};

}  // namespace imbridge::testing

#endif  // IMBRIDGE_TESTS_INTEGRATION_TEST_ADAPTER_H_
