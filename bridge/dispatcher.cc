#include "bridge/dispatcher.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bridge/capability_fit.h"
#include "bridge/link_table.h"
#include "bridge/thread_roots.h"
#include "common/logging.h"

namespace imbridge::bridge {
namespace {

std::string RouteOf(const v1::ChannelRef& c) {
  return absl::StrCat(c.platform(), "/", c.account());
}

// Deliveries that refer to earlier messages must wait until those are done.
bool NeedsBarrier(const v1::Event& e) {
  switch (e.kind_case()) {
    case v1::Event::kEdited:
    case v1::Event::kDeleted:
      return true;
    case v1::Event::kPosted:
      return !e.posted().reply_to_message_id().empty() ||
             !e.posted().thread_root_id().empty();
    default:
      return false;
  }
}

std::string PresenceKey(const v1::Event& e) {
  return absl::StrCat(e.channel().platform(), "/", e.channel().account(), "/",
                      e.presence().user().id());
}

const char* CapabilityFor(v1::Event::KindCase kind) {
  switch (kind) {
    case v1::Event::kEdited:
      return "edits";
    case v1::Event::kDeleted:
      return "deletes";
    case v1::Event::kPresence:
      return "presence";
    case v1::Event::kMembership:
      return "membership";
    default:
      return nullptr;
  }
}

}  // namespace

Dispatcher::Dispatcher(Store* store, const LinkRegistry* links, Options options)
    : store_(store), links_(links), options_(options) {}

Dispatcher::~Dispatcher() { Stop(); }

absl::Status Dispatcher::Start() {
  router_id_ = store_->router_id();
  absl::StatusOr<std::vector<std::string>> targets =
      store_->ListPendingTargets();
  if (!targets.ok()) return targets.status();
  for (const std::string& key : *targets) {
    if (leased_) break;                // queues come with their leases
    if (IsParkedQueue(key)) continue;  // waits for its thread root
    TargetQueue& q = Queue(key, nullptr);
    q.more_in_store = true;
  }
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void Dispatcher::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void Dispatcher::Post(Input input) {
  absl::MutexLock lock(&mu_);
  inputs_.push_back(std::move(input));
}

void Dispatcher::Attach(std::shared_ptr<AdapterSession> s) {
  Post(AttachInput{std::move(s)});
}
void Dispatcher::Detach(std::shared_ptr<AdapterSession> s) {
  Post(DetachInput{std::move(s)});
}
void Dispatcher::OnDeliveriesWritten(std::vector<DeliveryRecord> d) {
  Post(std::move(d));
}
void Dispatcher::OnDeliveriesFinished(std::vector<FinishedDelivery> f) {
  Post(std::move(f));
}
void Dispatcher::OnDeliveriesMoved(std::vector<std::string> target_keys) {
  for (std::string& key : target_keys) Reload(std::move(key));
}
void Dispatcher::Reload(std::string target_key) {
  Post(ReloadInput{std::move(target_key)});
}

void Dispatcher::OnQueuesGranted(std::vector<std::string> target_keys) {
  Post(GrantInput{std::move(target_keys)});
}

void Dispatcher::OnQueuesRevoked(std::vector<std::string> target_keys) {
  auto done = std::make_shared<absl::Notification>();
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || !thread_.joinable()) return;  // nothing is sent
    inputs_.push_back(RevokeInput{std::move(target_keys), done});
  }
  // The dispatcher thread takes inputs between pumps, so this waits for at
  // most one pump. The bound only guards against a stuck thread.
  if (!done->WaitForNotificationWithTimeout(absl::Seconds(30))) {
    LogError("dispatcher did not drop revoked queues within 30 s");
  }
}

void Dispatcher::OnLeasesValidUntil(absl::Time until) {
  Post(ValidUntilInput{until});
}

void Dispatcher::OnQueueWork(const QueueWork& work) { Post(work); }

