#ifndef IMBRIDGE_ADAPTERS_COMMON_ROUTER_CLIENT_H_
#define IMBRIDGE_ADAPTERS_COMMON_ROUTER_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "adapters/common/delivery_handler.h"
#include "imbridge/v1/config.pb.h"
#include "imbridge/v1/router.pb.h"

namespace imbridge::adapters {

// The one client of the router that every adapter uses.
//
// It keeps an Attach stream open to each configured router (several routers
// share one database; each stream has its own Hello and reconnects at once
// when its router serves again, see Options), publishes events and reports
// when the router acknowledged them, re-sends publishes that were not
// acknowledged before a disconnect, hands Delivery frames from any router to
// a DeliveryHandler and sends each result back on the stream its delivery
// came on, and streams blobs to and from the router's blob store.
//
// Publishing through several routers: publishes go through one router at a
// time, the "publishing router", so that one router sequences each chat. It
// is the first attached router in config order. When a router earlier in
// config order attaches (again), publishing moves to it only once no publish
// waits for an ack. When the publishing router's stream ends, the next attached
// router (config order) takes over at once and gets every publish not
// acknowledged yet, in the original order and with the same event keys (the
// routers' shared database deduplicates keys). A publish's ack counts only from
// the stream it was last sent on: a late ack from a router the client moved
// away from is ignored. Link requests and blobs go to the publishing router
// (blobs to the first configured router while none is attached).
//
// A delivery the router sends again (it never saw the result, for example
// after a router crash) goes to the handler again: the adapter's delivery
// journal (delivery_journal.h) answers one it already completed with the
// recorded native ids, without a second native call, also after the adapter
// restarted; edits and deletes are idempotent by themselves.
//
// Threading: all public methods are thread-safe. Publish callbacks and
// Deliver() run on the client's own threads and must not call Stop().
class RouterClient {
 public:
  struct Options {
    // Router address, host:port (used when `addresses` is empty).
    std::string address = "127.0.0.1:7700";
    // Every router's address, in config order (the publishing router is
    // the first attached one): one Attach stream each. Empty: `address`.
    std::vector<std::string> addresses;
    // The adapter's token; sent as "authorization: Bearer <token>".
    std::string token;
    // Sent in Hello.
    std::string adapter_name;
    std::string platform;
    std::vector<std::string> accounts;
    std::vector<std::string> capabilities;
    // Deliveries in flight the adapter asks for (Hello.max_in_flight).
    uint32_t max_in_flight = 64;
    // Threads that run DeliveryHandler::Deliver.
    int delivery_threads = 4;
    // Reconnecting. While the router cannot be reached, gRPC alone retries
    // the connection: first after `initial_backoff` (at most
    // `max_connect_backoff`), then growing up to `max_connect_backoff`
    // apart, so the adapter attaches within about that long of the router
    // serving again. When the router answers but ends the stream before its
    // Welcome (a wrong token, a bad Hello), the next attempt waits
    // `initial_backoff`, doubling up to `max_backoff`, each wait randomized
    // by +-20 %; a router that is shutting down (kUnavailable) is tried
    // again at most `max_connect_backoff` later. After an established stream
    // ends, the next attempt starts after `initial_backoff`.
    absl::Duration initial_backoff = absl::Milliseconds(100);
    absl::Duration max_backoff = absl::Seconds(10);
    absl::Duration max_connect_backoff = absl::Milliseconds(250);
    // Most publishes waiting for acknowledgement; Publish() fails with
    // kUnavailable beyond it.
    size_t max_pending_publishes = 65536;

    // The routers to attach to: `addresses`, or `address` alone.
    std::vector<std::string> RouterAddresses() const {
      return addresses.empty() ? std::vector<std::string>{address} : addresses;
    }
  };

  // Builds options from a RouterConnection config message plus the adapter's
  // own identity.
  static Options OptionsFromConfig(const v1::RouterConnection& config,
                                   std::string platform,
                                   std::vector<std::string> accounts,
                                   std::vector<std::string> capabilities);

  // Outcome of a publish as the router reported it.
  using PublishCallback = std::function<void(const v1::PublishAck& ack)>;

  // `handler` must outlive the client; it may be null for publish-only use.
  RouterClient(Options options, DeliveryHandler* handler);
  ~RouterClient();  // Calls Stop().

  RouterClient(const RouterClient&) = delete;
  RouterClient& operator=(const RouterClient&) = delete;

  // Replaces the accounts and capabilities sent in Hello (the AdapterRuntime
  // takes them from its connector). Only before Start():
  // kFailedPrecondition after it, and nothing changes.
  absl::Status SetHello(std::vector<std::string> accounts,
                        std::vector<std::string> capabilities);

  // Starts connecting in the background. Returns at once.
  void Start();

  // Waits (up to 5 s) for deliveries in progress to finish and their
  // results to be sent to the router, starting no new ones; then closes the
  // stream and joins all threads. Pending publishes are dropped (their
  // callbacks are not called); queued deliveries are re-sent by the router
  // to the next client.
  void Stop();

  // True while an Attach stream to at least one router is established
  // (Welcome received).
  bool attached() const;

  // 0 while no Attach stream is established; otherwise a number (from 1)
  // that grows whenever a stream to any router is established or ends. What
  // an adapter learned from the routers while it had one value (for example
  // a webhook key that was valid) may be stale once it changed: a
  // revocation pushed meanwhile may not have been heard.
  uint64_t session() const;

