#include "bridge/committer.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bridge/event_validation.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/status_macros.h"

namespace imbridge::bridge {
namespace {

v1::PublishAck Ack(v1::PublishAck::Outcome outcome, std::string detail = "") {
  v1::PublishAck ack;
  ack.set_outcome(outcome);
  ack.set_detail(std::move(detail));
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
}  // namespace

Committer::Committer(Store* store, const LinkRegistry* links,
                     DeliveryPolicy policy, CommitListener* listener,
                     Options options)
    : store_(store),
      links_(links),
      policy_(std::move(policy)),
      listener_(listener),
      options_(options) {}

Committer::~Committer() { Stop(); }

void Committer::Start() {
  thread_ = std::thread([this] { Run(); });
}

void Committer::Stop() {
  {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](int* in_flight) { return *in_flight == 0; }, &answers_in_flight_));
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void Committer::Enqueue(Op op) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(op));
}

void Committer::Publish(v1::Event event, PublishDone done) {
  auto shared = std::make_shared<const v1::Event>(std::move(event));
  if (commands_ == nullptr || !commands_->IsCommand(*shared)) {
    Enqueue(PublishOp{std::move(shared), std::move(done), nullptr});
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    ++answers_in_flight_;
  }
  answers_.Post([this, shared = std::move(shared), done = std::move(done)] {
    auto answer = std::make_shared<const std::string>(
        commands_->Answer(*shared, *links_->Get(), absl::Now()));
    absl::MutexLock lock(&mu_);
    --answers_in_flight_;
    queue_.push_back(PublishOp{shared, done, std::move(answer)});
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
      batch.assign(std::make_move_iterator(queue_.begin()),
                   std::make_move_iterator(queue_.begin() + n));
      queue_.erase(queue_.begin(), queue_.begin() + n);
      if (!drain_waiters_.empty() && queue_.size() <= options_.high_water / 2) {
        waiters.swap(drain_waiters_);
      }
    }
    for (auto& resume : waiters) resume();
    waiters.clear();
    ApplyBatch(batch);
    batch.clear();
  }
}

