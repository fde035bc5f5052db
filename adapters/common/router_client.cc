#include "adapters/common/router_client.h"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/executor.h"
#include "common/logging.h"
#include "common/router_keepalive.h"
#include "common/status_macros.h"
#include "common/utf8.h"
#include "grpcpp/grpcpp.h"
#include "imbridge/v1/router.grpc.pb.h"

namespace imbridge::adapters {
namespace {

// Bytes per uploaded chunk (the protocol allows up to 1 MiB).
constexpr size_t kBlobChunkBytes = 256 * 1024;
// Soft cap on one AdapterFrame, well under gRPC's default 4 MiB receive limit.
constexpr size_t kMaxFrameBytes = 1 << 20;
// How long Stop() waits for deliveries in progress and their results.
constexpr absl::Duration kStopDrainTimeout = absl::Seconds(5);
// How long one connection attempt to the router may take.
constexpr absl::Duration kConnectTimeout = absl::Seconds(2);
// How often the session thread looks up from waiting for the router (to see
// Stop()), and how often it repeats that the router cannot be reached.
constexpr absl::Duration kConnectPoll = absl::Milliseconds(100);
constexpr absl::Duration kUnreachableLogInterval = absl::Seconds(60);
// How many failed publish seqs the client remembers (as the router does).
constexpr size_t kMaxFailedSeqs = 4096;
// The "stream" of a publish the client answered FAILED itself, never sent:
// no stream (they are numbered from 1) knows of it.
constexpr uint64_t kRefusedHere = 0;

absl::Status FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

// The chat whose publishes are ordered after each other (Publish.after_seq).
std::string OriginChat(const v1::ChannelRef& channel) {
  return absl::StrCat(channel.platform(), "/", channel.account(), "/",
                      channel.chat_id());
}

// The channel a delivery is ordered in.
std::string TargetKey(const v1::ChannelRef& channel) {
  return absl::StrCat(channel.platform(), "/", channel.account(), "/",
                      channel.chat_id(), "#", channel.thread_id());
}

int ClampedMillis(absl::Duration d) {
  int64_t ms = absl::ToInt64Milliseconds(d);
  return static_cast<int>(
      std::clamp<int64_t>(ms, 1, std::numeric_limits<int>::max()));
}

uint32_t RetryAfterMillis(const absl::Status& status) {
  int64_t ms = absl::ToInt64Milliseconds(RetryAfter(status));
  return static_cast<uint32_t>(
      std::clamp<int64_t>(ms, 0, std::numeric_limits<uint32_t>::max()));
}

v1::DeliveryResult NotAttempted(uint64_t id) {
  v1::DeliveryResult result;
  result.set_id(id);
  v1::DeliveryError* error = result.mutable_error();
  error->set_retryable(true);
  error->set_not_attempted(true);
  error->set_message("an earlier delivery to this channel failed");
  return result;
}

}  // namespace

// Threading model. Each configured router has a session thread that owns
// its Attach stream: it connects, sends Hello, waits for Welcome, then reads
// frames until the stream ends and backs off before the next attempt. While
// a stream is established, a writer thread drains everything queued for it
// (publishes, results) into one AdapterFrame per Write, one Write in flight.
// `delivery_threads` workers, shared by all routers, run the handler; each
// target channel is a queue that at most one worker serves at a time. Stream
// numbers (`session`) are unique across routers: a delivery, a failed
// publish or a command answer names the stream it belongs to. All shared
// state is guarded by `mu_`; no lock is held across gRPC calls or the
// handler.
class RouterClient::Impl {
 public:
  Impl(Options options, DeliveryHandler* handler)
      : options_(std::move(options)), handler_(handler) {
    // gRPC's connection backoff is the only one while a router is
    // unreachable (see SessionLoop), so it is kept short.
    absl::Duration max_connect_backoff =
        std::max(options_.max_connect_backoff, absl::Milliseconds(1));
    grpc::ChannelArguments args;
    args.SetInt(
        GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
        ClampedMillis(std::min(options_.initial_backoff, max_connect_backoff)));
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
                ClampedMillis(max_connect_backoff));
    // The shortest time one connection attempt is given (gRPC's default is
    // 20 s, during which a router that came back is not tried again).
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS,
                ClampedMillis(kConnectTimeout));
    // A router that goes silent is noticed by keepalive pings
    // (common/router_keepalive.h).
    SetRouterKeepalive(args);
    for (std::string& address : options_.RouterAddresses()) {
      auto router = std::make_unique<RouterLink>();
      router->channel = grpc::CreateCustomChannel(
          address, grpc::InsecureChannelCredentials(), args);
      router->stub = v1::Router::NewStub(router->channel);
      router->address = std::move(address);
      routers_.push_back(std::move(router));
    }
  }

  ~Impl() { Stop(); }

  // Before Start() only: the session thread reads options_ unlocked.
  absl::Status SetHello(std::vector<std::string> accounts,
                        std::vector<std::string> capabilities) {
    absl::MutexLock lock(&mu_);
    if (started_) {
      return absl::FailedPreconditionError(
          "the Hello cannot change after the client started");
    }
    options_.accounts = std::move(accounts);
    options_.capabilities = std::move(capabilities);
    return absl::OkStatus();
  }

  void Start() {
    absl::MutexLock stop_lock(&stop_mu_);
    absl::MutexLock lock(&mu_);
    if (started_ || stopping_) return;
    started_ = true;
    if (on_chat_command_) command_runner_ = std::make_unique<Executor>(1);
    for (const std::unique_ptr<RouterLink>& router : routers_) {
      session_threads_.emplace_back(
          [this, link = router.get()] { SessionLoop(*link); });
    }
    int workers = std::max(1, options_.delivery_threads);
    for (int i = 0; i < workers; ++i) {
      workers_.emplace_back([this] { WorkerLoop(); });
    }
  }

  void Stop() {
    absl::MutexLock stop_lock(&stop_mu_);
    {
      absl::MutexLock lock(&mu_);
      // Let deliveries in progress finish and their results reach the
      // router, so that it does not send them again after a restart (a
      // messenger without idempotency keys would show them twice). Nothing
      // new is started meanwhile; queued deliveries are re-sent by the
      // router later.
      draining_ = true;
      auto drained = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        if (busy_workers_ != 0) return false;
        for (const std::unique_ptr<RouterLink>& router : routers_) {
          if (router->session != 0 &&
              (!router->results.empty() || router->writing)) {
            return false;
          }
        }
        return true;
      };
      mu_.AwaitWithTimeout(absl::Condition(&drained), kStopDrainTimeout);
      stopping_ = true;
      for (const std::unique_ptr<RouterLink>& router : routers_) {
        if (router->stream_context != nullptr) {
          router->stream_context->TryCancel();
        }
      }
      for (grpc::ClientContext* context : blob_calls_) context->TryCancel();
    }
    for (std::thread& thread : session_threads_) thread.join();
    session_threads_.clear();
    for (std::thread& worker : workers_) worker.join();
    workers_.clear();
    // Commands still queued return at once (stopping_).
    command_runner_.reset();
    std::map<uint64_t, PendingPublish> dropped;
    absl::flat_hash_map<std::string, TargetQueue> targets;
    {
      absl::MutexLock lock(&mu_);
      dropped.swap(pending_);
      unacknowledged_ = 0;
      last_pending_of_chat_.clear();
      targets.swap(targets_);
      for (const std::unique_ptr<RouterLink>& router : routers_) {
        router->ClearStreamQueues();
      }
      ready_.clear();
    }
  }

  bool attached() const {
    absl::MutexLock lock(&mu_);
    return AttachedLocked();
  }

  uint64_t session() const {
    absl::MutexLock lock(&mu_);
    return AttachedLocked() ? streams_changed_ : 0;
  }

  std::vector<RouterStatus> routers() const {
    absl::MutexLock lock(&mu_);
    std::vector<RouterStatus> statuses;
    for (size_t i = 0; i < routers_.size(); ++i) {
      statuses.push_back({routers_[i]->address, routers_[i]->session != 0,
                          publisher_ == static_cast<int>(i)});
    }
    return statuses;
  }

  void OnWebhookRevoked(std::function<void(const std::string&)> fn) {
    on_webhook_revoked_ = std::move(fn);
  }

  v1::Welcome welcome() const {
    absl::MutexLock lock(&mu_);
    return welcome_;
  }

  absl::Status OnChatCommand(std::vector<std::string> words,
                             ChatCommandFn handler) {
    absl::MutexLock lock(&mu_);
    if (started_) {
      return absl::FailedPreconditionError(
          "chat commands cannot change after the client started");
    }
    command_words_ = std::move(words);
    on_chat_command_ = std::move(handler);
    return absl::OkStatus();
  }

  // Sends `request` on the publishing router's stream and waits for its
  // reply.
  absl::StatusOr<v1::LinkReply> RequestLink(v1::LinkRequest request,
                                            absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    if (publisher_ < 0 || stopping_) {
      return absl::UnavailableError("not attached to the router");
    }
    RouterLink& router = *routers_[publisher_];
    uint64_t session = router.session;
    uint64_t id = ++next_link_request_;
    request.set_id(id);
    router.link_requests.push_back(std::move(request));
    auto& reply = link_waiters_[id];
    auto answered_or_gone = [this, &reply, &router,
                             session]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return reply.has_value() || router.session != session || stopping_;
    };
    bool done =
        mu_.AwaitWithTimeout(absl::Condition(&answered_or_gone), timeout);
    std::optional<v1::LinkReply> result = std::move(reply);
    link_waiters_.erase(id);
    if (result.has_value()) return *std::move(result);
    if (!done) {
      return absl::DeadlineExceededError(
          absl::StrCat("the router did not answer the link request within ",
                       absl::FormatDuration(timeout)));
    }
    return absl::UnavailableError(
        "the stream to the router ended before it answered the link request");
  }

  void RunChatCommand(const v1::ChatCommand& command, uint64_t session) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_ || RouterOfLocked(session) == nullptr) return;
    }
    v1::ChatCommandAnswer answer;
    try {
      answer = on_chat_command_(command);
    } catch (const std::exception& e) {
      LogError("chat command handler threw; answering with an error",
               {{"word", command.word()}, {"error", e.what()}});
      answer.Clear();
      answer.set_text(absl::StrCat("The command failed: ", e.what()));
    }
    answer.set_id(command.id());
    absl::MutexLock lock(&mu_);
    // On a later stream the router has forwarded the command again.
    if (RouterLink* router = RouterOfLocked(session); router != nullptr) {
      router->command_answers.push_back(std::move(answer));
    }
  }

  absl::Status Publish(v1::Event event, PublishCallback done) {
    // protobuf would refuse the whole frame that carries such an event, and
    // re-sending it would wedge the stream.
    if (std::string field = FindInvalidUtf8Field(event); !field.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("the event's ", field, " is not valid UTF-8"));
    }
    size_t bytes = event.ByteSizeLong();
    // The router could never accept it; re-sending it would wedge the stream.
    if (bytes > kMaxFrameBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("the event is ", bytes, " bytes; at most ",
                       kMaxFrameBytes, " can be published"));
    }
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::UnavailableError("router client is stopped");
    if (pending_.size() >= options_.max_pending_publishes) {
      return absl::UnavailableError(absl::StrCat(
          "too many publishes waiting for the router (", pending_.size(), ")"));
    }
    // With nothing waiting for an ack, the first attached router may take
    // over again.
    if (unacknowledged_ == 0) ChoosePublisherLocked();
    uint64_t seq = next_seq_++;
    ++unacknowledged_;
    PendingPublish& pending = pending_[seq];
    pending.publish.set_seq(seq);
    pending.chat = OriginChat(event.channel());
    // Ordered after the chat's last publish still waiting for the router.
    auto [last, first] = last_pending_of_chat_.try_emplace(pending.chat, seq);
    if (!first) {
      pending.publish.set_after_seq(last->second);
      last->second = seq;
    }
    *pending.publish.mutable_event() = std::move(event);
    pending.done = std::move(done);
    pending.bytes = bytes;
    if (publisher_ >= 0) routers_[publisher_]->outbox.push_back(seq);
    return absl::OkStatus();
  }

  absl::StatusOr<v1::PublishAck> PublishAndWait(v1::Event event,
                                                absl::Duration timeout) {
    struct Waiter {
      absl::Mutex mu;
      bool done ABSL_GUARDED_BY(mu) = false;
      v1::PublishAck ack ABSL_GUARDED_BY(mu);
    };
    auto waiter = std::make_shared<Waiter>();
    IMB_RETURN_IF_ERROR(
        Publish(std::move(event), [waiter](const v1::PublishAck& ack) {
          absl::MutexLock lock(&waiter->mu);
          waiter->ack = ack;
          waiter->done = true;
        }));
    absl::MutexLock lock(&waiter->mu);
    if (!waiter->mu.AwaitWithTimeout(absl::Condition(&waiter->done), timeout)) {
      return absl::DeadlineExceededError(
          absl::StrCat("the router did not acknowledge the event within ",
                       absl::FormatDuration(timeout)));
    }
    return waiter->ack;
  }

  absl::StatusOr<v1::BlobRef> PutBlob(
      const v1::BlobMeta& meta,
      const std::function<absl::StatusOr<size_t>(char* buf, size_t max)>&
          read) {
    grpc::ClientContext context;
    AddAuthorization(&context);
    if (!RegisterBlobCall(&context)) {
      return absl::UnavailableError("router client is stopped");
    }
    absl::StatusOr<v1::BlobRef> ref = UploadBlob(&context, meta, read);
    UnregisterBlobCall(&context);
    return ref;
  }

  absl::StatusOr<v1::BlobMeta> GetBlob(
      absl::string_view blob_id,
      const std::function<absl::Status(absl::string_view chunk)>& write) {
    grpc::ClientContext context;
    AddAuthorization(&context);
    if (!RegisterBlobCall(&context)) {
      return absl::UnavailableError("router client is stopped");
    }
    absl::StatusOr<v1::BlobMeta> meta = DownloadBlob(&context, blob_id, write);
    UnregisterBlobCall(&context);
    return meta;
  }

 private:
  using Stream = grpc::ClientReaderWriter<v1::AdapterFrame, v1::RouterFrame>;

  struct PendingPublish {
    v1::Publish publish;
    PublishCallback done;
    size_t bytes = 0;
    // The event's origin chat (OriginChat).
    std::string chat;
    // The stream it was last sent on (0: none yet); only that stream's ack
    // counts.
    uint64_t sent_session = 0;
    // Its callback was taken to run; it is forgotten right after.
    bool acknowledged = false;
  };

  // Acknowledged publishes: callback and ack (owned elsewhere).
  using Acknowledged =
      std::vector<std::pair<PublishCallback, const v1::PublishAck*>>;

  struct QueuedDelivery {
    v1::Delivery delivery;
    // The stream it came from; its result goes only there.
    uint64_t session = 0;
  };

  // Deliveries for one target channel. Exists while it is in `ready_` or a
  // worker serves it.
  struct TargetQueue {
    std::deque<QueuedDelivery> deliveries;
  };

  // A target held back after the retryable failure of delivery `after`,
  // which came on stream `session` (delivery ids are a router's own).
  struct Block {
    uint64_t session = 0;
    uint64_t after = 0;
    // Later deliveries already answered "not attempted".
    absl::flat_hash_set<uint64_t> skipped;
  };

  struct SessionEnd {
    bool welcomed = false;
    absl::Status status;
  };

  // One configured router and its Attach stream. The address, channel and
  // stub are fixed at construction; everything else is guarded by `mu_`
  // (members of a nested struct cannot name it in ABSL_GUARDED_BY).
  struct RouterLink {
    std::string address;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<v1::Router::Stub> stub;

    grpc::ClientContext* stream_context = nullptr;
    // The established stream's number, 0 while none is.
    uint64_t session = 0;
    // The writer is sending a frame (taken from the queues below).
    bool writing = false;
    // Seqs to send on this stream, in order; acked ones are skipped. Only
    // the publishing router's is filled.
    std::deque<uint64_t> outbox;
    // Results of deliveries that came on this stream.
    std::vector<v1::DeliveryResult> results;
    // WebhookRevocation ids applied, to acknowledge on this stream.
    std::vector<uint64_t> revocations_applied;
    // Link requests and command answers to send on this stream.
    std::vector<v1::LinkRequest> link_requests;
    std::vector<v1::ChatCommandAnswer> command_answers;

    bool HasWork() const {
      return !outbox.empty() || !results.empty() ||
             !revocations_applied.empty() || !link_requests.empty() ||
             !command_answers.empty();
    }
    void ClearStreamQueues() {
      outbox.clear();
      results.clear();
      revocations_applied.clear();
      link_requests.clear();
      command_answers.clear();
    }
  };

  bool AttachedLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const std::unique_ptr<RouterLink>& router : routers_) {
      if (router->session != 0) return true;
    }
    return false;
  }

  // The router whose established stream is `session`, or null when that
  // stream ended.
  RouterLink* RouterOfLocked(uint64_t session) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (session == 0) return nullptr;
    for (const std::unique_ptr<RouterLink>& router : routers_) {
      if (router->session == session) return router.get();
    }
    return nullptr;
  }

  // Picks the publishing router after a stream started or ended, or before
  // a publish while none waits for an ack: the current one stays while it is
  // attached and publishes wait for its acks (one router sequences a chat,
  // and acks count only from the stream a publish was sent on); otherwise the
  // first attached router in config order. The one that takes over gets
  // every publish not acknowledged yet, in seq order.
  void ChoosePublisherLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    int first = -1;
    for (size_t i = 0; i < routers_.size(); ++i) {
      if (routers_[i]->session != 0) {
        first = static_cast<int>(i);
        break;
      }
    }
    if (first == publisher_) return;
    if (publisher_ >= 0 && routers_[publisher_]->session != 0 &&
        unacknowledged_ > 0) {
      return;
    }
    int previous = publisher_;
    publisher_ = first;
    if (previous >= 0) routers_[previous]->outbox.clear();
    if (first < 0) return;
    std::deque<uint64_t>& outbox = routers_[first]->outbox;
    outbox.clear();
    for (const auto& [seq, publish] : pending_) {
      if (!publish.acknowledged) outbox.push_back(seq);
    }
    // Logged when the publishing router failed (not when publishing moves
    // back with nothing pending).
    if (previous >= 0 && routers_[previous]->session == 0) {
      LogWarn("publishing through another router",
              {{"address", routers_[first]->address},
               {"previous", routers_[previous]->address},
               {"pending_publishes", absl::StrCat(outbox.size())}});
    }
  }

  void AddAuthorization(grpc::ClientContext* context) const {
    context->AddMetadata("authorization",
                         absl::StrCat("Bearer ", options_.token));
  }

  // Where blobs go: the publishing router, else the first configured.
  const RouterLink& BlobRouter() const {
    absl::MutexLock lock(&mu_);
    return *routers_[std::max(publisher_, 0)];
  }

  bool RegisterBlobCall(grpc::ClientContext* context) {
    absl::MutexLock lock(&mu_);
    if (stopping_) return false;
    blob_calls_.insert(context);
    return true;
  }

  void UnregisterBlobCall(grpc::ClientContext* context) {
    absl::MutexLock lock(&mu_);
    blob_calls_.erase(context);
  }

  absl::StatusOr<v1::BlobRef> UploadBlob(
      grpc::ClientContext* context, const v1::BlobMeta& meta,
      const std::function<absl::StatusOr<size_t>(char* buf, size_t max)>&
          read) {
    v1::BlobRef ref;
    std::unique_ptr<grpc::ClientWriter<v1::BlobChunk>> writer =
        BlobRouter().stub->PutBlob(context, &ref);
    bool first = true;
    bool end = false;
    while (!end) {
      v1::BlobChunk chunk;
      if (first) *chunk.mutable_meta() = meta;
      std::string* data = chunk.mutable_data();
      data->resize(kBlobChunkBytes);
      size_t filled = 0;
      while (filled < kBlobChunkBytes) {
        absl::StatusOr<size_t> n =
            read(data->data() + filled, kBlobChunkBytes - filled);
        if (!n.ok() || *n > kBlobChunkBytes - filled) {
          context->TryCancel();
          writer->Finish().IgnoreError();
          if (!n.ok()) return n.status();
          return absl::InternalError("blob reader returned more than asked");
        }
        if (*n == 0) {
          end = true;
          break;
        }
        filled += *n;
      }
      data->resize(filled);
      if (filled == 0 && !first) break;
      first = false;
      // A failed Write means the router ended the call; Finish says why.
      if (!writer->Write(chunk)) break;
    }
    writer->WritesDone();
    grpc::Status status = writer->Finish();
    if (!status.ok()) return FromGrpc(status);
    return ref;
  }

  absl::StatusOr<v1::BlobMeta> DownloadBlob(
      grpc::ClientContext* context, absl::string_view blob_id,
      const std::function<absl::Status(absl::string_view chunk)>& write) {
    v1::BlobRef request;
    request.set_blob_id(std::string(blob_id));
    std::unique_ptr<grpc::ClientReader<v1::BlobChunk>> reader =
        BlobRouter().stub->GetBlob(context, request);
    v1::BlobMeta meta;
    absl::Status sink_status;
    v1::BlobChunk chunk;
    while (reader->Read(&chunk)) {
      if (chunk.has_meta()) meta = chunk.meta();
      if (chunk.data().empty()) continue;
      sink_status = write(chunk.data());
      if (!sink_status.ok()) {
        context->TryCancel();
        break;
      }
    }
    grpc::Status status = reader->Finish();
    if (!sink_status.ok()) return sink_status;
    if (!status.ok()) return FromGrpc(status);
    return meta;
  }

  // Connects, attaches and re-attaches to `router` until Stop(). There is
  // one backoff at a time: while the router is unreachable, WaitForRouter
  // waits on gRPC's connection backoff (short, see the constructor); the
  // client's own backoff only spaces attempts the router answered and
  // refused.
  void SessionLoop(RouterLink& router) {
    absl::BitGen gen;
    absl::Duration backoff = options_.initial_backoff;
    while (true) {
      if (!WaitForRouter(router)) return;
      SessionEnd end = RunSession(router);
      if (end.welcomed) backoff = options_.initial_backoff;
      absl::Duration wait = backoff;
      // The router is going away (it is shutting down, or the connection
      // broke): it is worth trying as soon as it can serve again.
      if (!end.welcomed &&
          end.status.code() == absl::StatusCode::kUnavailable) {
        wait = std::min(wait, options_.max_connect_backoff);
      }
      wait = absl::Trunc(wait * absl::Uniform(gen, 0.8, 1.2),
                         absl::Milliseconds(1));
      {
        absl::MutexLock lock(&mu_);
        if (stopping_) return;
      }
      LogSessionEnd(router, end, wait);
      {
        absl::MutexLock lock(&mu_);
        mu_.AwaitWithTimeout(absl::Condition(&stopping_), wait);
        if (stopping_) return;
      }
      if (!end.welcomed) backoff = std::min(backoff * 2, options_.max_backoff);
    }
  }

  // Waits until the channel to `router` is connected; gRPC retries the
  // connection meanwhile. Logs when the router cannot be reached, and again
  // every kUnreachableLogInterval. False once Stop() was called.
  bool WaitForRouter(const RouterLink& router) {
    absl::Time started = absl::Now();
    absl::Time next_log = absl::InfinitePast();
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        if (stopping_) return false;
      }
      if (router.channel->WaitForConnected(
              absl::ToChronoTime(absl::Now() + kConnectPoll))) {
        return true;
      }
      absl::Time now = absl::Now();
      if (now >= next_log) {
        next_log = now + kUnreachableLogInterval;
        LogWarn("cannot reach the router; connecting again",
                {{"address", router.address},
                 {"waited", absl::FormatDuration(absl::Trunc(
                                now - started, absl::Milliseconds(1)))}});
      }
    }
  }

  static void LogSessionEnd(const RouterLink& router, const SessionEnd& end,
                            absl::Duration wait) {
    std::string code = absl::StatusCodeToString(end.status.code());
    std::string retry_in = absl::FormatDuration(wait);
    std::initializer_list<LogField> fields = {{"address", router.address},
                                              {"code", code},
                                              {"error", end.status.message()},
                                              {"retry_in", retry_in}};
    if (end.status.code() == absl::StatusCode::kUnauthenticated) {
      LogError("the router rejected the adapter's token", fields);
    } else if (end.welcomed) {
      LogWarn("detached from the router", fields);
    } else {
      LogWarn("cannot attach to the router", fields);
    }
  }

  // One Attach stream to `router`, from connecting to its end.
  SessionEnd RunSession(RouterLink& router) {
    grpc::ClientContext context;
    AddAuthorization(&context);
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return {false, absl::CancelledError("stopping")};
      router.stream_context = &context;
    }
    std::unique_ptr<Stream> stream = router.stub->Attach(&context);
    SessionEnd end;
    v1::RouterFrame first;
    if (!stream->Write(HelloFrame()) || !stream->Read(&first)) {
      end.status = FromGrpc(stream->Finish());
    } else if (!first.has_welcome()) {
      context.TryCancel();
      stream->Finish().IgnoreError();
      end.status =
          absl::InternalError("the router's first frame carried no welcome");
    } else {
      end.welcomed = true;
      end.status = RunAttached(router, stream.get(), first);
    }
    absl::MutexLock lock(&mu_);
    router.stream_context = nullptr;
    return end;
  }

  v1::AdapterFrame HelloFrame() const {
    v1::AdapterFrame frame;
    v1::Hello* hello = frame.mutable_hello();
    hello->set_adapter_name(options_.adapter_name);
    hello->set_platform(options_.platform);
    for (const std::string& account : options_.accounts) {
      hello->add_accounts(account);
    }
    for (const std::string& capability : options_.capabilities) {
      hello->add_capabilities(capability);
    }
    hello->set_max_in_flight(options_.max_in_flight);
    for (const std::string& word : command_words_) {
      hello->add_chat_commands(word);
    }
    return frame;
  }

  // Runs an established stream until it ends; returns its final status.
  absl::Status RunAttached(RouterLink& router, Stream* stream,
                           const v1::RouterFrame& first) {
    uint64_t session;
    bool publishing;
    size_t resent;
    {
      absl::MutexLock lock(&mu_);
      session = ++next_session_;
      router.session = session;
      ++streams_changed_;
      welcome_ = first.welcome();
      router.ClearStreamQueues();
      ChoosePublisherLocked();
      publishing = publisher_ >= 0 && routers_[publisher_].get() == &router;
      resent = router.outbox.size();
    }
    std::string router_id = first.welcome().router_id();
    std::string channels = absl::StrCat(first.welcome().channels_size());
    std::string pending = absl::StrCat(resent);
    LogInfo("attached to the router",
            {{"address", router.address},
             {"router_id", router_id},
             {"channels", channels},
             {"publishing", publishing ? "true" : "false"},
             {"pending_publishes", pending}});
    HandleFrame(router, first, session);
    std::thread writer([this, &router, stream, session] {
      WriterLoop(router, stream, session);
    });
    v1::RouterFrame frame;
    while (stream->Read(&frame)) HandleFrame(router, frame, session);
    {
      absl::MutexLock lock(&mu_);
      router.session = 0;
      ++streams_changed_;
      router.ClearStreamQueues();
      // Deliveries of this stream are re-sent by a router; their blocks
      // end with it.
      for (auto it = blocks_.begin(); it != blocks_.end();) {
        auto current = it++;
        if (current->second.session == session) blocks_.erase(current);
      }
      ChoosePublisherLocked();
    }
    writer.join();
    return FromGrpc(stream->Finish());
  }

  void WriterLoop(RouterLink& router, Stream* stream, uint64_t session) {
    auto has_work = [&router, session]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return router.session != session || router.HasWork();
    };
    while (true) {
      v1::AdapterFrame frame;
      // Publishes refused here, with the acks they get.
      std::vector<v1::PublishAck> refused_acks;
      Acknowledged refused;
      bool write = false;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(&has_work));
        if (router.session != session) return;
        size_t bytes = 0;
        size_t taken = 0;
        std::vector<v1::DeliveryResult>& results = router.results;
        while (taken < results.size() && bytes < kMaxFrameBytes) {
          bytes += results[taken].ByteSizeLong();
          *frame.add_results() = std::move(results[taken]);
          ++taken;
        }
        results.erase(results.begin(), results.begin() + taken);
        for (uint64_t id : router.revocations_applied) {
          frame.add_revocations_applied(id);
        }
        router.revocations_applied.clear();
        for (v1::LinkRequest& request : router.link_requests) {
          *frame.add_link_requests() = std::move(request);
        }
        router.link_requests.clear();
        for (v1::ChatCommandAnswer& answer : router.command_answers) {
          *frame.add_command_answers() = std::move(answer);
        }
        router.command_answers.clear();
        std::deque<uint64_t>& outbox = router.outbox;
        while (!outbox.empty() && bytes < kMaxFrameBytes) {
          auto it = pending_.find(outbox.front());
          outbox.pop_front();
          if (it == pending_.end() || it->second.acknowledged) continue;
          if (FollowsFailedLocked(it->second.publish, session)) {
            // Behind a publish that failed where the router cannot see it:
            // refused here, and so is what follows it.
            it->second.acknowledged = true;
            --unacknowledged_;
            NoteFailedLocked(it->first, kRefusedHere);
            v1::PublishAck& ack = refused_acks.emplace_back();
            ack.set_seq(it->first);
            ack.set_outcome(v1::PublishAck::FAILED);
            ack.set_detail(
                "an earlier event of the same chat was not stored; publish "
                "it again first");
            refused.emplace_back(std::move(it->second.done), nullptr);
            continue;
          }
          it->second.sent_session = session;
          *frame.add_publishes() = it->second.publish;
          bytes += it->second.bytes;
        }
        write = frame.results_size() > 0 || frame.publishes_size() > 0 ||
                frame.revocations_applied_size() > 0 ||
                frame.link_requests_size() > 0 ||
                frame.command_answers_size() > 0;
        if (!write && refused.empty()) continue;
        router.writing = write;
      }
      if (!refused.empty()) {
        for (size_t i = 0; i < refused.size(); ++i) {
          refused[i].second = &refused_acks[i];
        }
        RunAcknowledged(refused, kRefusedHere);
      }
      if (!write) continue;
      // A failed Write means the stream is over; the reader sees it too.
      bool written = stream->Write(frame);
      absl::MutexLock lock(&mu_);
      router.writing = false;
      if (!written) return;
    }
  }

  void HandleFrame(RouterLink& router, const v1::RouterFrame& frame,
                   uint64_t session) {
    Acknowledged acked;
    {
      absl::MutexLock lock(&mu_);
      for (const v1::PublishAck& ack : frame.publish_acks()) {
        auto it = pending_.find(ack.seq());
        // Only the stream the publish was last sent on answers for it: a
        // router the client moved away from may still answer late.
        if (it == pending_.end() || it->second.acknowledged ||
            it->second.sent_session != session) {
          continue;
        }
        it->second.acknowledged = true;
        --unacknowledged_;
        // Noted at once: a publish of the same chat may be sent on another
        // stream before the callbacks ran.
        if (ack.outcome() == v1::PublishAck::FAILED) {
          NoteFailedLocked(ack.seq(), session);
        }
        acked.emplace_back(std::move(it->second.done), &ack);
      }
      for (const v1::Delivery& delivery : frame.deliveries()) {
        AcceptDelivery(delivery, session);
      }
      for (const v1::LinkReply& reply : frame.link_replies()) {
        auto it = link_waiters_.find(reply.id());
        if (it != link_waiters_.end()) it->second = reply;
      }
      if (command_runner_ != nullptr) {
        for (const v1::ChatCommand& command : frame.chat_commands()) {
          command_runner_->Post(
              [this, command, session] { RunChatCommand(command, session); });
        }
      }
    }
    if (frame.webhook_revocations_size() > 0) {
      // Applied before they are acknowledged: the router answers the revoke
      // call only after the acknowledgement.
      for (const v1::WebhookRevocation& revocation :
           frame.webhook_revocations()) {
        if (on_webhook_revoked_) on_webhook_revoked_(revocation.webhook_id());
      }
      absl::MutexLock lock(&mu_);
      if (router.session == session) {
        for (const v1::WebhookRevocation& revocation :
             frame.webhook_revocations()) {
          router.revocations_applied.push_back(revocation.id());
        }
      }
    }
    if (!acked.empty()) RunAcknowledged(acked, session);
  }

  // Runs the callbacks of publishes marked acknowledged, then forgets them
  // and remembers the failed ones, as failed on stream `session`.
  void RunAcknowledged(const Acknowledged& acked, uint64_t session) {
    // The callbacks run while the publishes are still pending: a publish of
    // the same chat made meanwhile (by a callback or another thread) is
    // ordered after them, and so refused if they failed. Only then are
    // they forgotten.
    for (auto& [done, ack] : acked) {
      if (done) RunPublishCallback(done, *ack);
    }
    absl::MutexLock lock(&mu_);
    for (auto& [done, ack] : acked) {
      auto it = pending_.find(ack->seq());
      if (it == pending_.end()) continue;
      auto last = last_pending_of_chat_.find(it->second.chat);
      if (last != last_pending_of_chat_.end() && last->second == ack->seq()) {
        last_pending_of_chat_.erase(last);
      }
      pending_.erase(it);
      if (ack->outcome() == v1::PublishAck::FAILED) {
        NoteFailedLocked(ack->seq(), session);
      }
    }
  }

  // Whether `publish`, about to be sent on stream `session`, is ordered
  // (Publish.after_seq) behind a publish that failed on another stream or
  // was refused here: the router would not know to refuse it.
  bool FollowsFailedLocked(const v1::Publish& publish, uint64_t session) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (failed_seqs_.empty() || publish.after_seq() == 0) return false;
    auto it = failed_seqs_.find(publish.after_seq());
    return it != failed_seqs_.end() && it->second != session;
  }

  void NoteFailedLocked(uint64_t seq, uint64_t session)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!failed_seqs_.emplace(seq, session).second) return;
    failed_order_.push_back(seq);
    while (failed_order_.size() > kMaxFailedSeqs) {
      failed_seqs_.erase(failed_order_.front());
      failed_order_.pop_front();
    }
  }

  // A publish callback that throws is logged; the stream goes on.
  static void RunPublishCallback(const PublishCallback& done,
                                 const v1::PublishAck& ack) {
    try {
      done(ack);
    } catch (const std::exception& e) {
      LogError("a publish callback failed",
               {{"seq", absl::StrCat(ack.seq())}, {"error", e.what()}});
    } catch (...) {
      LogError("a publish callback failed (an unknown exception)",
               {{"seq", absl::StrCat(ack.seq())}});
    }
  }

  void AcceptDelivery(const v1::Delivery& delivery, uint64_t session)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (stopping_) return;
    std::string key = TargetKey(delivery.target());
    if (AnsweredWithoutHandler(key, delivery, session)) return;
    auto [it, inserted] = targets_.try_emplace(key);
    if (inserted) ready_.push_back(key);
    it->second.deliveries.push_back({delivery, session});
  }

  // Answers `delivery` as not attempted, if that applies; otherwise lifts a
  // block the delivery resolves. A block ends when
  // the router re-sends the failed delivery (or an earlier one), or re-sends
  // one that was already answered "not attempted": the router then has moved
  // past the failed one (it dead-lettered it), and holding on would loop.
  bool AnsweredWithoutHandler(const std::string& key,
                              const v1::Delivery& delivery, uint64_t session)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto blocked = blocks_.find(key);
    if (blocked != blocks_.end()) {
      Block& block = blocked->second;
      // A delivery from another stream (another router took the target's
      // queue over, from its committed cursor) ends the block too.
      if (block.session == session && delivery.id() > block.after &&
          block.skipped.insert(delivery.id()).second) {
        SendResult(NotAttempted(delivery.id()), session);
        return true;
      }
      blocks_.erase(blocked);
    }
    return false;
  }

  // Queues `result` for the stream its delivery came on, unless that
  // stream ended (its router sends the delivery again).
  void SendResult(v1::DeliveryResult result, uint64_t session)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (RouterLink* router = RouterOfLocked(session); router != nullptr) {
      router->results.push_back(std::move(result));
    }
  }

  void WorkerLoop() {
    auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stopping_ || (!draining_ && !ready_.empty());
    };
    while (true) {
      std::string key;
      QueuedDelivery item;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(&has_work));
        if (stopping_) return;
        key = std::move(ready_.front());
        ready_.pop_front();
        std::deque<QueuedDelivery>& queue = targets_[key].deliveries;
        item = std::move(queue.front());
        queue.pop_front();
        // Deliveries of an ended stream are re-sent by the router.
        bool current = RouterOfLocked(item.session) != nullptr;
        if (!current ||
            AnsweredWithoutHandler(key, item.delivery, item.session)) {
          ReleaseTarget(key);
          continue;
        }
        ++busy_workers_;
      }
      // Behind the exception barrier: a handler that throws fails this
      // delivery permanently, and the adapter goes on.
      absl::StatusOr<std::vector<std::string>> outcome =
          handler_ != nullptr
              ? DeliverGuarded(*handler_, item.delivery)
              : absl::FailedPreconditionError("the adapter has no handler");
      absl::MutexLock lock(&mu_);
      --busy_workers_;
      Complete(key, item, outcome);
      ReleaseTarget(key);
    }
  }

  void Complete(const std::string& key, const QueuedDelivery& item,
                const absl::StatusOr<std::vector<std::string>>& outcome)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const v1::Delivery& delivery = item.delivery;
    v1::DeliveryResult result;
    result.set_id(delivery.id());
    bool retryable = false;
    if (outcome.ok()) {
      for (const std::string& id : *outcome) result.add_native_ids(id);
    } else {
      v1::DeliveryError* error = result.mutable_error();
      error->set_message(ToValidUtf8(outcome.status().message()));
      retryable = IsRetryable(outcome.status());
      error->set_retryable(retryable);
      if (retryable) {
        error->set_retry_after_ms(RetryAfterMillis(outcome.status()));
      }
    }
    SendResult(std::move(result), item.session);
    if (retryable) BlockAfter(key, delivery.id(), item.session);
  }

  // After a retryable failure of delivery `id`, nothing later for the target
  // is attempted until the block ends (see AnsweredWithoutHandler).
  void BlockAfter(const std::string& key, uint64_t id, uint64_t session)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Block& block = blocks_[key];
    block.session = session;
    block.after = id;
    block.skipped.clear();
    std::deque<QueuedDelivery>& queue = targets_[key].deliveries;
    std::deque<QueuedDelivery> kept;
    for (QueuedDelivery& queued : queue) {
      if (queued.session == session && queued.delivery.id() > id) {
        block.skipped.insert(queued.delivery.id());
        SendResult(NotAttempted(queued.delivery.id()), queued.session);
      } else {
        kept.push_back(std::move(queued));
      }
    }
    queue.swap(kept);
  }

  // Called by the worker that served `key`: hands it on or forgets it.
  void ReleaseTarget(const std::string& key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = targets_.find(key);
    if (it->second.deliveries.empty()) {
      targets_.erase(it);
    } else {
      ready_.push_back(key);
    }
  }

  // Fixed once Start() ran (SetHello() changes it before).
  Options options_;
  DeliveryHandler* const handler_;
  // Every configured router, in config order; the vector is fixed at
  // construction.
  std::vector<std::unique_ptr<RouterLink>> routers_;

  // Serializes Start() and Stop(); held while joining.
  absl::Mutex stop_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  // One per router.
  std::vector<std::thread> session_threads_ ABSL_GUARDED_BY(stop_mu_);
  std::vector<std::thread> workers_ ABSL_GUARDED_BY(stop_mu_);

  mutable absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Stop() is waiting for deliveries in progress and their results.
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  int busy_workers_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_set<grpc::ClientContext*> blob_calls_ ABSL_GUARDED_BY(mu_);

  // The number of the last stream established, to any router.
  uint64_t next_session_ ABSL_GUARDED_BY(mu_) = 0;
  // Grows whenever a stream starts or ends (session()).
  uint64_t streams_changed_ ABSL_GUARDED_BY(mu_) = 0;
  // The index in routers_ of the publishing router, -1 while none is
  // attached (ChoosePublisherLocked).
  int publisher_ ABSL_GUARDED_BY(mu_) = -1;
  v1::Welcome welcome_ ABSL_GUARDED_BY(mu_);

  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<uint64_t, PendingPublish> pending_ ABSL_GUARDED_BY(mu_);
  // How many of pending_ are not acknowledged yet.
  size_t unacknowledged_ ABSL_GUARDED_BY(mu_) = 0;
  // Each origin chat's last pending publish (its seq).
  absl::flat_hash_map<std::string, uint64_t> last_pending_of_chat_
      ABSL_GUARDED_BY(mu_);
  // The last kMaxFailedSeqs publishes answered FAILED, oldest first in
  // failed_order_: seq -> the stream the router failed it on, or
  // kRefusedHere. The router knows only the failures of the stream it is
  // on; a publish behind one of another stream (sent again after a
  // reconnect) is refused by this client itself (FollowsFailedLocked).
  absl::flat_hash_map<uint64_t, uint64_t> failed_seqs_ ABSL_GUARDED_BY(mu_);
  std::deque<uint64_t> failed_order_ ABSL_GUARDED_BY(mu_);
  // Set before Start(); called on the session threads.
  std::function<void(const std::string& webhook_id)> on_webhook_revoked_;
  // Set before Start(): the chat command words and their handler, run on
  // `command_runner_` (created by Start(), reset by Stop() after the
  // session thread ended).
  std::vector<std::string> command_words_;
  ChatCommandFn on_chat_command_;
  std::unique_ptr<Executor> command_runner_;
  uint64_t next_link_request_ ABSL_GUARDED_BY(mu_) = 0;
  // Link requests waiting for their reply (set when it came).
  // (A std::map: a waiter holds a reference to its entry.)
  std::map<uint64_t, std::optional<v1::LinkReply>> link_waiters_
      ABSL_GUARDED_BY(mu_);

  absl::flat_hash_map<std::string, TargetQueue> targets_ ABSL_GUARDED_BY(mu_);
  // Targets waiting for a worker, in the order they became ready.
  std::deque<std::string> ready_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Block> blocks_ ABSL_GUARDED_BY(mu_);
};

