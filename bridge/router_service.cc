#include "bridge/router_service.h"

#include <openssl/crypto.h>

#include <algorithm>

#include "absl/container/inlined_vector.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "bridge/adapter_links.h"
#include "common/logging.h"
#include "common/tsan_hand_off.h"

namespace imbridge::bridge {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

namespace {

constexpr size_t kBlobChunkBytes = 256 * 1024;

// Moves the entries of `from` to the end of `to` without copying them (both
// on the heap).
template <typename T>
void MoveEntries(google::protobuf::RepeatedPtrField<T>* from,
                 google::protobuf::RepeatedPtrField<T>* to) {
  const int n = from->size();
  if (n == 0) return;
  if (to->empty()) {
    to->Swap(from);
    return;
  }
  absl::InlinedVector<T*, 16> entries(static_cast<size_t>(n));
  from->ExtractSubrange(0, n, entries.data());
  to->Reserve(to->size() + n);
  for (T* entry : entries) to->AddAllocated(entry);
}

// A reactor for a call refused before it started.
template <typename Base>
class RefusedReactor : public Base {
 public:
  explicit RefusedReactor(const grpc::Status& status) { this->Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

void AppendFrame(v1::RouterFrame* from, v1::RouterFrame* to) {
  if (from->has_welcome()) {
    if (to->has_welcome()) {
      to->mutable_welcome()->MergeFrom(from->welcome());
    } else {
      to->mutable_welcome()->Swap(from->mutable_welcome());
    }
  }
  MoveEntries(from->mutable_publish_acks(), to->mutable_publish_acks());
  MoveEntries(from->mutable_deliveries(), to->mutable_deliveries());
  MoveEntries(from->mutable_webhook_revocations(),
              to->mutable_webhook_revocations());
  MoveEntries(from->mutable_link_replies(), to->mutable_link_replies());
  MoveEntries(from->mutable_chat_commands(), to->mutable_chat_commands());
  from->Clear();
}

// Publishes of one Attach stream held behind their chats' groups in the
// committer (PublishSequencer) above which the stream is not read further.
// An adapter may have tens of thousands in flight (the bench has 20,000 per
// source); held unbounded, they were most of the router's peak RSS.
constexpr size_t kMaxHeldPublishes = 1024;

// One adapter's Attach stream.
class AttachReactor
    : public grpc::ServerBidiReactor<v1::AdapterFrame, v1::RouterFrame>,
      public FrameSink {
 public:
  AttachReactor(RouterService* service, const v1::AdapterCredential* credential,
                std::string peer)
      : service_(service), credential_(credential), peer_(std::move(peer)) {
    ReadNext();
  }

  void OnReadDone(bool ok) override {
    TsanReaction reaction(this);
    TsanHandOffAcquire(&in_);
    if (!ok) {
      Close(grpc::Status::OK);
      return;
    }
    if (session_ == nullptr) {
      if (!in_.has_hello()) {
        Close(grpc::Status(grpc::INVALID_ARGUMENT,
                           "the first frame must carry hello"));
        return;
      }
      if (grpc::Status s = HandleHello(in_.hello()); !s.ok()) {
        Close(s);
        return;
      }
    }
    const RouterService::Deps& deps = service_->deps();
    // Results first: a copy's id must be known before an echo of it in the
    // same frame is judged.
    for (v1::DeliveryResult& r : *in_.mutable_results()) {
      std::optional<SentDelivery> sent = session_->TakeSent(r.id());
      if (!sent.has_value()) continue;
      if (r.has_error() && !r.error().not_attempted()) {
        session_->NoteError(r.error().message());
      }
      deps.committer->RecordResult(std::move(*sent), std::move(r));
    }
    for (uint64_t id : in_.revocations_applied()) {
      session_->RevocationApplied(id);
    }
    for (const v1::ChatCommandAnswer& answer : in_.command_answers()) {
      if (deps.adapter_commands != nullptr) {
        deps.adapter_commands->Answered(session_->id(), answer);
      }
    }
    for (v1::LinkRequest& request : *in_.mutable_link_requests()) {
      if (deps.catalog == nullptr || deps.link_io == nullptr) {
        v1::LinkReply reply;
        reply.set_id(request.id());
        reply.set_code(static_cast<int32_t>(absl::StatusCode::kUnimplemented));
        reply.set_message("this router takes no link requests");
        session_->SendLinkReply(std::move(reply));
        continue;
      }
      ThreadRootLookup lookup;
      lookup.store = deps.store;
      lookup.member_threads = [service = service_](const v1::LinkMember& m) {
        return service->MemberThreads(m);
      };
      deps.link_io->Post([catalog = deps.catalog, session = session_,
                          request = std::move(request),
                          lookup = std::move(lookup)] {
        session->SendLinkReply(
            HandleLinkRequest(*catalog, session->hello(), request, lookup));
      });
    }
    for (v1::Publish& p : *in_.mutable_publishes()) {
      publishes_->Publish(std::move(p));
    }
    in_.Clear();
    ReadIfAdmitted(/*resuming=*/false);
  }

  void Detach(absl::string_view reason) override {
    Close(grpc::Status(grpc::UNAVAILABLE, std::string(reason)));
  }

  void ResumeReading() override { ReadIfAdmitted(/*resuming=*/true); }

  void Send(v1::RouterFrame frame) override {
    {
      absl::MutexLock lock(&mu_);
      if (finish_requested_) return;
      if (has_pending_) {
        AppendFrame(&frame, &pending_);
      } else {
        pending_.Swap(&frame);
        has_pending_ = true;
      }
      if (write_in_flight_) return;
      write_in_flight_ = true;
      writing_.Swap(&pending_);
      has_pending_ = false;
    }
    StartWrite(&writing_);
  }

  void OnWriteDone(bool ok) override {
    TsanReaction reaction(this);
    bool start = false;
    bool finish = false;
    grpc::Status status;
    {
      absl::MutexLock lock(&mu_);
      writing_.Clear();
      if (!ok && !finish_requested_) {
        finish_requested_ = true;
        final_status_ =
            grpc::Status(grpc::UNAVAILABLE, "write to adapter failed");
      }
      if (ok && has_pending_) {
        // Whatever queued during the write goes out as one frame, also when
        // a close was requested (acks already queued are flushed first).
        writing_.Swap(&pending_);
        has_pending_ = false;
        start = true;
      } else {
        write_in_flight_ = false;
        if (finish_requested_ && !finished_) finish = finished_ = true;
        status = final_status_;
      }
    }
    if (start) {
      StartWrite(&writing_);
    } else if (finish) {
      Finish(status);
    }
  }

  void OnCancel() override {
    TsanReaction reaction(this);
    Close(grpc::Status::CANCELLED);
  }

  // gRPC runs this last, once; TSan is told so (common/tsan_hand_off.h).
  void OnDone() override {
    TsanHandOffAcquire(this);
    if (session_ != nullptr) {
      session_->Close();
      if (service_->deps().adapter_commands != nullptr) {
        service_->deps().adapter_commands->Detached(session_->id());
      }
      service_->ForgetSession(session_->id());
      service_->deps().dispatcher->Detach(session_);
      LogInfo("adapter detached",
              {{"adapter", session_->name()}, {"peer", peer_}});
    }
    service_->Unregister(this);
    delete this;
  }

  // Ends the stream with `status` once the write in flight (if any) is done.
  void Close(const grpc::Status& status) {
    {
      absl::MutexLock lock(&mu_);
      if (finish_requested_) return;
      finish_requested_ = true;
      final_status_ = status;
      if (write_in_flight_) return;  // OnWriteDone finishes
      finished_ = true;
    }
    // Close may run outside a reaction (Detach): OnDone can follow Finish
    // on another thread at once.
    TsanHandOffRelease(this);
    Finish(status);
  }

 private:
  // Reads the next frame unless the router is behind: while this stream's
  // publishes wait behind their chats' groups (kMaxHeldPublishes) or the
  // committer's queue is full, the stream is paused, and publishes wait in
  // the adapter (and in TCP) instead of in the router's memory. Whichever
  // frees up calls ResumeReading(), which checks both again.
  //
  // `resuming` is false when a read has just completed (OnReadDone), true
  // from ResumeReading(). Under mu_, only a paused stream is resumed, so one
  // read at most is in flight however many resumes come, and from whichever
  // threads: a resume that finds the stream reading or closed does nothing.
  // Runs only after the hello, so session_ and publishes_ are set.
  void ReadIfAdmitted(bool resuming) {
    {
      absl::MutexLock lock(&mu_);
      if (resuming && !read_paused_) return;
      read_paused_ = true;
      if (finish_requested_) return;
      auto resume = [session = session_] { session->ResumeReading(); };
      if (!publishes_->AdmitOrWait(kMaxHeldPublishes, resume)) {
        if (!resuming) {
          session_->CountPause(AdapterSession::PauseReason::kHeldPublishes);
        }
        return;
      }
      if (!service_->deps().committer->AdmitOrWait(resume)) {
        if (!resuming) {
          session_->CountPause(AdapterSession::PauseReason::kStoreBehind);
        }
        return;
      }
      read_paused_ = false;
    }
    ReadNext();
  }

  // Reads the next frame into in_. gRPC runs OnReadDone on one of its
  // threads after this; TSan is told so (common/tsan_hand_off.h).
  void ReadNext() {
    TsanHandOffRelease(&in_);
    StartRead(&in_);
  }

  grpc::Status HandleHello(const v1::Hello& hello) {
    if (hello.platform().empty()) {
      return grpc::Status(grpc::INVALID_ARGUMENT, "hello.platform is empty");
    }
    if (hello.accounts().empty()) {
      return grpc::Status(grpc::INVALID_ARGUMENT, "hello.accounts is empty");
    }
    if (!credential_->platforms().empty()) {
      bool allowed = false;
      for (const std::string& p : credential_->platforms()) {
        allowed = allowed || p == hello.platform();
      }
      if (!allowed) {
        LogWarn("adapter refused: platform not allowed for its token",
                {{"credential", credential_->name()},
                 {"platform", hello.platform()},
                 {"peer", peer_}});
        return grpc::Status(
            grpc::PERMISSION_DENIED,
            absl::StrCat("this token may not attach as platform '",
                         hello.platform(), "'"));
      }
    }
    if (absl::Status s = ValidateCommandWords(hello); !s.ok()) {
      return ToGrpcStatus(s);
    }
    const RouterService::Deps& deps = service_->deps();
    uint32_t window = deps.window;
    if (hello.max_in_flight() > 0)
      window = std::min(window, hello.max_in_flight());
    session_ = std::make_shared<AdapterSession>(
        service_->NextSessionId(), hello, window, credential_->name());
    publishes_ = std::make_shared<PublishSequencer>(
        [committer = deps.committer](
            v1::Event event, std::function<void(const v1::PublishAck&)> done) {
          committer->Publish(std::move(event), std::move(done));
        },
        [session = session_](v1::PublishAck ack) {
          session->CountPublish(ack.outcome());
          session->SendAck(std::move(ack));
        },
        [committer = deps.committer](const v1::Event& event) {
          return committer->AnswersFirst(event);
        });
    session_->SetSink(this);
    service_->RememberSession(session_);
    v1::RouterFrame welcome;
    std::vector<std::string> accounts(hello.accounts().begin(),
                                      hello.accounts().end());
    for (v1::ChannelRef& c :
         deps.links->Get()->ChannelsOf(hello.platform(), accounts)) {
      *welcome.mutable_welcome()->add_channels() = std::move(c);
    }
    welcome.mutable_welcome()->set_router_id(deps.router_id);
    Send(std::move(welcome));
    deps.dispatcher->Attach(session_);
    if (deps.adapter_commands != nullptr) {
      deps.adapter_commands->Attached(session_);
    }
    LogInfo("adapter attached",
            {{"adapter", hello.adapter_name()},
             {"platform", hello.platform()},
             {"accounts", absl::StrJoin(accounts, ",")},
             {"capabilities", absl::StrJoin(hello.capabilities(), ",")},
             {"chat_commands", absl::StrJoin(hello.chat_commands(), ",")},
             {"peer", peer_}});
    return grpc::Status::OK;
  }

  RouterService* const service_;
  const v1::AdapterCredential* const credential_;
  const std::string peer_;
  v1::AdapterFrame in_;
  std::shared_ptr<AdapterSession> session_;
  // Orders the stream's publishes per chat into the committer.
  std::shared_ptr<PublishSequencer> publishes_;

  absl::Mutex mu_;
  v1::RouterFrame pending_ ABSL_GUARDED_BY(mu_);
  bool has_pending_ ABSL_GUARDED_BY(mu_) = false;
  // The frame being written; touched only by the writer of the moment.
  v1::RouterFrame writing_;
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);
  // No read in flight, and none to start but by ResumeReading().
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
};

// One PutBlob call: chunks are appended to a temporary file on the blob
// executor; the blob is committed only when complete and within the limit.
class PutBlobReactor : public grpc::ServerReadReactor<v1::BlobChunk> {
 public:
  PutBlobReactor(RouterService* service, v1::BlobRef* response)
      : deps_(service->deps()), response_(response) {
    ReadNext();
  }

