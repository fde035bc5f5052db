#include "bridge/committer.h"

#include <algorithm>
#include <csignal>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bridge/event_validation.h"
#include "bridge/publish_sequencer.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/status_macros.h"

namespace imbridge::bridge {
namespace {

v1::PublishAck Ack(v1::PublishAck::Outcome outcome, std::string detail = "") {
  v1::PublishAck ack;
  ack.set_outcome(outcome);
  if (!detail.empty()) ack.set_detail(std::move(detail));
  return ack;
}

// The `kind` label of imbridge_router_link_events_total.
const char* EventKindName(v1::Event::KindCase kind) {
  switch (kind) {
    case v1::Event::kPosted:
      return "message";
    case v1::Event::kEdited:
      return "edit";
    case v1::Event::kDeleted:
      return "delete";
    case v1::Event::kPresence:
      return "presence";
    case v1::Event::kMembership:
      return "membership";
    case v1::Event::KIND_NOT_SET:
      break;
  }
  return "none";
}

// Whose name the copy is shown under.
const v1::UserRef& Actor(const v1::Event& e) {
  switch (e.kind_case()) {
    case v1::Event::kPosted:
      return e.posted().sender();
    case v1::Event::kEdited:
      return e.edited().editor();
    case v1::Event::kDeleted:
      return e.deleted().deleted_by();
    case v1::Event::kPresence:
      return e.presence().user();
    case v1::Event::kMembership:
      return e.membership().user();
    default:
      return v1::UserRef::default_instance();
  }
}

// The native message id an event is about, or empty.
const std::string& SubjectMessageId(const v1::Event& e) {
  static const std::string* const kEmpty = new std::string();
  switch (e.kind_case()) {
    case v1::Event::kPosted:
      return e.posted().message_id();
    case v1::Event::kEdited:
      return e.edited().message_id();
    case v1::Event::kDeleted:
      return e.deleted().message_id();
    default:
      return *kEmpty;
  }
}

// Adds a delivery of `e` per target to `deliveries` (the sender's name
// rendered for it) and each target's link, once, to `links`.
void AddDeliveries(const v1::Event& e, std::vector<LinkTarget> targets,
                   std::vector<DeliveryRecord>* deliveries,
                   std::vector<std::string>* links) {
  deliveries->reserve(deliveries->size() + targets.size());
  for (LinkTarget& t : targets) {
    // A link with several other members is one relay of the event.
    if (std::find(links->begin(), links->end(), t.link) == links->end()) {
      links->push_back(t.link);
    }
    DeliveryRecord d;
    d.target_key = std::move(t.target_key);
    d.target = std::move(t.channel);
    d.link = std::move(t.link);
    d.sender_name =
        RenderSenderName(t.member->options(), Actor(e), e.channel());
    deliveries->push_back(std::move(d));
  }
}

// Whether an event in thread `thread` of a chat (empty: none) belongs to a
// member of that chat whose thread root ended as `root`.
bool InRootsThread(const ThreadRootState& root, const std::string& thread) {
  switch (root.kind) {
    case ThreadRootState::kPending:
      return false;
    case ThreadRootState::kThread:
      return !thread.empty() && thread == root.thread_id;
    case ThreadRootState::kWholeChat:
      return true;
  }
  return false;
}

Committer::CrashPoint CrashPointFromEnv() {
  const char* at = std::getenv("IMBRIDGE_TEST_CRASH_AT");
  if (at == nullptr) return Committer::CrashPoint::kNone;
  if (absl::string_view(at) == "after_commit") {
    return Committer::CrashPoint::kAfterCommit;
  }
  if (absl::string_view(at) == "after_sync") {
    return Committer::CrashPoint::kAfterSync;
  }
  return Committer::CrashPoint::kNone;
}

}  // namespace

Committer::Committer(Store* store, const LinkRegistry* links,
                     DeliveryPolicy policy, CommitListener* listener,
                     Options options)
    : store_(store),
      links_(links),
      policy_(std::move(policy)),
      listener_(listener),
      options_(options),
      roots_watched_(&metrics::Registry::Default().GetGauge(
          "imbridge_router_thread_roots_watched",
          "Thread roots the router's writer watches: those links wait on "
          "and those resolved whose links are not rewritten yet.")),
      crash_at_(CrashPointFromEnv()) {}

Committer::~Committer() { Stop(); }

void Committer::Start() {
  // Parked queues left by the last run: their roots were pending when they
  // were last written (resolving one moves its deliveries in that commit).
  absl::StatusOr<std::vector<std::string>> targets =
      store_->ListPendingTargets();
  if (targets.ok()) {
    for (const std::string& key : *targets) {
      if (IsParkedQueue(key)) roots_.emplace(key, ThreadRootState());
    }
  } else {
    LogError(
        "cannot list the parked queues; their roots are looked up when "
        "next written",
        {{"error", targets.status().message()}});
  }
  roots_watched_->Set(static_cast<double>(roots_.size()));
  thread_ = std::thread([this] { Run(); });
  syncer_ = std::thread([this] { RunSyncer(); });
}

void Committer::Stop() {
  {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](int* in_flight) { return *in_flight == 0; }, &answers_in_flight_));
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  {
    absl::MutexLock lock(&sync_mu_);
    writer_done_ = true;
  }
  if (syncer_.joinable()) syncer_.join();
}