void Committer::ApplyBatch(std::vector<Op>& batch) {
  absl::Time now = absl::Now();
  Effects effects;
  absl::Status status = store_->Begin();
  for (size_t i = 0; status.ok() && i < batch.size(); ++i) {
    status = ApplyOp(batch[i], now, &effects);
  }
  if (status.ok()) status = store_->Commit();
  if (status.ok()) {
    Deliver(effects);
    return;
  }
  store_->Rollback();
  LogError("group commit failed; applying its operations one by one",
           {{"error", status.message()}});
  // Apply each op in its own transaction so that one bad op cannot fail
  // the others.
  for (Op& op : batch) {
    Effects single;
    absl::Status s = store_->Begin();
    if (s.ok()) s = ApplyOp(op, now, &single);
    if (s.ok()) s = store_->Commit();
    if (s.ok()) {
      Deliver(single);
      continue;
    }
    store_->Rollback();
    Effects failed;
    FailOp(op, s, &failed);
    Deliver(failed);
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
}

absl::Status Committer::ApplyOp(Op& op, absl::Time now, Effects* effects) {
  if (auto* p = std::get_if<PublishOp>(&op))
    return ApplyPublish(*p, now, effects);
  if (auto* r = std::get_if<ResultOp>(&op))
    return ApplyResult(*r, now, effects);
  if (auto* s = std::get_if<SkipOp>(&op)) {
    IMB_RETURN_IF_ERROR(store_->CompleteDelivery(s->id));
    DeliveryDecision d;
    d.kind = DeliveryDecision::kCompleted;
    effects->finished.push_back({s->id, s->target_key, d});
    return absl::OkStatus();
  }
  auto& t = std::get<TaskOp>(op);
  absl::Status status = t.task(*store_);
  // A task's own failure is its answer, not a reason to fail the batch.
  effects->task_results.emplace_back(t.done, status);
  return absl::OkStatus();
}

absl::Status Committer::ApplyPublish(PublishOp& op, absl::Time now,
                                     Effects* effects) {
  const v1::Event& event = *op.event;
  auto ack = [&](v1::PublishAck a) {
    effects->acks.emplace_back(op.done, std::move(a));
    return absl::OkStatus();
  };
  if (absl::Status valid = ValidateEvent(event); !valid.ok()) {
    return ack(Ack(v1::PublishAck::REJECTED, std::string(valid.message())));
  }
  const std::string chat_key = ChannelKey(event.channel(), false);
  const std::string& subject = SubjectMessageId(event);

  // Echoes and events about messages the bridge never relayed.
  if (!subject.empty()) {
    IMB_ASSIGN_OR_RETURN(std::optional<MessageLocation> loc,
                         store_->FindMessageInTransaction(chat_key, subject));
    if (loc.has_value() && loc->is_copy) {
      return ack(
          Ack(v1::PublishAck::DROPPED, "echo of a copy the bridge made"));
    }
    if (event.has_posted() && loc.has_value()) {
      // The same original again (a retried webhook, maybe under a new key).
      return ack(Ack(v1::PublishAck::DUPLICATE, "message was already relayed"));
    }
    if (!event.has_posted() && !loc.has_value()) {
      return ack(Ack(v1::PublishAck::DROPPED,
                     "the message was never relayed by the bridge"));
    }
  }

  if (op.answer != nullptr) return ApplyCommand(op, now, effects);

  std::shared_ptr<const LinkTable> links = links_->Get();
  std::vector<LinkTarget> targets =
      links->TargetsFor(event.channel(), event.kind_case());
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
    IMB_RETURN_IF_ERROR(store_->UpsertRoster(entry));
  }
  if (targets.empty() && !event.has_presence()) {
    return ack(Ack(v1::PublishAck::DROPPED, "the channel is not in any link"));
  }

  IMB_ASSIGN_OR_RETURN(std::optional<int64_t> event_id,
                       store_->InsertEvent(event, now));
  if (!event_id.has_value()) {
    return ack(Ack(v1::PublishAck::DUPLICATE, "event key already accepted"));
  }
  if (event.has_posted()) {
    std::vector<std::string> ids = {subject};
    IMB_RETURN_IF_ERROR(
        store_->AddMessages(*event_id, chat_key, ids, false, now));
    for (const v1::Attachment& a : event.posted().attachments()) {
      if (!a.blob_id().empty()) {
        IMB_RETURN_IF_ERROR(store_->AddEventBlob(*event_id, a.blob_id(), now));
      }
    }
    IMB_RETURN_IF_ERROR(NoteParticipant(event, chat_key, now));
  }
  const std::shared_ptr<const v1::Event>& shared_event = op.event;
  // For the log line below (the loop moves the targets' fields).
  const std::string first_link = targets.empty() ? "" : targets.front().link;
  const size_t target_count = targets.size();
  // A link with several other members is one relay of the event.
  const size_t relayed_before = effects->relayed.size();
  for (const LinkTarget& t : targets) {
    auto mine = effects->relayed.begin() + relayed_before;
    if (std::none_of(mine, effects->relayed.end(),
                     [&](const auto& r) { return r.first == t.link; })) {
      effects->relayed.emplace_back(t.link, event.kind_case());
    }
  }
  for (LinkTarget& t : targets) {
    DeliveryRecord d;
    d.event_id = *event_id;
    d.target_key = std::move(t.target_key);
    d.target = std::move(t.channel);
    d.link = std::move(t.link);
    d.sender_name = RenderSenderName(t.member.options(), Actor(*shared_event),
                                     shared_event->channel());
    d.created_at = now;
    d.next_attempt_at = now;
    IMB_ASSIGN_OR_RETURN(d.id, store_->InsertDelivery(d));
    d.event = shared_event;
    effects->written.push_back(std::move(d));
  }
  LogDebug("event accepted", {{"event_key", event.key()},
                              {"link", first_link},
                              {"targets", std::to_string(target_count)}});
  return ack(Ack(v1::PublishAck::ACCEPTED));
}