  void OnReadDone(bool ok) override {
    TsanReaction reaction(this);
    // The upload's file was last written by the blob executor's thread that
    // started this read (common/tsan_hand_off.h).
    TsanHandOffAcquire(&chunk_);
    if (!ok) {
      deps_.blob_io->Post([this] { Complete(); });
      return;
    }
    if (first_) {
      first_ = false;
      if (chunk_.meta().size() > deps_.blobs->max_bytes()) {
        Refuse(chunk_.meta().size());
        return;
      }
    }
    deps_.blob_io->Post([this] {
      if (upload_ == nullptr) {
        auto upload = deps_.blobs->StartUpload();
        if (!upload.ok()) {
          End(ToGrpcStatus(upload.status()));
          return;
        }
        upload_ = std::move(*upload);
      }
      absl::Status s = upload_->Append(chunk_.data());
      if (!s.ok()) {
        upload_.reset();  // removes the partial file
        if (absl::IsResourceExhausted(s)) {
          Refuse(0);
        } else {
          End(ToGrpcStatus(s));
        }
        return;
      }
      ReadNext();
    });
  }

  // gRPC runs this last, once; TSan is told so (common/tsan_hand_off.h).
  void OnDone() override {
    TsanHandOffAcquire(this);
    delete this;
  }