RouterClient::Options RouterClient::OptionsFromConfig(
    const v1::RouterConnection& config, std::string platform,
    std::vector<std::string> accounts, std::vector<std::string> capabilities) {
  Options options;
  if (!config.address().empty()) options.address = config.address();
  options.addresses.assign(config.addresses().begin(),
                           config.addresses().end());
  options.token = config.token();
  options.adapter_name =
      config.adapter_name().empty() ? platform : config.adapter_name();
  options.platform = std::move(platform);
  options.accounts = std::move(accounts);
  options.capabilities = std::move(capabilities);
  return options;
}

RouterClient::RouterClient(Options options, DeliveryHandler* handler)
    : impl_(std::make_unique<Impl>(std::move(options), handler)) {}

RouterClient::~RouterClient() { Stop(); }

absl::Status RouterClient::SetHello(std::vector<std::string> accounts,
                                    std::vector<std::string> capabilities) {
  return impl_->SetHello(std::move(accounts), std::move(capabilities));
}

void RouterClient::Start() { impl_->Start(); }

void RouterClient::Stop() { impl_->Stop(); }

bool RouterClient::attached() const { return impl_->attached(); }

uint64_t RouterClient::session() const { return impl_->session(); }

std::vector<RouterClient::RouterStatus> RouterClient::routers() const {
  return impl_->routers();
}