void Dispatcher::Run() {
  std::vector<Input> inputs;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      absl::Time wake =
          timers_.empty() ? absl::InfiniteFuture() : timers_.begin()->first;
      mu_.AwaitWithDeadline(
          absl::Condition(
              +[](Dispatcher* d) ABSL_EXCLUSIVE_LOCKS_REQUIRED(d->mu_) {
                return !d->inputs_.empty() || d->stopping_;
              },
              this),
          wake);
      if (stopping_) return;
      inputs.swap(inputs_);
    }
    for (Input& input : inputs) Handle(input);
    inputs.clear();
    absl::Time now = absl::Now();
    while (!timers_.empty() && timers_.begin()->first <= now) {
      dirty_.insert(timers_.begin()->second);
      timers_.erase(timers_.begin());
    }
    std::set<std::string> dirty;
    dirty.swap(dirty_);
    for (const std::string& key : dirty) {
      auto it = queues_.find(key);
      if (it != queues_.end()) Pump(*it->second, now);
    }
  }
}

void Dispatcher::Handle(Input& input) {
  if (auto* w = std::get_if<std::vector<DeliveryRecord>>(&input)) {
    HandleWritten(*w);
  } else if (auto* f = std::get_if<std::vector<FinishedDelivery>>(&input)) {
    HandleFinished(*f);
  } else if (auto* a = std::get_if<AttachInput>(&input)) {
    HandleAttach(std::move(a->session));
  } else if (auto* d = std::get_if<DetachInput>(&input)) {
    HandleDetach(d->session);
  } else if (auto* r = std::get_if<ReloadInput>(&input)) {
    if (leased_) {
      auto it = queues_.find(r->target_key);
      if (it != queues_.end() && it->second->owned) {
        ReadAgain(*it->second, true);
      }
      return;
    }
    // Everything in the store that is not in memory is read again; ids the
    // queue already holds are skipped by the load.
    ReadAgain(Queue(r->target_key, nullptr), true);
  } else if (auto* g = std::get_if<GrantInput>(&input)) {
    for (const std::string& key : g->target_keys) {
      TargetQueue& q = Queue(key, nullptr);
      if (!q.owned) {
        q.owned = true;
        ++owned_count_;
      }
      ReadAgain(q, true);
    }
  } else if (auto* v = std::get_if<RevokeInput>(&input)) {
    HandleRevoke(v->target_keys);
    v->done->Notify();
  } else if (auto* u = std::get_if<ValidUntilInput>(&input)) {
    const bool lapsed = leases_valid_until_ <= absl::Now();
    leases_valid_until_ = u->until;
    if (lapsed) {
      for (const auto& [key, q] : queues_) {
        if (q->owned) dirty_.insert(key);
      }
    }
  } else if (auto* w = std::get_if<QueueWork>(&input)) {
    HandleWork(*w);
  }
}

void Dispatcher::ReadAgain(TargetQueue& q, bool reload) {
  q.more_in_store = true;
  if (reload) q.last_loaded_id = 0;
  dirty_.insert(q.key);
}

void Dispatcher::HandleRevoke(const std::vector<std::string>& target_keys) {
  for (const std::string& key : target_keys) {
    auto it = queues_.find(key);
    if (it == queues_.end() || !it->second->owned) continue;
    TargetQueue& q = *it->second;
    q.owned = false;
    --owned_count_;
    // What is in flight stays until answered: its window slot is freed
    // then, and the answer is recorded but not acted on here.
    q.pending.clear();
    q.latest_presence.clear();
    q.more_in_store = false;
    q.last_loaded_id = 0;
    q.blocked_until = absl::InfinitePast();
  }
}

void Dispatcher::HandleWork(const QueueWork& work) {
  if (work.all) {
    for (const auto& [key, q] : queues_) {
      if (q->owned) ReadAgain(*q, !work.reload.empty());
    }
    return;
  }
  for (const auto* keys : {&work.written, &work.reload}) {
    for (const std::string& key : *keys) {
      auto it = queues_.find(key);
      if (it == queues_.end() || !it->second->owned) continue;
      ReadAgain(*it->second, keys == &work.reload);
    }
  }
}