 private:
  // Ends the call from the blob executor or the committer, outside a
  // reaction: OnDone may follow at once on another thread
  // (common/tsan_hand_off.h).
  void End(const grpc::Status& status) {
    TsanHandOffRelease(this);
    Finish(status);
  }

  // Reads the next chunk into chunk_. The next OnReadDone may run on another
  // thread; TSan is told so (common/tsan_hand_off.h).
  void ReadNext() {
    TsanHandOffRelease(&chunk_);
    StartRead(&chunk_);
  }

  void Refuse(uint64_t declared) {
    LogWarn("blob refused: over the size limit",
            {{"limit_bytes", std::to_string(deps_.blobs->max_bytes())},
             {"declared_bytes", std::to_string(declared)}});
    End(grpc::Status(
        grpc::RESOURCE_EXHAUSTED,
        absl::StrCat("file is larger than the router's blob limit of ",
                     deps_.blobs->max_bytes(), " bytes; nothing was stored")));
  }

  void Complete() {
    if (upload_ == nullptr) {
      auto upload = deps_.blobs->StartUpload();
      if (!upload.ok()) {
        End(ToGrpcStatus(upload.status()));
        return;
      }
      upload_ = std::move(*upload);
    }
    auto finished = upload_->Finish();
    // Shared with the store task, which places the file; whoever drops it
    // last removes a file that was not placed.
    std::shared_ptr<BlobStore::Upload> upload = std::move(upload_);
    if (!finished.ok()) {
      End(ToGrpcStatus(finished.status()));
      return;
    }
    BlobInfo info;
    info.blob_id = finished->first;
    info.size = finished->second;
    info.created_at = info.last_used_at = absl::Now();
    deps_.committer->Execute(
        [info, upload](Store& store) {
          return StoreUploadedBlob(store, *upload, info);
        },
        [this, info](absl::Status s) {
          if (s.ok()) {
            response_->set_blob_id(info.blob_id);
            response_->set_size(info.size);
          }
          End(ToGrpcStatus(s));
        });
  }