void Committer::Complete(Effects effects) {
  MaybeCrash(CrashPoint::kAfterCommit, effects);
  absl::MutexLock lock(&sync_mu_);
  // Backpressure: the writer stays at most kMaxUnsynced commits ahead of
  // the disk, so that what waits for a Sync (and adapters' unread streams
  // behind it) is bounded.
  sync_mu_.Await(absl::Condition(
      +[](std::vector<Effects>* committed) {
        return committed->size() < kMaxUnsynced;
      },
      &committed_));
  committed_.push_back(std::move(effects));
}

void Committer::RunSyncer() {
  std::vector<Effects> ready;
  while (true) {
    {
      absl::MutexLock lock(&sync_mu_);
      sync_mu_.Await(absl::Condition(
          +[](Committer* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->sync_mu_) {
            return !c->committed_.empty() || c->writer_done_;
          },
          this));
      if (committed_.empty()) return;  // the writer is done
      ready.swap(committed_);
    }
    // One Sync for every commit made since the last one.
    absl::Status synced = store_->Sync();
    if (!synced.ok()) {
      LogError("store sync failed; publishes are answered as failed",
               {{"error", synced.message()}});
    }
    for (Effects& effects : ready) {
      MaybeCrash(CrashPoint::kAfterSync, effects);
      if (!synced.ok()) {
        // Committed but maybe not on disk: the adapter retries, and the
        // retry is a duplicate if the commit survives.
        for (auto& [done, ack] : effects.acks) {
          if (ack.outcome() != v1::PublishAck::ACCEPTED) continue;
          ack = Ack(v1::PublishAck::FAILED,
                    absl::StrCat("the router could not store the event: ",
                                 synced.message()));
        }
        for (auto& [done, status] : effects.task_results) {
          if (status.ok()) status = synced;
        }
      }
      Deliver(effects);
    }
    ready.clear();
  }
}

void Committer::MaybeCrash(CrashPoint point, const Effects& effects) const {
  if (crash_at_ != point || effects.accepted.empty()) return;
  LogError("IMBRIDGE_TEST_CRASH_AT: killing the router (test only)",
           {{"at", point == CrashPoint::kAfterCommit ? "after_commit"
                                                     : "after_sync"}});
  raise(SIGKILL);
}

void Committer::Enqueue(Op op) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(op));
}

Committer::PublishOp Committer::Prepare(std::shared_ptr<const v1::Event> event,
                                        PublishDone done, bool command) {
  auto prepared = std::make_shared<PreparedPublish>();
  PublishOp op{std::move(event), std::move(done), nullptr, nullptr, "", {}};
  const v1::Event& e = *op.event;
  prepared->valid = ValidateEvent(e);
  if (prepared->valid.ok()) {
    prepared->chat_key = ChannelKey(e.channel(), false);
    if (!command) {
      const std::shared_ptr<const LinkTable> table = links_->Get();
      std::vector<LinkTarget> targets =
          table->TargetsFor(e.channel(), e.kind_case());
      std::vector<RootedTargets> rooted =
          table->TargetsOnceRooted(e.channel(), e.kind_case(), targets);
      AddDeliveries(e, std::move(targets), &op.deliveries, &prepared->links);
      for (RootedTargets& r : rooted) {
        PreparedPublish::Rooted& entry = prepared->rooted.emplace_back();
        entry.root_key = std::move(r.root_key);
        AddDeliveries(e, std::move(r.targets), &entry.deliveries, &entry.links);
      }
    }
    // Unserializable events are left to the store, which names them.
    if (!e.SerializeToString(&op.payload)) op.payload.clear();
  }
  op.prepared = std::move(prepared);
  return op;
}

void Committer::Publish(v1::Event event, PublishDone done) {
  auto shared = std::make_shared<const v1::Event>(std::move(event));
  if (commands_ == nullptr || !commands_->IsCommand(*shared)) {
    Enqueue(Prepare(std::move(shared), std::move(done), false));
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    ++answers_in_flight_;
  }
  answers_.Post([this, shared = std::move(shared), done = std::move(done)] {
    auto op = std::make_shared<PublishOp>(Prepare(shared, done, true));
    // Runs once: at once for the router's own commands, when the adapter
    // answered for an adapter's.
    commands_->Answer(
        *shared, *links_->Get(), absl::Now(),
        [this, op](absl::StatusOr<CommandAnswer> answer) {
          if (!answer.ok()) {
            // Not stored: the adapter publishes the command again.
            op->done(Ack(v1::PublishAck::FAILED,
                         absl::StrCat("the command was not answered: ",
                                      answer.status().message())));
            absl::MutexLock lock(&mu_);
            --answers_in_flight_;
            return;
          }
          op->answer =
              std::make_shared<const CommandAnswer>(*std::move(answer));
          absl::MutexLock lock(&mu_);
          --answers_in_flight_;
          queue_.push_back(std::move(*op));
        });
  });
}