Dispatcher::TargetQueue& Dispatcher::Queue(const std::string& key,
                                           const v1::ChannelRef* target) {
  std::unique_ptr<TargetQueue>& slot = queues_[key];
  if (slot == nullptr) {
    slot = std::make_unique<TargetQueue>();
    slot->key = key;
    slot->owned = !leased_;
    if (slot->owned) ++owned_count_;
  }
  if (target != nullptr && slot->route.empty()) {
    slot->target = *target;
    slot->chat_key = ChannelKey(*target, false);
    slot->route = RouteOf(*target);
  }
  return *slot;
}

void Dispatcher::HandleWritten(std::vector<DeliveryRecord>& deliveries) {
  for (DeliveryRecord& r : deliveries) {
    if (IsParkedQueue(r.target_key)) continue;  // waits for its thread root
    if (leased_) {
      // Read from the store after the cursor (see the class comment).
      auto it = queues_.find(r.target_key);
      if (it != queues_.end() && it->second->owned) {
        ReadAgain(*it->second, false);
      }
      continue;
    }
    TargetQueue& q = Queue(r.target_key, &r.target);
    if (r.id <= q.last_loaded_id) continue;  // already read from the store
    if (q.more_in_store ||
        q.pending.size() >= options_.memory_queue_per_target) {
      q.more_in_store = true;
      continue;
    }
    q.last_loaded_id = r.id;
    std::string key = q.key;
    Enqueue(q, std::move(r));
    dirty_.insert(std::move(key));
  }
}

void Dispatcher::Enqueue(TargetQueue& q, DeliveryRecord record) {
  if (record.event && record.event->has_presence()) {
    int64_t& latest = q.latest_presence[PresenceKey(*record.event)];
    latest = std::max(latest, record.id);
  }
  InsertSorted(q, std::move(record));
}

void Dispatcher::InsertSorted(TargetQueue& q, DeliveryRecord record) {
  if (q.pending.empty() || q.pending.back().id < record.id) {
    q.pending.push_back(std::move(record));
    return;
  }
  auto pos = std::lower_bound(
      q.pending.begin(), q.pending.end(), record.id,
      [](const DeliveryRecord& r, int64_t id) { return r.id < id; });
  if (pos != q.pending.end() && pos->id == record.id) return;
  q.pending.insert(pos, std::move(record));
}

void Dispatcher::LoadMore(TargetQueue& q) {
  int limit = static_cast<int>(options_.memory_queue_per_target) -
              static_cast<int>(q.pending.size());
  if (limit <= 0) return;
  absl::StatusOr<std::vector<DeliveryRecord>> loaded =
      store_->LoadPendingDeliveries(q.key, q.last_loaded_id, limit);
  if (!loaded.ok()) {
    LogError("cannot load queued deliveries",
             {{"target", q.key}, {"error", loaded.status().message()}});
    timers_.emplace(absl::Now() + absl::Seconds(1), q.key);
    return;
  }
  if (static_cast<int>(loaded->size()) < limit) q.more_in_store = false;
  for (DeliveryRecord& r : *loaded) {
    if (q.route.empty()) Queue(q.key, &r.target);
    q.last_loaded_id = std::max(q.last_loaded_id, r.id);
    if (q.in_flight.count(r.id) > 0) continue;
    Enqueue(q, std::move(r));
  }
}

void Dispatcher::Release(uint64_t session_id, const v1::ChannelRef& target) {
  auto it = session_in_flight_.find(session_id);
  if (it == session_in_flight_.end() || it->second == 0) return;
  uint32_t before = it->second--;
  // If the adapter's window was full, its other targets may be waiting.
  auto r = routes_.find(RouteOf(target));
  if (r == routes_.end() || r->second->id() != session_id ||
      before < r->second->window()) {
    return;
  }
  for (const auto& [key, q] : queues_) {
    if (q->pending.empty()) continue;
    auto route = routes_.find(q->route);
    if (route != routes_.end() && route->second->id() == session_id) {
      dirty_.insert(key);
    }
  }
}

