#include "bridge/queue_leases.h"

#include <unistd.h>

#include <algorithm>
#include <functional>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "bridge/postgres_connection.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "common/utf8.h"
#include "nlohmann/json.hpp"

namespace imbridge::bridge {
namespace {

using pg::Connection;
using pg::Params;
using pg::Rows;

// The most a lease statement may take before the connection is given up
// (and remade at the next round).
constexpr absl::Duration kStatementTimeout = absl::Seconds(1);
// NOTIFY payloads must stay below 8000 bytes.
constexpr size_t kMaxPayload = 7000;
// Rounds between removals of long-expired rows.
constexpr int kCleanupEvery = 120;

// "now() + ttl" in SQL, with the ttl in milliseconds as parameter $2.
#define IMB_EXPIRY "now() + make_interval(secs => $2::bigint / 1000.0)"

}  // namespace

std::string QueueWorkPayload(const QueueWork& work) {
  nlohmann::json j;
  // JSON holds UTF-8 only: a key that is not (the store does not forbid it)
  // makes it "every queue" rather than a wrong name.
  auto valid = [](const std::vector<std::string>& keys) {
    return std::all_of(keys.begin(), keys.end(),
                       [](const std::string& key) { return IsValidUtf8(key); });
  };
  if (!work.all && valid(work.written) && valid(work.reload)) {
    j["n"] = work.written;
    j["r"] = work.reload;
    std::string payload = j.dump();
    if (payload.size() <= kMaxPayload) return payload;
    j = nlohmann::json();
  }
  j["all"] = true;
  j["reload"] = !work.reload.empty();
  return j.dump();
}

QueueWork ParseQueueWork(absl::string_view payload) {
  QueueWork work;
  nlohmann::json j = nlohmann::json::parse(payload, nullptr, false);
  auto strings = [](const nlohmann::json& list,
                    std::vector<std::string>& out) -> bool {
    if (!list.is_array()) return false;
    for (const nlohmann::json& key : list) {
      if (!key.is_string()) return false;
      out.push_back(key.get<std::string>());
    }
    return true;
  };
  if (j.is_object() && j.value("all", false) == false &&
      strings(j.value("n", nlohmann::json::array()), work.written) &&
      strings(j.value("r", nlohmann::json::array()), work.reload)) {
    return work;
  }
  QueueWork all;
  all.all = true;
  // {"all":true,"reload":false} asks only for new deliveries; anything
  // unreadable is read again from the start.
  if (!(j.is_object() && j.value("all", false) == true &&
        j.value("reload", true) == false)) {
    all.reload.push_back("*");
  }
  return all;
}

class QueueLeases::Impl {
 public:
  Impl(const PostgresStoreOptions& store, const Options* options,
       QueueLeaseListener* listener)
      : store_(store), options_(options), listener_(listener) {}

  absl::Status Tick();
  absl::Status ReleaseAll();
  // Waits up to `timeout` for notifications and hands them on.
  void WaitForWork(absl::Duration timeout);

  std::vector<std::string> owned() const {
    absl::MutexLock lock(&mu_);
    return std::vector<std::string>(owned_.begin(), owned_.end());
  }

  absl::StatusOr<std::map<std::string, std::string>> Holders() {
    absl::MutexLock lock(&read_mu_);
    IMB_ASSIGN_OR_RETURN(
        Rows rows, reader_.ExecWithin("SELECT target_key, holder FROM "
                                      "queue_leases WHERE expires_at > now()",
                                      Params(), kStatementTimeout));
    std::map<std::string, std::string> holders;
    for (int i = 0; i < rows.size(); ++i) {
      holders[rows.Text(i, 0)] = rows.Text(i, 1);
    }
    return holders;
  }

 private:
  absl::Status Round();
  // Revokes every held queue (locally only).
  void RevokeAll();
  void HandOn(absl::StatusOr<std::vector<Connection::Notification>> arrived);
  absl::StatusOr<Rows> Exec(const char* sql, const Params& params) {
    return conn_.ExecWithin(sql, params, kStatementTimeout);
  }
  Params Me() const {
    Params p;
    p.Text(options_->router_name).Int(absl::ToInt64Milliseconds(options_->ttl));
    return p;
  }