void Committer::RecordResult(SentDelivery sent, v1::DeliveryResult result) {
  Enqueue(ResultOp{std::move(sent), std::move(result)});
}

void Committer::Skip(int64_t delivery_id, std::string target_key) {
  Enqueue(SkipOp{delivery_id, std::move(target_key)});
}

void Committer::Execute(StoreTask task,
                        std::function<void(absl::Status)> done) {
  Enqueue(TaskOp{std::move(task), std::move(done)});
}

bool Committer::AdmitOrWait(std::function<void()> resume) {
  absl::MutexLock lock(&mu_);
  if (queue_.size() < options_.high_water) return true;
  drain_waiters_.push_back(std::move(resume));
  return false;
}

void Committer::Run() {
  std::vector<Op> batch;
  std::vector<std::function<void()>> waiters;
  uint64_t first = 0;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](Committer* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu_) {
            return !c->queue_.empty() || c->stopping_;
          },
          this));
      if (queue_.empty() && stopping_) return;
      size_t n =
          std::min(queue_.size(), static_cast<size_t>(options_.max_batch));
      if (n == queue_.size()) {
        batch.swap(queue_);  // the common case: no ops moved
      } else {
        batch.assign(std::make_move_iterator(queue_.begin()),
                     std::make_move_iterator(queue_.begin() + n));
        queue_.erase(queue_.begin(), queue_.begin() + n);
      }
      first = taken_ + 1;
      taken_ += n;
      if (!drain_waiters_.empty() && queue_.size() <= options_.high_water / 2) {
        waiters.swap(drain_waiters_);
      }
    }
    for (auto& resume : waiters) resume();
    waiters.clear();
    ApplyBatch(batch, first);
    batch.clear();
  }
}

void Committer::ApplyBatch(std::vector<Op>& batch, uint64_t first) {
  absl::Time now = absl::Now();
  // Failures whose groups were queued before this batch are behind us.
  for (auto it = failed_chats_.begin(); it != failed_chats_.end();) {
    if (it->second < first) {
      failed_chats_.erase(it++);
    } else {
      ++it;
    }
  }
  size_t i = 0;
  while (i < batch.size()) {
    if (auto* task = std::get_if<TaskOp>(&batch[i])) {
      RunTask(*task);
      ++i;
      continue;
    }
    size_t end = i;
    while (end < batch.size() && !std::holds_alternative<TaskOp>(batch[end])) {
      ++end;
    }
    CommitRelayOps(absl::MakeSpan(batch).subspan(i, end - i), first + i, now);
    i = end;
  }
}

void Committer::RunTask(TaskOp& task) {
  absl::Status status = store_->Begin();
  if (status.ok()) {
    status = task.task(*store_);
    if (status.ok()) {
      status = store_->Commit();
    } else {
      store_->Rollback();
    }
  }
  // Answered once durable, in order with the relay ops around it.
  Effects effects;
  effects.task_results.emplace_back(task.done, std::move(status));
  Complete(std::move(effects));
}

void Committer::CommitRelayOps(absl::Span<Op> ops, uint64_t first,
                               absl::Time now) {
  CommitBatch batch;
  batch.now = now;
  Effects effects;
  {
    // Sized once: growing these a step at a time is much of the writer's
    // allocation work at a thousand ops per batch.
    size_t publishes = 0;
    size_t results = 0;
    for (const Op& op : ops) {
      publishes += std::holds_alternative<PublishOp>(op) ? 1 : 0;
      results += std::holds_alternative<ResultOp>(op) ? 1 : 0;
    }
    batch.events.reserve(publishes);
    batch.messages.reserve(results);
    batch.completed.reserve(ops.size() - publishes);
    effects.accepted.reserve(publishes);
    effects.acks.reserve(publishes);
    effects.finished.reserve(ops.size() - publishes);
  }
  absl::Status status = Prefetch(ops);
  for (size_t i = 0; status.ok() && i < ops.size(); ++i) {
    if (FollowsFailedPublish(ops[i], first + i)) {
      effects.acks.emplace_back(std::get<PublishOp>(ops[i]).done,
                                Ack(v1::PublishAck::FAILED, kBehindFailed));
      continue;
    }
    status = AddOp(ops[i], &batch, &effects);
  }
  if (status.ok()) status = store_->Apply(batch);
  EndBatch(status.ok());
  if (status.ok()) {
    Resolve(batch, effects);
    Complete(std::move(effects));
    return;
  }
  Restore(batch, effects);
  LogError("group commit failed; applying its operations one by one",
           {{"error", status.message()}});
  // Apply each op in its own batch so that one bad op cannot fail the
  // others; but a publish behind a failed one of its chat is not stored
  // ahead of it (the adapter publishes both again, in their order).
  for (size_t i = 0; i < ops.size(); ++i) {
    Op& op = ops[i];
    if (FollowsFailedPublish(op, first + i)) {
      Effects refused;
      refused.acks.emplace_back(std::get<PublishOp>(op).done,
                                Ack(v1::PublishAck::FAILED, kBehindFailed));
      Complete(std::move(refused));
      continue;
    }
    CommitBatch single;
    single.now = now;
    Effects effects_of_one;
    absl::Status s = Prefetch(absl::MakeSpan(&op, 1));
    if (s.ok()) s = AddOp(op, &single, &effects_of_one);
    if (s.ok()) s = store_->Apply(single);
    EndBatch(s.ok());
    if (s.ok()) {
      Resolve(single, effects_of_one);
      Complete(std::move(effects_of_one));
      continue;
    }
    Restore(single, effects_of_one);
    Effects failed;
    FailOp(op, s, &failed);
    NoteFailedPublish(op);
    Complete(std::move(failed));
  }
}