void Dispatcher::HandleFinished(std::vector<FinishedDelivery>& finished) {
  for (FinishedDelivery& f : finished) {
    auto qit = queues_.find(f.target_key);
    if (qit == queues_.end()) continue;
    TargetQueue& q = *qit->second;
    DeliveryRecord record;
    auto fit = q.in_flight.find(f.id);
    if (fit != q.in_flight.end()) {
      record = std::move(fit->second.record);
      uint64_t session_id = fit->second.session_id;
      q.in_flight.erase(fit);
      Release(session_id, record.target);
    } else {
      auto pit =
          std::find_if(q.pending.begin(), q.pending.end(),
                       [&](const DeliveryRecord& r) { return r.id == f.id; });
      if (pit == q.pending.end()) continue;  // answered twice; already gone
      record = std::move(*pit);
      q.pending.erase(pit);
    }
    if (!q.owned) continue;  // another router sends the queue now
    dirty_.insert(q.key);
    switch (f.decision.kind) {
      case DeliveryDecision::kCompleted:
      case DeliveryDecision::kDeadLetter:
        break;
      case DeliveryDecision::kRetry:
        record.attempts = f.decision.attempts;
        record.next_attempt_at = f.decision.next_attempt_at;
        record.last_error = f.decision.reason;
        q.blocked_until = std::max(q.blocked_until, f.decision.next_attempt_at);
        timers_.emplace(q.blocked_until, q.key);
        InsertSorted(q, std::move(record));
        break;
      case DeliveryDecision::kResend:
        InsertSorted(q, std::move(record));
        break;
    }
  }
}

void Dispatcher::HandleAttach(std::shared_ptr<AdapterSession> session) {
  session_in_flight_[session->id()] = 0;
  for (const std::string& account : session->hello().accounts()) {
    std::string route = absl::StrCat(session->platform(), "/", account);
    routes_[route] = session;
    for (const auto& [key, q] : queues_) {
      if (q->route == route || q->route.empty()) dirty_.insert(key);
    }
  }
}

void Dispatcher::HandleDetach(const std::shared_ptr<AdapterSession>& session) {
  for (auto it = routes_.begin(); it != routes_.end();) {
    if (it->second == session) {
      routes_.erase(it++);
    } else {
      ++it;
    }
  }
  session_in_flight_.erase(session->id());
  // What it had not answered goes back to its queues, in order.
  for (auto& [key, q] : queues_) {
    for (auto it = q->in_flight.begin(); it != q->in_flight.end();) {
      if (it->second.session_id == session->id()) {
        if (q->owned) InsertSorted(*q, std::move(it->second.record));
        it = q->in_flight.erase(it);
      } else {
        ++it;
      }
    }
    dirty_.insert(key);
  }
}

void Dispatcher::SkipDelivery(TargetQueue& q, const DeliveryRecord& r,
                              absl::string_view why) {
  LogDebug("delivery skipped", {{"target", q.key}, {"reason", why}});
  committer_->Skip(r.id, q.key);
}