  // One configured router as the client sees it.
  struct RouterStatus {
    std::string address;
    // Its Attach stream is established.
    bool attached = false;
    // Publishes go through it (at most one router at a time).
    bool publishing = false;
  };
  // Every configured router, in config order.
  std::vector<RouterStatus> routers() const;

  // `fn` is called with the webhook id of each revocation a router sends
  // (RouterFrame.webhook_revocations), on the session thread of that
  // router's stream, before the client acknowledges it to the router (which
  // answers the revoke call only then). It must not block. Call before
  // Start().
  void OnWebhookRevoked(std::function<void(const std::string& webhook_id)> fn);

  // The Welcome of the last stream established (to any router).
  v1::Welcome welcome() const;

  // Answers chat commands addressed to this adapter ("<prefix> <word> ...",
  // router.proto ChatCommand). Call before Start(): `words` are announced in
  // Hello.chat_commands. `handler` runs on a command thread of the client's
  // own (one command at a time), may block (call the messenger, CreateLink)
  // and returns the answer (its id is filled in). The answer is sent on the
  // stream the command came on; if that stream ended meanwhile it is
  // dropped and a router forwards the command again, so a command may be
  // handled more than once: be idempotent by command.event().key().
  using ChatCommandFn =
      std::function<v1::ChatCommandAnswer(const v1::ChatCommand& command)>;
  absl::Status OnChatCommand(std::vector<std::string> words,
                             ChatCommandFn handler);

  // Creates a runtime link over the publishing router's Attach stream
  // (router.proto LinkRequest: a member must be a channel of this adapter;
  // an identical existing link is OK). Returns the link as stored. Blocks up to
  // `timeout` for the router's answer. kUnavailable at once while not attached,
  // or when the stream ended before the answer (the link may exist then: retry,
  // it is idempotent); kDeadlineExceeded without an answer in time; otherwise
  // the router's code and message. Callable from any thread except the client's
  // session thread (not from a publish callback).
  absl::StatusOr<v1::Link> CreateLink(const v1::Link& link,
                                      absl::Duration timeout);
  // CreateLink with members narrowed to the threads of copies the router
  // resolves (`thread_roots`, router.proto MemberThreadRoot); the returned
  // link shows the thread_ids it stored.
  absl::StatusOr<v1::Link> CreateLink(
      const v1::Link& link,
      const std::vector<v1::MemberThreadRoot>& thread_roots,
      absl::Duration timeout);
  // Deletes a runtime link this adapter's platform created, likewise.
  // kNotFound if there is none (also when a retried delete already did it).
  absl::Status DeleteLink(absl::string_view name, absl::Duration timeout);

  // Queues `event` for the router. `done` runs once, on a client thread, when
  // the router acknowledged it (possibly after reconnects). Fails at once
  // with kUnavailable if too many publishes are pending.
  //
  // Order per origin chat: the publish names the chat's last publish still
  // pending (Publish.after_seq). If that one is answered FAILED, this one
  // is answered FAILED too and not stored: by the router on the stream the
  // failure happened on, and by the client itself (detail "an earlier event
  // of the same chat was not stored; ...", never sent) when it would be
  // sent on a later stream, after a reconnect, where the router no longer
  // knows of the failure. Publish the chat again from the failed one.
  absl::Status Publish(v1::Event event, PublishCallback done);

  // Publishes and waits up to `timeout` for the acknowledgement. Returns the
  // ack, or kDeadlineExceeded if it did not come in time (the event stays
  // queued and is still sent; the router deduplicates by key). For webhook
  // handlers that must answer only after the router has the event.
  absl::StatusOr<v1::PublishAck> PublishAndWait(v1::Event event,
                                                absl::Duration timeout);

  // Streams a file into the router's blob store. `read` is called repeatedly
  // to fill up to `max` bytes into `buf` and returns how many it filled (0 at
  // end) or an error. Blocks until the router answered.
  absl::StatusOr<v1::BlobRef> PutBlob(
      const v1::BlobMeta& meta,
      const std::function<absl::StatusOr<size_t>(char* buf, size_t max)>& read);

  // Convenience: uploads bytes held in memory.
  absl::StatusOr<v1::BlobRef> PutBlob(const v1::BlobMeta& meta,
                                      absl::string_view data);

  // Streams a blob from the router; `write` receives each chunk in order.
  // Returns the blob's metadata. Blocks until done.
  absl::StatusOr<v1::BlobMeta> GetBlob(
      absl::string_view blob_id,
      const std::function<absl::Status(absl::string_view chunk)>& write);

  // Convenience: downloads a blob into memory (refuses over `max_bytes`).
  absl::StatusOr<std::string> GetBlob(absl::string_view blob_id,
                                      uint64_t max_bytes);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// The bytes of blob `blob_id` (refused over `max_bytes`) for a delivery that
// uploads them to a messenger: RouterClient::GetBlob(), with any failure
// made a RetryableError "cannot read the file from the router: <why>" (the
// delivery is tried again later). Blocks until the download ends.
absl::StatusOr<std::string> ReadBlobForUpload(RouterClient& router,
                                              absl::string_view blob_id,
                                              uint64_t max_bytes);

}  // namespace imbridge::adapters

#endif  // IMBRIDGE_ADAPTERS_COMMON_ROUTER_CLIENT_H_