bool Committer::FollowsFailedPublish(const Op& op, uint64_t position) const {
  if (failed_chats_.empty()) return false;
  const auto* p = std::get_if<PublishOp>(&op);
  if (p == nullptr || !p->prepared->valid.ok()) return false;
  auto it = failed_chats_.find(p->prepared->chat_key);
  return it != failed_chats_.end() && position <= it->second;
}

void Committer::NoteFailedPublish(const Op& op) {
  const auto* p = std::get_if<PublishOp>(&op);
  if (p == nullptr || !p->prepared->valid.ok()) return;
  uint64_t last_queued;
  {
    absl::MutexLock lock(&mu_);
    last_queued = taken_ + queue_.size();
  }
  uint64_t& mark = failed_chats_[p->prepared->chat_key];
  mark = std::max(mark, last_queued);
}

void Committer::Resolve(CommitBatch& batch, Effects& effects) {
  size_t written = effects.written.size();
  for (const NewEvent& entry : batch.events) written += entry.deliveries.size();
  effects.written.reserve(written);
  effects.acks.reserve(effects.acks.size() + effects.accepted.size());
  for (AcceptedPublish& a : effects.accepted) {
    NewEvent& entry = batch.events[a.event_index];
    if (entry.id == 0) {
      effects.acks.emplace_back(
          std::move(a.op->done),
          Ack(v1::PublishAck::DUPLICATE, "event key already accepted"));
      continue;
    }
    NewEvent& with_deliveries =
        a.answer_index >= 0 ? batch.events[a.answer_index] : entry;
    for (DeliveryRecord& d : with_deliveries.deliveries) {
      d.event = with_deliveries.event;
      effects.written.push_back(std::move(d));
    }
    for (const std::string& link : a.prepared->links) {
      effects.relayed.emplace_back(link, entry.event->kind_case());
    }
    for (const std::string& link : a.rooted_links) {
      effects.relayed.emplace_back(link, entry.event->kind_case());
    }
    LogDebug("event accepted",
             {{"event_key", entry.event->key()},
              {"link", a.prepared->links.empty() ? "" : a.prepared->links[0]},
              {"targets", std::to_string(entry.deliveries.size())}});
    effects.acks.emplace_back(std::move(a.op->done),
                              Ack(v1::PublishAck::ACCEPTED, a.detail));
  }
}

void Committer::FailOp(Op& op, const absl::Status& status, Effects* effects) {
  if (auto* p = std::get_if<PublishOp>(&op)) {
    effects->acks.emplace_back(
        p->done, Ack(v1::PublishAck::FAILED,
                     absl::StrCat("the router could not store the event: ",
                                  status.message())));
  } else if (auto* r = std::get_if<ResultOp>(&op)) {
    // The result is lost; the delivery is still pending and is sent again.
    DeliveryDecision d;
    d.kind = DeliveryDecision::kResend;
    d.attempts = r->sent.previous_attempts;
    effects->finished.push_back({r->sent.id, r->sent.target_key, d});
  } else if (auto* t = std::get_if<TaskOp>(&op)) {
    effects->task_results.emplace_back(t->done, status);
  }
}

Committer::DeliveryMetrics& Committer::MetricsFor(absl::string_view platform) {
  auto it = delivery_metrics_.find(platform);
  if (it != delivery_metrics_.end()) return it->second;
  metrics::Registry& registry = metrics::Registry::Default();
  std::string p(platform);
  auto counter = [&](const char* result) {
    return &registry.GetCounter(
        "imbridge_router_deliveries_total",
        "Delivery outcomes by target platform and result (ok, retry, "
        "dead_letter, resend).",
        {{"platform", p}, {"result", result}});
  };
  DeliveryMetrics m;
  m.ok = counter("ok");
  m.retry = counter("retry");
  m.dead_letter = counter("dead_letter");
  m.resend = counter("resend");
  m.latency = &registry.GetHistogram(
      "imbridge_router_delivery_latency_seconds",
      "From an event's commit to its copy's delivery, per target platform.",
      {{"platform", p}});
  return delivery_metrics_.emplace(std::move(p), m).first->second;
}