bool Dispatcher::Resolve(TargetQueue& q, const DeliveryRecord& r,
                         const AdapterSession& session, v1::Delivery* out) {
  const v1::Event& e = *r.event;
  if (const char* cap = CapabilityFor(e.kind_case());
      cap != nullptr && !session.HasCapability(cap)) {
    SkipDelivery(q, r, absl::StrCat("adapter cannot do ", cap));
    return false;
  }
  if (e.has_presence()) {
    auto it = q.latest_presence.find(PresenceKey(e));
    if (it != q.latest_presence.end() && it->second > r.id) {
      SkipDelivery(q, r, "superseded by a newer presence");
      return false;
    }
    if (it != q.latest_presence.end()) q.latest_presence.erase(it);
  }
  const std::string origin_chat = ChannelKey(e.channel(), false);
  // The target's native ids of the message `native_id` of the origin chat.
  auto translate =
      [&](const std::string& native_id) -> std::vector<std::string> {
    auto loc = store_->FindMessage(origin_chat, native_id);
    if (!loc.ok() || !loc->has_value()) return {};
    auto ids = store_->FindMessagesInChannel((*loc)->group_id, q.chat_key);
    return ids.ok() ? *ids : std::vector<std::string>{};
  };

  out->set_id(static_cast<uint64_t>(r.id));
  *out->mutable_target() = r.target;
  *out->mutable_event() = e;
  out->set_link(r.link);
  out->set_sender_name(r.sender_name);
  out->set_idempotency_key(absl::StrCat(router_id_, ":", r.id));
  out->set_attempt(static_cast<uint32_t>(r.attempts + 1));

  if (e.has_edited() || e.has_deleted()) {
    std::vector<std::string> ids = translate(
        e.has_edited() ? e.edited().message_id() : e.deleted().message_id());
    if (ids.empty()) {
      SkipDelivery(q, r, "no copy of the message in this target");
      return false;
    }
    for (std::string& id : ids) out->add_target_message_ids(std::move(id));
  }
  if (e.has_posted()) {
    if (!e.posted().reply_to_message_id().empty()) {
      std::vector<std::string> ids =
          translate(e.posted().reply_to_message_id());
      if (!ids.empty()) out->set_reply_to_target_id(ids.front());
    }
    if (!e.posted().thread_root_id().empty()) {
      std::vector<std::string> ids = translate(e.posted().thread_root_id());
      if (!ids.empty()) out->set_thread_root_target_id(ids.front());
    }
    std::shared_ptr<const LinkTable> links = links_->Get();
    const v1::LinkMember* member = links->FindMember(r.link, q.key);
    if (member != nullptr && member->options().has_files() &&
        !member->options().files()) {
      for (v1::Attachment& a :
           *out->mutable_event()->mutable_posted()->mutable_attachments()) {
        a.clear_blob_id();
        a.set_unavailable_reason("files are not relayed to this chat");
      }
    }
    FitToTarget(
        {session.HasCapability("files"), session.HasCapability("threads")},
        out);
  }
  return true;
}

void Dispatcher::Pump(TargetQueue& q, absl::Time now) {
  // With leases, a queue is sent only by its holder, while the lease holds.
  if (!q.owned || (leased_ && now >= leases_valid_until_)) return;
  if (q.pending.empty() && q.more_in_store) LoadMore(q);
  if (q.pending.empty()) return;
  auto route = routes_.find(q.route);
  if (route == routes_.end()) return;  // not attached: keep the queue
  std::shared_ptr<AdapterSession> session = route->second;
  if (q.blocked_until > now) {
    timers_.emplace(q.blocked_until, q.key);
    return;
  }
  uint32_t& in_flight = session_in_flight_[session->id()];
  google::protobuf::RepeatedPtrField<v1::Delivery> batch;
  std::vector<SentDelivery> sent;
  if (in_flight < session->window()) {
    const size_t queued =
        q.more_in_store ? std::max<size_t>(q.pending.size(),
                                           options_.memory_queue_per_target)
                        : q.pending.size();
    sent.reserve(std::min<size_t>(session->window() - in_flight, queued));
  }
  while (in_flight < session->window()) {
    if (q.pending.empty()) {
      if (!q.more_in_store) break;
      LoadMore(q);
      if (q.pending.empty()) break;
    }
    DeliveryRecord& r = q.pending.front();
    if (r.next_attempt_at > now) {
      q.blocked_until = r.next_attempt_at;
      timers_.emplace(q.blocked_until, q.key);
      break;
    }
    if (NeedsBarrier(*r.event) && !q.in_flight.empty()) break;
    v1::Delivery* delivery = batch.Add();
    if (!Resolve(q, r, *session, delivery)) {
      batch.RemoveLast();
      q.pending.pop_front();
      continue;
    }
    SentDelivery s;
    s.id = r.id;
    s.event_id = r.event_id;
    s.target_key = q.key;
    s.target_chat_key = q.chat_key;
    s.previous_attempts = r.attempts;
    s.created_at = r.created_at;
    s.records_copies = r.event->has_posted();
    s.link = r.link;
    s.event_key = r.event->key();
    sent.push_back(std::move(s));
    int64_t id = r.id;
    q.in_flight.emplace(id, InFlight{std::move(r), session->id()});
    q.pending.pop_front();
    ++in_flight;
  }
  if (!batch.empty()) session->Send(std::move(batch), std::move(sent));
}

}  // namespace imbridge::bridge