void RouterClient::OnWebhookRevoked(
    std::function<void(const std::string& webhook_id)> fn) {
  impl_->OnWebhookRevoked(std::move(fn));
}

v1::Welcome RouterClient::welcome() const { return impl_->welcome(); }

absl::Status RouterClient::OnChatCommand(std::vector<std::string> words,
                                         ChatCommandFn handler) {
  return impl_->OnChatCommand(std::move(words), std::move(handler));
}

absl::StatusOr<v1::Link> RouterClient::CreateLink(const v1::Link& link,
                                                  absl::Duration timeout) {
  return CreateLink(link, {}, timeout);
}

absl::StatusOr<v1::Link> RouterClient::CreateLink(
    const v1::Link& link, const std::vector<v1::MemberThreadRoot>& thread_roots,
    absl::Duration timeout) {
  v1::LinkRequest request;
  *request.mutable_create() = link;
  for (const v1::MemberThreadRoot& root : thread_roots) {
    *request.add_member_thread_roots() = root;
  }
  IMB_ASSIGN_OR_RETURN(v1::LinkReply reply,
                       impl_->RequestLink(std::move(request), timeout));
  if (reply.code() != 0) {
    return absl::Status(static_cast<absl::StatusCode>(reply.code()),
                        reply.message());
  }
  return reply.link();
}