  const RouterService::Deps& deps_;
  v1::BlobRef* const response_;
  v1::BlobChunk chunk_;
  bool first_ = true;
  std::unique_ptr<BlobStore::Upload> upload_;
};

// One GetBlob call: reads chunks on the blob executor, one write in flight.
class GetBlobReactor : public grpc::ServerWriteReactor<v1::BlobChunk> {
 public:
  GetBlobReactor(RouterService* service, std::string blob_id)
      : deps_(service->deps()), blob_id_(std::move(blob_id)) {
    deps_.blob_io->Post([this] {
      auto reader = deps_.blobs->Open(blob_id_);
      if (!reader.ok()) {
        Finish(ToGrpcStatus(reader.status()));
        return;
      }
      reader_ = std::move(*reader);
      chunk_.mutable_meta()->set_size(reader_->size());
      ReadNext(/*first=*/true);
    });
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::CANCELLED, "client went away"));
      return;
    }
    chunk_.Clear();
    deps_.blob_io->Post([this] { ReadNext(/*first=*/false); });
  }

  void OnDone() override { delete this; }

 private:
  void ReadNext(bool first) {
    auto data = reader_->Read(kBlobChunkBytes);
    if (!data.ok()) {
      Finish(ToGrpcStatus(data.status()));
      return;
    }
    if (data->empty() && !first) {
      Finish(grpc::Status::OK);
      return;
    }
    chunk_.set_data(std::move(*data));
    StartWrite(&chunk_);
  }