void Committer::CountRelayed(
    const std::vector<std::pair<std::string, v1::Event::KindCase>>& relayed) {
  for (const auto& key : relayed) {
    metrics::Counter*& counter = link_events_[key];
    if (counter == nullptr) {
      counter = &metrics::Registry::Default().GetCounter(
          "imbridge_router_link_events_total",
          "Events the router relayed, once per link they were relayed on, "
          "by kind (message, edit, delete, presence, membership); counted "
          "after the commit.",
          {{"link", key.first}, {"kind", EventKindName(key.second)}});
    }
    counter->Increment();
  }
}

void Committer::CountFinished(const std::vector<FinishedDelivery>& finished) {
  absl::Time now = absl::Now();
  for (const FinishedDelivery& f : finished) {
    if (f.created_at == absl::InfinitePast()) continue;  // skips
    DeliveryMetrics& m = MetricsFor(
        absl::string_view(f.target_key).substr(0, f.target_key.find('/')));
    switch (f.decision.kind) {
      case DeliveryDecision::kCompleted:
        m.latency->Observe(absl::ToDoubleSeconds(now - f.created_at));
        m.ok->Increment();
        break;
      case DeliveryDecision::kRetry:
        m.retry->Increment();
        break;
      case DeliveryDecision::kDeadLetter:
        m.dead_letter->Increment();
        break;
      case DeliveryDecision::kResend:
        m.resend->Increment();
        break;
    }
  }
}

void Committer::Deliver(Effects& effects) {
  for (auto& [done, ack] : effects.acks) {
    if (done) done(ack);
  }
  for (auto& [done, status] : effects.task_results) {
    if (done) done(status);
  }
  if (!effects.relayed.empty()) CountRelayed(effects.relayed);
  if (!effects.written.empty()) {
    listener_->OnDeliveriesWritten(std::move(effects.written));
  }
  if (!effects.finished.empty()) {
    CountFinished(effects.finished);
    listener_->OnDeliveriesFinished(std::move(effects.finished));
  }
  if (!effects.moved_to.empty()) {
    listener_->OnDeliveriesMoved(std::move(effects.moved_to));
  }
  if (!effects.resolved.empty() && roots_resolved_) {
    roots_resolved_(std::move(effects.resolved));
  }
}

absl::Status Committer::AddOp(Op& op, CommitBatch* batch, Effects* effects) {
  if (auto* p = std::get_if<PublishOp>(&op)) {
    return AddPublish(*p, batch, effects);
  }
  if (auto* r = std::get_if<ResultOp>(&op)) {
    AddResult(*r, batch, effects);
    return absl::OkStatus();
  }
  auto& s = std::get<SkipOp>(op);
  batch->completed.push_back(s.id);
  DeliveryDecision d;
  d.kind = DeliveryDecision::kCompleted;
  effects->finished.push_back({s.id, s.target_key, d});
  return absl::OkStatus();
}

absl::Status Committer::Prefetch(absl::Span<Op> ops) {
  std::vector<std::pair<std::string, std::string>> messages;
  // The same, as keys of committed_messages_ (views into `ops`).
  std::vector<MessageKey> keys;
  for (Op& op : ops) {
    const auto* p = std::get_if<PublishOp>(&op);
    if (p == nullptr || !p->prepared->valid.ok()) continue;
    const std::string& subject = SubjectMessageId(*p->event);
    if (subject.empty()) continue;
    messages.emplace_back(p->prepared->chat_key, subject);
    keys.emplace_back(p->prepared->chat_key, subject);
  }
  IMB_ASSIGN_OR_RETURN(std::vector<std::optional<MessageLocation>> found,
                       store_->FindMessages(messages));
  committed_messages_.reserve(keys.size());
  for (size_t i = 0; i < keys.size() && i < found.size(); ++i) {
    std::optional<bool> is_copy;
    if (found[i].has_value()) is_copy = found[i]->is_copy;
    committed_messages_[keys[i]] = is_copy;
  }
  return absl::OkStatus();
}

void Committer::EndBatch(bool committed) {
  batch_messages_.clear();
  committed_messages_.clear();
  if (committed) {
    for (auto& [key, state] : batch_roots_) {
      if (state.kind != ThreadRootState::kPending) settled_roots_.insert(key);
      roots_[key] = std::move(state);
    }
  }
  batch_roots_.clear();
  ForgetSettledRoots();
}

void Committer::ForgetSettledRoots() {
  if (!settled_roots_.empty()) {
    // Publishes prepared with an older table look the root up again.
    const std::shared_ptr<const LinkTable> table = links_->Get();
    for (auto it = settled_roots_.begin(); it != settled_roots_.end();) {
      if (table->WaitsOnThreadRoot(*it)) {
        ++it;
        continue;
      }
      roots_.erase(*it);
      settled_roots_.erase(it++);
    }
  }
  roots_watched_->Set(static_cast<double>(roots_.size()));
}