absl::Status RouterClient::DeleteLink(absl::string_view name,
                                      absl::Duration timeout) {
  v1::LinkRequest request;
  request.set_delete_name(std::string(name));
  IMB_ASSIGN_OR_RETURN(v1::LinkReply reply,
                       impl_->RequestLink(std::move(request), timeout));
  return absl::Status(static_cast<absl::StatusCode>(reply.code()),
                      reply.message());
}

absl::Status RouterClient::Publish(v1::Event event, PublishCallback done) {
  return impl_->Publish(std::move(event), std::move(done));
}

absl::StatusOr<v1::PublishAck> RouterClient::PublishAndWait(
    v1::Event event, absl::Duration timeout) {
  return impl_->PublishAndWait(std::move(event), timeout);
}

absl::StatusOr<v1::BlobRef> RouterClient::PutBlob(
    const v1::BlobMeta& meta,
    const std::function<absl::StatusOr<size_t>(char* buf, size_t max)>& read) {
  return impl_->PutBlob(meta, read);
}

absl::StatusOr<v1::BlobRef> RouterClient::PutBlob(const v1::BlobMeta& meta,
                                                  absl::string_view data) {
  size_t offset = 0;
  return impl_->PutBlob(meta,
                        [&](char* buf, size_t max) -> absl::StatusOr<size_t> {
                          size_t n = std::min(max, data.size() - offset);
                          std::copy_n(data.data() + offset, n, buf);
                          offset += n;
                          return n;
                        });
}