  const RouterService::Deps& deps_;
  const std::string blob_id_;
  std::unique_ptr<BlobStore::Reader> reader_;
  v1::BlobChunk chunk_;
};

RouterService::RouterService(Deps deps) : deps_(std::move(deps)) {}

std::string BearerToken(const grpc::CallbackServerContext* context) {
  const auto& metadata = context->client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) return "";
  absl::string_view value(it->second.data(), it->second.size());
  if (absl::StartsWith(value, "Bearer ")) value.remove_prefix(7);
  return std::string(value);
}

bool TokenEquals(absl::string_view expected, absl::string_view given) {
  // Constant time for equal lengths; lengths are not secret.
  return !expected.empty() && expected.size() == given.size() &&
         CRYPTO_memcmp(expected.data(), given.data(), given.size()) == 0;
}

void RouterService::RememberSession(std::shared_ptr<AdapterSession> session) {
  absl::MutexLock lock(&mu_);
  sessions_[session->id()] = std::move(session);
}

void RouterService::ForgetSession(uint64_t id) {
  absl::MutexLock lock(&mu_);
  sessions_.erase(id);
}

std::optional<bool> RouterService::MemberThreads(const v1::LinkMember& member) {
  for (const auto& session : Sessions()) {
    if (session->platform() != member.platform()) continue;
    const auto& accounts = session->hello().accounts();
    if (std::find(accounts.begin(), accounts.end(), member.account()) !=
        accounts.end()) {
      return session->HasCapability("threads");
    }
  }
  return std::nullopt;
}

std::vector<std::shared_ptr<AdapterSession>> RouterService::Sessions() {
  absl::MutexLock lock(&mu_);
  std::vector<std::shared_ptr<AdapterSession>> out;
  for (const auto& [id, session] : sessions_) out.push_back(session);
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a->id() < b->id(); });
  return out;
}

const v1::AdapterCredential* RouterService::AuthenticateAdapter(
    const grpc::CallbackServerContext* context,
    absl::string_view method) const {
  std::string token = BearerToken(context);
  const v1::AdapterCredential* match = nullptr;
  for (const v1::AdapterCredential& c : deps_.credentials) {
    if (TokenEquals(c.token(), token)) match = &c;
  }
  if (match == nullptr) {
    LogWarn("call refused: missing or wrong adapter token",
            {{"method", method},
             {"peer", context->peer()},
             {"reason", token.empty() ? "missing" : "wrong"}});
  }
  return match;
}