  const PostgresStoreOptions store_;
  const Options* const options_;
  QueueLeaseListener* const listener_;
  Connection conn_{&store_, {}};
  int rounds_ = 0;
  // When the leases held stop being valid (this router's clock).
  absl::Time valid_until_ = absl::InfinitePast();

  // For Holders().
  absl::Mutex read_mu_;
  Connection reader_ ABSL_GUARDED_BY(read_mu_){&store_, {}};

  mutable absl::Mutex mu_;
  // Written by the round's thread only; read by owned().
  absl::btree_set<std::string> owned_ ABSL_GUARDED_BY(mu_);
};

void QueueLeases::Impl::RevokeAll() {
  std::vector<std::string> all = owned();
  if (all.empty()) return;
  listener_->OnQueuesRevoked(all);
  absl::MutexLock lock(&mu_);
  owned_.clear();
}

absl::Status QueueLeases::Impl::Tick() {
  absl::Status status = Round();
  if (!status.ok() && absl::Now() >= valid_until_) {
    // Unrenewed leases expire on the server by themselves.
    RevokeAll();
  }
  if (status.ok()) HandOn(conn_.TakeNotifications());
  return status;
}

absl::Status QueueLeases::Impl::Round() {
  if (conn_.get() == nullptr || PQstatus(conn_.get()) != CONNECTION_OK) {
    for (const char* channel : {kQueueWorkChannel, kRecordsChannel}) {
      IMB_RETURN_IF_ERROR(
          Exec(absl::StrCat("LISTEN ", channel).c_str(), Params()).status());
    }
    // Notifications sent while nobody listened are gone: read the records
    // and every held queue again.
    if (options_->records_changed) options_->records_changed();
    if (!owned().empty()) {
      QueueWork all;
      all.all = true;
      all.reload.push_back("*");
      listener_->OnQueueWork(all);
    }
  }
  // 1. This router is alive; its unexpired leases are renewed.
  const absl::Time sent = absl::Now();
  IMB_ASSIGN_OR_RETURN(
      Rows renewed,
      Exec("WITH me AS (INSERT INTO routers(name, started_at, expires_at)"
           " VALUES ($1, now(), " IMB_EXPIRY ") ON CONFLICT (name) DO UPDATE"
           " SET expires_at = excluded.expires_at)"
           " UPDATE queue_leases SET expires_at = " IMB_EXPIRY
           " WHERE holder = $1 AND expires_at > now() RETURNING target_key",
           Me()));
  absl::btree_set<std::string> held;
  for (int i = 0; i < renewed.size(); ++i) held.insert(renewed.Text(i, 0));
  std::vector<std::string> lost;
  {
    absl::MutexLock lock(&mu_);
    for (const std::string& key : owned_) {
      if (held.count(key) == 0) lost.push_back(key);
    }
    owned_ = held;
  }
  if (!lost.empty()) {
    LogWarn("queue leases lost (expired before renewal)",
            {{"router", options_->router_name},
             {"queues", std::to_string(lost.size())}});
    listener_->OnQueuesRevoked(lost);
  }
  valid_until_ = sent + options_->ttl;
  listener_->OnLeasesValidUntil(valid_until_);

  // 2. The queues, who holds each, and how many routers live.
  std::vector<std::string> known = options_->known_queues
                                       ? options_->known_queues()
                                       : std::vector<std::string>();
  std::vector<absl::string_view> known_views(known.begin(), known.end());
  IMB_ASSIGN_OR_RETURN(
      Rows state,
      Exec("WITH RECURSIVE pending(key) AS ("
           " SELECT (SELECT min(target_key) FROM deliveries WHERE state = 0)"
           " UNION ALL"
           " SELECT (SELECT min(target_key) FROM deliveries"
           "  WHERE state = 0 AND target_key > p.key)"
           " FROM pending p WHERE p.key IS NOT NULL),"
           " queues(key) AS ("
           " SELECT key FROM pending WHERE key IS NOT NULL"
           " UNION SELECT unnest($1::text[]) COLLATE \"C\")"
           " SELECT q.key, (SELECT l.holder FROM queue_leases l"
           "  WHERE l.target_key = q.key AND l.expires_at > now()),"
           " (SELECT count(*) FROM routers WHERE expires_at > now())"
           " FROM queues q",
           Params().TextArray(known_views)));
  absl::btree_set<std::string> queues;
  std::vector<std::string> free;
  int64_t live = 1;
  for (int i = 0; i < state.size(); ++i) {
    std::string key = state.Text(i, 0);
    if (options_->dispatchable && !options_->dispatchable(key)) continue;
    live = std::max<int64_t>(live, state.Int(i, 2));
    if (state.IsNull(i, 1)) free.push_back(key);
    queues.insert(std::move(key));
  }
  const int64_t quota = (static_cast<int64_t>(queues.size()) + live - 1) / live;

  // 3. Give back what is no queue any more and the surplus; or claim.
  std::vector<std::string> give_back;
  std::vector<std::string> kept;
  for (const std::string& key : held) {
    (queues.count(key) > 0 ? kept : give_back).push_back(key);
  }
  while (static_cast<int64_t>(kept.size()) > quota) {
    give_back.push_back(std::move(kept.back()));
    kept.pop_back();
  }
  if (!give_back.empty()) {
    // Stopped first: the lease is free only once nothing is sent.
    listener_->OnQueuesRevoked(give_back);
    {
      absl::MutexLock lock(&mu_);
      for (const std::string& key : give_back) owned_.erase(key);
    }
    std::vector<absl::string_view> views(give_back.begin(), give_back.end());
    IMB_RETURN_IF_ERROR(
        Exec("DELETE FROM queue_leases WHERE holder = $1"
             " AND target_key = ANY($2::text[])",
             Params().Text(options_->router_name).TextArray(views))
            .status());
  }
  const int64_t want = quota - static_cast<int64_t>(kept.size());
  if (want > 0 && !free.empty()) {
    // Routers try the free queues in orders of their own, so that two
    // claiming at once mostly do not collide.
    const std::string& me = options_->router_name;
    std::sort(free.begin(), free.end(),
              [&me](const std::string& a, const std::string& b) {
                std::hash<std::string> h;
                return h(me + a) < h(me + b);
              });
    if (static_cast<int64_t>(free.size()) > want) free.resize(want);
    std::vector<absl::string_view> views(free.begin(), free.end());
    IMB_ASSIGN_OR_RETURN(
        Rows claimed,
        Exec("INSERT INTO queue_leases(target_key, holder, expires_at)"
             " SELECT k, $1, " IMB_EXPIRY " FROM unnest($3::text[]) k"
             " ON CONFLICT (target_key) DO UPDATE"
             " SET holder = excluded.holder, expires_at = excluded.expires_at"
             " WHERE queue_leases.expires_at <= now()"
             " RETURNING target_key",
             Me().TextArray(views)));
    std::vector<std::string> granted;
    for (int i = 0; i < claimed.size(); ++i) {
      granted.push_back(claimed.Text(i, 0));
    }
    if (!granted.empty()) {
      {
        absl::MutexLock lock(&mu_);
        owned_.insert(granted.begin(), granted.end());
      }
      listener_->OnQueuesGranted(std::move(granted));
    }
  }
  if (++rounds_ % kCleanupEvery == 0) {
    IMB_RETURN_IF_ERROR(
        Exec("WITH l AS (DELETE FROM queue_leases"
             " WHERE expires_at < now() - interval '1 minute')"
             " DELETE FROM routers WHERE expires_at < now() - interval "
             "'1 minute'",
             Params())
            .status());
  }
  return absl::OkStatus();
}

absl::Status QueueLeases::Impl::ReleaseAll() {
  RevokeAll();
  valid_until_ = absl::InfinitePast();
  return Exec(
             "WITH l AS (DELETE FROM queue_leases WHERE holder = $1)"
             " DELETE FROM routers WHERE name = $1",
             Params().Text(options_->router_name))
      .status();
}

void QueueLeases::Impl::HandOn(
    absl::StatusOr<std::vector<Connection::Notification>> arrived) {
  if (!arrived.ok()) return;
  bool records = false;
  for (const Connection::Notification& n : *arrived) {
    if (n.channel == kQueueWorkChannel) {
      listener_->OnQueueWork(ParseQueueWork(n.payload));
    } else if (n.channel == kRecordsChannel) {
      records = true;
    }
  }
  // One reading of the records covers every change that arrived.
  if (records && options_->records_changed) options_->records_changed();
}

void QueueLeases::Impl::WaitForWork(absl::Duration timeout) {
  if (conn_.get() == nullptr || PQsocket(conn_.get()) < 0) {
    absl::SleepFor(timeout);
    return;
  }
  pollfd fd{PQsocket(conn_.get()), POLLIN, 0};
  const int ms = static_cast<int>(absl::ToInt64Milliseconds(timeout));
  if (poll(&fd, 1, std::max(ms, 1)) > 0) {
    HandOn(conn_.TakeNotifications());
  }
}

absl::StatusOr<std::unique_ptr<QueueLeases>> QueueLeases::Open(
    const PostgresStoreOptions& store, Options options,
    QueueLeaseListener* listener) {
  if (options.router_name.empty()) {
    return absl::InvalidArgumentError("queue leases: the router has no name");
  }
  if (options.ttl <= options.renew_every) {
    return absl::InvalidArgumentError(
        "queue leases: the ttl must be longer than the renewal interval");
  }
  auto leases = std::unique_ptr<QueueLeases>(
      new QueueLeases(std::move(options), nullptr));
  leases->impl_ = std::make_unique<Impl>(store, &leases->options_, listener);
  return leases;
}

QueueLeases::QueueLeases(Options options, std::unique_ptr<Impl> impl)
    : options_(std::move(options)), impl_(std::move(impl)) {}

QueueLeases::~QueueLeases() { Stop(); }

void QueueLeases::Start() {
  thread_ = std::thread([this] { Run(); });
}

void QueueLeases::Run() {
  bool failing = false;
  while (!stopping_.load()) {
    const absl::Time next = absl::Now() + options_.renew_every;
    absl::Status status = impl_->Tick();
    if (!status.ok() && !failing) {
      LogWarn("queue leases cannot be renewed",
              {{"router", options_.router_name}, {"error", status.message()}});
    } else if (status.ok() && failing) {
      LogInfo("queue leases renewed again", {{"router", options_.router_name}});
    }
    failing = !status.ok();
    for (absl::Time now = absl::Now(); now < next && !stopping_.load();
         now = absl::Now()) {
      impl_->WaitForWork(std::min(next - now, absl::Milliseconds(100)));
    }
  }
}

void QueueLeases::Stop() {
  if (!thread_.joinable()) return;
  stopping_.store(true);
  thread_.join();
  if (absl::Status s = impl_->ReleaseAll(); !s.ok()) {
    LogWarn("queue leases not given back (they expire)",
            {{"router", options_.router_name}, {"error", s.message()}});
  }
}

absl::Status QueueLeases::Tick() { return impl_->Tick(); }

absl::Status QueueLeases::ReleaseAll() { return impl_->ReleaseAll(); }

std::vector<std::string> QueueLeases::owned() const { return impl_->owned(); }

absl::StatusOr<std::map<std::string, std::string>> QueueLeases::Holders() {
  return impl_->Holders();
}

std::string MakeRouterInstanceName() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  absl::BitGen gen;
  return absl::StrFormat("%s:%d:%08x", host, static_cast<int>(getpid()),
                         absl::Uniform<uint32_t>(gen));
}

#undef IMB_EXPIRY

}  // namespace imbridge::bridge