absl::Status Committer::ApplyResult(ResultOp& op, absl::Time now,
                                    Effects* effects) {
  const SentDelivery& sent = op.sent;
  DeliveryDecision d =
      policy_.Decide(op.result, sent.previous_attempts, sent.created_at, now);
  switch (d.kind) {
    case DeliveryDecision::kCompleted: {
      const auto& ids = op.result.native_ids();
      if (sent.records_copies && !ids.empty()) {
        std::vector<std::string> copies(ids.begin(), ids.end());
        IMB_RETURN_IF_ERROR(store_->AddMessages(
            sent.event_id, sent.target_chat_key, copies, true, now));
      }
      IMB_RETURN_IF_ERROR(store_->CompleteDelivery(sent.id));
      break;
    }
    case DeliveryDecision::kRetry:
      IMB_RETURN_IF_ERROR(store_->RescheduleDelivery(
          sent.id, d.attempts, d.next_attempt_at, d.reason));
      break;
    case DeliveryDecision::kDeadLetter:
      LogWarn("delivery dead-lettered", {{"target", sent.target_key},
                                         {"link", sent.link},
                                         {"event_key", sent.event_key},
                                         {"reason", d.reason}});
      IMB_RETURN_IF_ERROR(store_->DeadLetterDelivery(sent.id, d.reason, now));
      break;
    case DeliveryDecision::kResend:
      break;
  }
  effects->finished.push_back(
      {sent.id, sent.target_key, std::move(d), sent.created_at});
  return absl::OkStatus();
}

absl::Status Committer::NoteParticipant(const v1::Event& event,
                                        const std::string& chat_key,
                                        absl::Time now) {
  const v1::UserRef& sender = event.posted().sender();
  if (sender.id().empty()) return absl::OkStatus();
  std::string key = absl::StrCat(chat_key, "\n", sender.id());
  auto it = participants_written_.find(key);
  if (it != participants_written_.end() &&
      now - it->second.first < absl::Minutes(1) &&
      it->second.second == sender.display_name()) {
    return absl::OkStatus();
  }
  v1::UserRef user = sender;
  if (user.platform().empty()) user.set_platform(event.channel().platform());
  IMB_RETURN_IF_ERROR(store_->TouchParticipant(chat_key, user, now));
  // A bound on memory; forgetting only means writing a row again.
  if (participants_written_.size() > 100000) participants_written_.clear();
  participants_written_[key] = {now, sender.display_name()};
  return absl::OkStatus();
}

absl::Status Committer::ApplyCommand(PublishOp& op, absl::Time now,
                                     Effects* effects) {
  const v1::Event& event = *op.event;
  IMB_ASSIGN_OR_RETURN(std::optional<int64_t> event_id,
                       store_->InsertEvent(event, now));
  if (!event_id.has_value()) {
    effects->acks.emplace_back(
        op.done, Ack(v1::PublishAck::DUPLICATE, "event key already accepted"));
    return absl::OkStatus();
  }
  const std::string chat_key = ChannelKey(event.channel(), false);
  std::vector<std::string> ids = {event.posted().message_id()};
  IMB_RETURN_IF_ERROR(
      store_->AddMessages(*event_id, chat_key, ids, false, now));

  auto answer = std::make_shared<v1::Event>();
  answer->set_key(absl::StrCat(event.key(), "#answer"));
  *answer->mutable_channel() = event.channel();
  answer->set_occurred_at_ms(absl::ToUnixMillis(now));
  v1::MessagePosted* posted = answer->mutable_posted();
  posted->mutable_sender()->set_platform("imbridge");
  posted->mutable_sender()->set_id("imbridge");
  posted->mutable_sender()->set_display_name("imbridge");
  posted->mutable_sender()->set_is_bot(true);
  posted->mutable_text()->set_text(*op.answer);
  posted->set_reply_to_message_id(event.posted().message_id());
  posted->set_thread_root_id(event.posted().thread_root_id());
  IMB_ASSIGN_OR_RETURN(std::optional<int64_t> answer_id,
                       store_->InsertEvent(*answer, now));
  if (answer_id.has_value()) {
    DeliveryRecord d;
    d.event_id = *answer_id;
    d.target = event.channel();
    d.target_key = ChannelKey(event.channel(), true);
    d.sender_name = "imbridge";
    d.created_at = now;
    d.next_attempt_at = now;
    IMB_ASSIGN_OR_RETURN(d.id, store_->InsertDelivery(d));
    d.event = answer;
    effects->written.push_back(std::move(d));
  }
  effects->acks.emplace_back(
      op.done, Ack(v1::PublishAck::ACCEPTED, "chat command answered"));
  return absl::OkStatus();
}

}  // namespace imbridge::bridge