grpc::ServerBidiReactor<v1::AdapterFrame, v1::RouterFrame>*
RouterService::Attach(grpc::CallbackServerContext* context) {
  const v1::AdapterCredential* credential =
      AuthenticateAdapter(context, "Attach");
  if (credential == nullptr) {
    return new RefusedReactor<
        grpc::ServerBidiReactor<v1::AdapterFrame, v1::RouterFrame>>(
        grpc::Status(grpc::UNAUTHENTICATED, "missing or wrong adapter token"));
  }
  absl::MutexLock lock(&mu_);
  if (closing_) {
    return new RefusedReactor<
        grpc::ServerBidiReactor<v1::AdapterFrame, v1::RouterFrame>>(
        grpc::Status(grpc::UNAVAILABLE, "the router is shutting down"));
  }
  auto* reactor = new AttachReactor(this, credential, context->peer());
  streams_.insert(reactor);
  return reactor;
}

grpc::ServerReadReactor<v1::BlobChunk>* RouterService::PutBlob(
    grpc::CallbackServerContext* context, v1::BlobRef* response) {
  if (AuthenticateAdapter(context, "PutBlob") == nullptr) {
    return new RefusedReactor<grpc::ServerReadReactor<v1::BlobChunk>>(
        grpc::Status(grpc::UNAUTHENTICATED, "missing or wrong adapter token"));
  }
  return new PutBlobReactor(this, response);
}

grpc::ServerWriteReactor<v1::BlobChunk>* RouterService::GetBlob(
    grpc::CallbackServerContext* context, const v1::BlobRef* request) {
  if (AuthenticateAdapter(context, "GetBlob") == nullptr) {
    return new RefusedReactor<grpc::ServerWriteReactor<v1::BlobChunk>>(
        grpc::Status(grpc::UNAUTHENTICATED, "missing or wrong adapter token"));
  }
  return new GetBlobReactor(this, request->blob_id());
}

absl::Status RouterService::RevokeWebhookOnAdapters(
    const std::string& webhook_id, absl::Duration timeout) {
  std::vector<std::shared_ptr<AdapterSession>> adapters;
  for (auto& session : Sessions()) {
    if (session->platform() == "webhook") adapters.push_back(session);
  }
  struct Pending {
    absl::Mutex mu;
    std::vector<bool> applied ABSL_GUARDED_BY(mu);
    size_t left ABSL_GUARDED_BY(mu) = 0;
  };
  auto pending = std::make_shared<Pending>();
  {
    absl::MutexLock lock(&pending->mu);
    pending->applied.assign(adapters.size(), false);
    pending->left = adapters.size();
  }
  for (size_t i = 0; i < adapters.size(); ++i) {
    adapters[i]->SendWebhookRevocation(webhook_id, [pending, i] {
      absl::MutexLock lock(&pending->mu);
      if (!pending->applied[i]) {
        pending->applied[i] = true;
        --pending->left;
      }
    });
  }
  auto all_applied = [](Pending* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu) {
    return p->left == 0;
  };
  absl::MutexLock lock(&pending->mu);
  if (pending->mu.AwaitWithTimeout(absl::Condition(+all_applied, pending.get()),
                                   timeout)) {
    return absl::OkStatus();
  }
  // An adapter that does not answer is detached: it forgets every key when
  // it attaches again.
  for (size_t i = 0; i < adapters.size(); ++i) {
    if (pending->applied[i]) continue;
    LogWarn("webhook adapter did not confirm a revocation; detaching it",
            {{"adapter", adapters[i]->name()}, {"webhook_id", webhook_id}});
    adapters[i]->Detach("it did not confirm a webhook revocation in time");
  }
  if (pending->mu.AwaitWithTimeout(absl::Condition(+all_applied, pending.get()),
                                   timeout)) {
    return absl::OkStatus();
  }
  return absl::DeadlineExceededError(
      "the webhook is revoked in the router, but a webhook adapter neither "
      "confirmed it nor detached; it may accept the key until it does");
}

void RouterService::Unregister(AttachReactor* reactor) {
  absl::MutexLock lock(&mu_);
  streams_.erase(reactor);
}

void RouterService::CloseAllStreams(const grpc::Status& status) {
  std::vector<AttachReactor*> streams;
  {
    absl::MutexLock lock(&mu_);
    closing_ = true;
    streams.assign(streams_.begin(), streams_.end());
    // Close() only schedules the finish; OnDone (which unregisters and
    // deletes) cannot run before Finish completes, so the pointers stay valid
    // while the lock is held.
    for (AttachReactor* r : streams) r->Close(status);
  }
}

}  // namespace imbridge::bridge