absl::StatusOr<ThreadRootState> Committer::WatchThreadRoot(
    Store& store, int64_t root_event, const v1::ChannelRef& chat) {
  v1::ChannelRef whole = chat;
  whole.clear_thread_id();
  const std::string key =
      ParkedQueueKey(root_event, ChannelKey(whole, /*with_thread=*/false));
  auto it = roots_.find(key);
  if (it != roots_.end()) return it->second;
  IMB_ASSIGN_OR_RETURN(ThreadRootState state,
                       LookUpThreadRoot(store, root_event, whole));
  if (state.kind != ThreadRootState::kPending) settled_roots_.insert(key);
  roots_.emplace(key, state);
  roots_watched_->Set(static_cast<double>(roots_.size()));
  return state;
}

absl::StatusOr<ThreadRootState> Committer::RootOf(const std::string& key,
                                                  Effects* effects) {
  auto in_batch = batch_roots_.find(key);
  if (in_batch != batch_roots_.end()) return in_batch->second;
  auto watched = roots_.find(key);
  if (watched != roots_.end()) return watched->second;
  std::optional<ParkedQueue> parked = ParseParkedQueue(key);
  if (!parked.has_value()) {
    return absl::InternalError(absl::StrCat("bad parked queue key ", key));
  }
  IMB_ASSIGN_OR_RETURN(ThreadRootState state,
                       LookUpThreadRoot(*store_, parked->root_event,
                                        ChatOfKey(parked->chat_key)));
  if (state.kind == ThreadRootState::kPending) {
    roots_.emplace(key, state);
    return state;
  }
  // Resolved before the root was watched (a link created meanwhile, or a
  // restart before its rewrite), or forgotten since (a publish prepared
  // before the link's rewrite): the link is rewritten once this batch
  // commits (looked up again if it fails; nothing to do if it was).
  effects->resolved.push_back(
      {parked->root_event, std::move(parked->chat_key), state});
  batch_roots_.emplace(key, state);
  return state;
}

absl::Status Committer::Unpark(DeliveryRecord& delivery, Effects* effects) {
  IMB_ASSIGN_OR_RETURN(ThreadRootState state,
                       RootOf(delivery.target_key, effects));
  if (state.kind == ThreadRootState::kPending) return absl::OkStatus();
  delivery.target.set_thread_id(state.thread_id);
  delivery.target_key = ChannelKey(delivery.target, /*with_thread=*/true);
  return absl::OkStatus();
}

absl::Status Committer::KeepRooted(const v1::Event& event,
                                   const PreparedPublish& prepared,
                                   std::vector<DeliveryRecord>* deliveries,
                                   std::vector<std::string>* links,
                                   Effects* effects) {
  for (const PreparedPublish::Rooted& r : prepared.rooted) {
    IMB_ASSIGN_OR_RETURN(ThreadRootState root, RootOf(r.root_key, effects));
    if (!InRootsThread(root, event.channel().thread_id())) continue;
    // Copied: a batch applied again decides again.
    deliveries->insert(deliveries->end(), r.deliveries.begin(),
                       r.deliveries.end());
    for (const std::string& link : r.links) {
      if (std::find(links->begin(), links->end(), link) == links->end() &&
          std::find(prepared.links.begin(), prepared.links.end(), link) ==
              prepared.links.end()) {
        links->push_back(link);
      }
    }
  }
  return absl::OkStatus();
}

void Committer::ResolveRootOf(const SentDelivery& sent,
                              const DeliveryDecision& d,
                              const v1::DeliveryResult& result,
                              CommitBatch* batch, Effects* effects) {
  if (!sent.records_copies) return;
  if (d.kind != DeliveryDecision::kCompleted &&
      d.kind != DeliveryDecision::kDeadLetter) {
    return;
  }
  if (batch_roots_.empty() && roots_.empty()) return;  // none is watched
  const std::string key = ParkedQueueKey(sent.event_id, sent.target_chat_key);
  auto in_batch = batch_roots_.find(key);
  const ThreadRootState* known = nullptr;
  if (in_batch != batch_roots_.end()) {
    known = &in_batch->second;
  } else if (auto it = roots_.find(key); it != roots_.end()) {
    known = &it->second;
  }
  if (known == nullptr || known->kind != ThreadRootState::kPending) return;
  ThreadRootState state;
  state.kind = ThreadRootState::kWholeChat;
  if (d.kind == DeliveryDecision::kCompleted && result.native_ids_size() > 0) {
    state.kind = ThreadRootState::kThread;
    state.thread_id = result.native_ids(0);
  } else {
    LogWarn(
        "thread root has no copy; its parked deliveries go to the whole chat",
        {{"chat", sent.target_chat_key},
         {"event_key", sent.event_key},
         {"reason", d.reason}});
  }
  QueueMove move;
  move.from_key = key;
  move.to_target = ChatOfKey(sent.target_chat_key);
  move.to_target.set_thread_id(state.thread_id);
  move.to_key = ChannelKey(move.to_target, /*with_thread=*/true);
  effects->moved_to.push_back(move.to_key);
  batch->moves.push_back(std::move(move));
  effects->resolved.push_back({sent.event_id, sent.target_chat_key, state});
  batch_roots_[key] = std::move(state);
}