absl::StatusOr<v1::BlobMeta> RouterClient::GetBlob(
    absl::string_view blob_id,
    const std::function<absl::Status(absl::string_view chunk)>& write) {
  return impl_->GetBlob(blob_id, write);
}

absl::StatusOr<std::string> RouterClient::GetBlob(absl::string_view blob_id,
                                                  uint64_t max_bytes) {
  std::string out;
  IMB_RETURN_IF_ERROR(
      impl_
          ->GetBlob(blob_id,
                    [&](absl::string_view chunk) -> absl::Status {
                      if (out.size() + chunk.size() > max_bytes) {
                        return absl::OutOfRangeError(
                            absl::StrCat("blob ", blob_id, " is larger than ",
                                         max_bytes, " bytes"));
                      }
                      out.append(chunk.data(), chunk.size());
                      return absl::OkStatus();
                    })
          .status());
  return out;
}

absl::StatusOr<std::string> ReadBlobForUpload(RouterClient& router,
                                              absl::string_view blob_id,
                                              uint64_t max_bytes) {
  absl::StatusOr<std::string> bytes = router.GetBlob(blob_id, max_bytes);
  if (!bytes.ok()) {
    return RetryableError(absl::StrCat("cannot read the file from the router: ",
                                       bytes.status().message()));
  }
  return bytes;
}

}  // namespace imbridge::adapters