void Committer::Restore(CommitBatch& batch, Effects& effects) {
  for (AcceptedPublish& a : effects.accepted) {
    NewEvent& entry = batch.events[a.event_index];
    a.op->payload = std::move(entry.payload);
    a.op->deliveries = std::move(entry.deliveries);
    a.op->deliveries.erase(a.op->deliveries.begin() + a.own_deliveries,
                           a.op->deliveries.end());
  }
}

absl::StatusOr<std::optional<bool>> Committer::FindMessage(
    const std::string& chat_key, const std::string& native_id) {
  const MessageKey key(chat_key, native_id);
  auto it = batch_messages_.find(key);
  if (it != batch_messages_.end()) return std::optional<bool>(it->second);
  auto prefetched = committed_messages_.find(key);
  if (prefetched != committed_messages_.end()) return prefetched->second;
  IMB_ASSIGN_OR_RETURN(std::optional<MessageLocation> loc,
                       store_->FindMessage(chat_key, native_id));
  if (!loc.has_value()) return std::optional<bool>();
  return std::optional<bool>(loc->is_copy);
}

absl::Status Committer::AddPublish(PublishOp& op, CommitBatch* batch,
                                   Effects* effects) {
  const v1::Event& event = *op.event;
  const PreparedPublish& prepared = *op.prepared;
  auto ack = [&](v1::PublishAck a) {
    effects->acks.emplace_back(op.done, std::move(a));
    return absl::OkStatus();
  };
  if (!prepared.valid.ok()) {
    return ack(
        Ack(v1::PublishAck::REJECTED, std::string(prepared.valid.message())));
  }
  const std::string& chat_key = prepared.chat_key;
  const std::string& subject = SubjectMessageId(event);

  // Echoes and events about messages the bridge never relayed.
  if (!subject.empty()) {
    IMB_ASSIGN_OR_RETURN(std::optional<bool> is_copy,
                         FindMessage(chat_key, subject));
    if (is_copy.has_value() && *is_copy) {
      return ack(
          Ack(v1::PublishAck::DROPPED, "echo of a copy the bridge made"));
    }
    if (event.has_posted() && is_copy.has_value()) {
      // The same original again (a retried webhook, maybe under a new key).
      return ack(Ack(v1::PublishAck::DUPLICATE, "message was already relayed"));
    }
    if (!event.has_posted() && !is_copy.has_value()) {
      return ack(Ack(v1::PublishAck::DROPPED,
                     "the message was never relayed by the bridge"));
    }
  }

  if (op.answer != nullptr) {
    AddCommand(op, batch, effects);
    return absl::OkStatus();
  }

  const absl::Time now = batch->now;
  if (event.has_presence()) {
    const v1::PresenceChanged& p = event.presence();
    RosterEntry entry;
    entry.platform = event.channel().platform();
    entry.account = event.channel().account();
    entry.user_id = p.user().id();
    entry.display_name = p.user().display_name();
    entry.presence = p.presence();
    entry.status_text = p.status_text();
    entry.updated_at = now;
    batch->roster.push_back(std::move(entry));
  }
  std::vector<DeliveryRecord> rooted;
  std::vector<std::string> rooted_links;
  IMB_RETURN_IF_ERROR(
      KeepRooted(event, prepared, &rooted, &rooted_links, effects));
  if (op.deliveries.empty() && rooted.empty() && !event.has_presence()) {
    return ack(Ack(v1::PublishAck::DROPPED, "the channel is not in any link"));
  }

  NewEvent& entry = batch->events.emplace_back();
  entry.event = op.event;
  entry.payload = std::move(op.payload);
  if (event.has_posted()) {
    entry.original_chat_key = chat_key;
    entry.original_message_id = subject;
    batch_messages_[MessageKey(chat_key, subject)] = false;
    for (const v1::Attachment& a : event.posted().attachments()) {
      if (!a.blob_id().empty()) entry.blob_ids.push_back(a.blob_id());
    }
    NoteParticipant(event, chat_key, batch);
  }
  for (std::vector<DeliveryRecord>* list : {&op.deliveries, &rooted}) {
    for (DeliveryRecord& d : *list) {
      if (IsParkedQueue(d.target_key)) IMB_RETURN_IF_ERROR(Unpark(d, effects));
    }
  }
  const size_t own_deliveries = op.deliveries.size();
  entry.deliveries = std::move(op.deliveries);
  entry.deliveries.insert(entry.deliveries.end(),
                          std::make_move_iterator(rooted.begin()),
                          std::make_move_iterator(rooted.end()));
  for (DeliveryRecord& d : entry.deliveries) {
    d.created_at = now;
    d.next_attempt_at = now;
  }
  AcceptedPublish accepted;
  accepted.op = &op;
  accepted.event_index = batch->events.size() - 1;
  accepted.prepared = op.prepared;
  accepted.own_deliveries = own_deliveries;
  accepted.rooted_links = std::move(rooted_links);
  effects->accepted.push_back(std::move(accepted));
  return absl::OkStatus();
}

void Committer::AddResult(ResultOp& op, CommitBatch* batch, Effects* effects) {
  const SentDelivery& sent = op.sent;
  const absl::Time now = batch->now;
  DeliveryDecision d =
      policy_.Decide(op.result, sent.previous_attempts, sent.created_at, now);
  switch (d.kind) {
    case DeliveryDecision::kCompleted: {
      const auto& ids = op.result.native_ids();
      if (sent.records_copies && !ids.empty()) {
        MessageRows rows;
        rows.group_id = sent.event_id;
        rows.channel_key = sent.target_chat_key;
        rows.native_ids.assign(ids.begin(), ids.end());
        rows.is_copy = true;
        // Keyed by views into the op, which outlives the batch's maps.
        for (const std::string& id : ids) {
          batch_messages_.emplace(MessageKey(sent.target_chat_key, id), true);
        }
        batch->messages.push_back(std::move(rows));
      }
      batch->completed.push_back(sent.id);
      break;
    }
    case DeliveryDecision::kRetry:
      batch->retries.push_back(
          {sent.id, d.attempts, d.next_attempt_at, d.reason});
      break;
    case DeliveryDecision::kDeadLetter:
      LogWarn("delivery dead-lettered", {{"target", sent.target_key},
                                         {"link", sent.link},
                                         {"event_key", sent.event_key},
                                         {"reason", d.reason}});
      batch->dead_letters.push_back({sent.id, d.reason});
      break;
    case DeliveryDecision::kResend:
      break;
  }
  ResolveRootOf(sent, d, op.result, batch, effects);
  effects->finished.push_back(
      {sent.id, sent.target_key, std::move(d), sent.created_at});
}

void Committer::NoteParticipant(const v1::Event& event,
                                const std::string& chat_key,
                                CommitBatch* batch) {
  const v1::UserRef& sender = event.posted().sender();
  if (sender.id().empty()) return;
  const absl::Time now = batch->now;
  std::string key = absl::StrCat(chat_key, "\n", sender.id());
  auto it = participants_written_.find(key);
  if (it != participants_written_.end() &&
      now - it->second.first < absl::Minutes(1) &&
      it->second.second == sender.display_name()) {
    return;
  }
  ParticipantSeen seen;
  seen.channel_key = chat_key;
  seen.user = sender;
  if (seen.user.platform().empty()) {
    seen.user.set_platform(event.channel().platform());
  }
  batch->participants.push_back(std::move(seen));
  // A bound on memory; forgetting only means writing a row again.
  if (participants_written_.size() > 100000) participants_written_.clear();
  participants_written_[key] = {now, sender.display_name()};
}

void Committer::AddCommand(PublishOp& op, CommitBatch* batch,
                           Effects* effects) {
  const v1::Event& event = *op.event;
  const absl::Time now = batch->now;
  NewEvent& command = batch->events.emplace_back();
  command.event = op.event;
  command.payload = std::move(op.payload);
  command.original_chat_key = op.prepared->chat_key;
  command.original_message_id = event.posted().message_id();
  batch_messages_[MessageKey(op.prepared->chat_key,
                             event.posted().message_id())] = false;
  AcceptedPublish accepted;
  accepted.op = &op;
  accepted.event_index = batch->events.size() - 1;
  accepted.detail = "chat command answered";
  accepted.prepared = op.prepared;

  auto answer = std::make_shared<v1::Event>();
  answer->set_key(absl::StrCat(event.key(), "#answer"));
  *answer->mutable_channel() = event.channel();
  std::string thread_root = event.posted().thread_root_id();
  if (op.answer->in_command_thread) {
    // The thread rooted at the command (or the command's own thread).
    if (thread_root.empty()) thread_root = event.posted().message_id();
    answer->mutable_channel()->set_thread_id(thread_root);
  }
  answer->set_occurred_at_ms(absl::ToUnixMillis(now));
  v1::MessagePosted* posted = answer->mutable_posted();
  posted->mutable_sender()->set_platform("imbridge");
  posted->mutable_sender()->set_id("imbridge");
  posted->mutable_sender()->set_display_name("imbridge");
  posted->mutable_sender()->set_is_bot(true);
  posted->mutable_text()->set_text(op.answer->text);
  posted->set_reply_to_message_id(event.posted().message_id());
  posted->set_thread_root_id(thread_root);
  NewEvent& reply = batch->events.emplace_back();
  reply.event = answer;
  DeliveryRecord d;
  d.target = answer->channel();
  d.target_key = ChannelKey(answer->channel(), true);
  d.sender_name = "imbridge";
  d.created_at = now;
  d.next_attempt_at = now;
  reply.deliveries.push_back(std::move(d));
  accepted.answer_index = static_cast<ptrdiff_t>(batch->events.size() - 1);
  effects->accepted.push_back(std::move(accepted));
}

}  // namespace imbridge::bridge
