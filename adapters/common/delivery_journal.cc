#include "adapters/common/delivery_journal.h"

// Schema (user_version 2):
//   deliveries(key, target, created_at, updated_at, completed)
//   steps(key, step, intent_at, done, failed, native_ids)
//                                                  native_ids: a JSON array
//   state(name, value, delivery)                   named adapter state;
//                                                  delivery: the key it
//                                                  belongs to, or NULL
// Version 1 had no state.delivery: opening one adds the column.
// Times are Unix milliseconds.

#include <sqlite3.h>

#include <filesystem>
#include <initializer_list>
#include <system_error>
#include <utility>
#include <variant>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace imbridge::adapters {
namespace {

constexpr int kSchemaVersion = 2;
constexpr uint64_t kPruneEvery = 256;

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS deliveries (
  key TEXT PRIMARY KEY,
  target TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  completed INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deliveries_by_age
  ON deliveries(completed, updated_at);
CREATE INDEX IF NOT EXISTS deliveries_by_target ON deliveries(target);
CREATE TABLE IF NOT EXISTS steps (
  key TEXT NOT NULL,
  step INTEGER NOT NULL,
  intent_at INTEGER NOT NULL,
  done INTEGER NOT NULL,
  failed INTEGER NOT NULL,
  native_ids TEXT NOT NULL,
  PRIMARY KEY (key, step)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS state (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  delivery TEXT
) WITHOUT ROWID;
)sql";

// From version 1 (its state had no delivery column).
constexpr char kUpgradeFrom1[] = R"sql(
ALTER TABLE state ADD COLUMN delivery TEXT;
PRAGMA user_version = 2;
)sql";

// A bound parameter: an integer or a text.
using Param = std::variant<int64_t, absl::string_view>;

int64_t Millis(absl::Time t) { return absl::ToUnixMillis(t); }

}  // namespace

// The SQLite connection and its one-statement helper.
class DeliveryJournal::Db {
 public:
  Db(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}
  ~Db() { sqlite3_close_v2(db_); }

  // Runs `sql` with `params`, calling `row` for each result row.
  absl::Status Exec(const char* sql, std::initializer_list<Param> params = {},
                    const std::function<void(sqlite3_stmt*)>& row = nullptr) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr);
    if (rc != SQLITE_OK) return Error(rc, sql);
    int i = 0;
    for (const Param& p : params) {
      ++i;
      if (const int64_t* n = std::get_if<int64_t>(&p)) {
        rc = sqlite3_bind_int64(stmt, i, *n);
      } else {
        absl::string_view s = std::get<absl::string_view>(p);
        rc = sqlite3_bind_text64(stmt, i, s.data() ? s.data() : "", s.size(),
                                 SQLITE_TRANSIENT, SQLITE_UTF8);
      }
      if (rc != SQLITE_OK) break;
    }
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
      rc = sqlite3_step(stmt);
      if (rc == SQLITE_ROW && row) row(stmt);
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) return Error(rc, sql);
    return absl::OkStatus();
  }

  // Runs several statements without parameters.
  absl::Status ExecScript(const char* sql) {
    char* error = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &error);
    sqlite3_free(error);
    if (rc != SQLITE_OK) return Error(rc, "schema");
    return absl::OkStatus();
  }

  // Runs `body` in one write transaction.
  absl::Status Transaction(const std::function<absl::Status()>& body) {
    IMB_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    absl::Status status = body();
    if (status.ok()) status = Exec("COMMIT");
    if (!status.ok()) Exec("ROLLBACK").IgnoreError();
    return status;
  }

  absl::Status Error(int rc, absl::string_view what) {
    std::string where = path_.empty() ? "in memory" : path_;
    std::string message = absl::StrCat("delivery journal ", where, ": ",
                                       sqlite3_errmsg(db_), " (", what, ")");
    const int primary = rc & 0xff;
    if (primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT) {
      return absl::DataLossError(absl::StrCat(
          message,
          "; move the file away to start with an empty journal (deliveries "
          "in flight at the last stop may then be repeated)"));
    }
    // A full disk, a lock or an I/O error may pass: the delivery is retried.
    // The journal is one process's, so anything else is a bug or damage.
    return primary == SQLITE_INTERNAL || primary == SQLITE_MISUSE ||
                   primary == SQLITE_ERROR || primary == SQLITE_SCHEMA
               ? absl::InternalError(message)
               : absl::UnavailableError(message);
  }

 private:
  const std::string path_;
  sqlite3* const db_;
};

size_t DeliveryJournal::Record::DoneSteps() const {
  size_t n = 0;
  while (n < steps.size() && steps[n].done) ++n;
  return n;
}

std::vector<std::string> DeliveryJournal::Record::NativeIds() const {
  std::vector<std::string> ids;
  for (size_t i = 0; i < DoneSteps(); ++i) {
    ids.insert(ids.end(), steps[i].native_ids.begin(),
               steps[i].native_ids.end());
  }
  return ids;
}

absl::StatusOr<std::unique_ptr<DeliveryJournal>> DeliveryJournal::Open(
    Options options) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(
      options.path.empty() ? ":memory:" : options.path.c_str(), &raw,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
      nullptr);
  auto db = std::make_unique<Db>(options.path, raw);
  if (rc != SQLITE_OK) return db->Error(rc, "opening");
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, 5000);
  if (!options.path.empty()) {
    IMB_RETURN_IF_ERROR(db->Exec("PRAGMA journal_mode=WAL"));
    IMB_RETURN_IF_ERROR(db->Exec("PRAGMA synchronous=FULL"));
  }
  int64_t version = 0;
  int64_t tables = 0;
  IMB_RETURN_IF_ERROR(db->Exec("PRAGMA user_version", {}, [&](sqlite3_stmt* s) {
    version = sqlite3_column_int64(s, 0);
  }));
  IMB_RETURN_IF_ERROR(
      db->Exec("SELECT count(*) FROM sqlite_master", {},
               [&](sqlite3_stmt* s) { tables = sqlite3_column_int64(s, 0); }));
  if (version > kSchemaVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("delivery journal ", options.path,
                     ": made by a newer imbridge (schema version ", version,
                     ", this build knows ", kSchemaVersion, ")"));
  }
  if (version == 0 && tables > 0) {
    return absl::DataLossError(absl::StrCat(
        "delivery journal ", options.path,
        ": the file is an SQLite database but not a delivery journal; move "
        "it away or point state_dir elsewhere"));
  }
  if (version == 0) {
    IMB_RETURN_IF_ERROR(db->Transaction([&]() -> absl::Status {
      IMB_RETURN_IF_ERROR(db->ExecScript(kSchema));
      return db->ExecScript(
          absl::StrCat("PRAGMA user_version = ", kSchemaVersion).c_str());
    }));
  } else if (version == 1) {
    IMB_RETURN_IF_ERROR(db->Transaction(
        [&]() -> absl::Status { return db->ExecScript(kUpgradeFrom1); }));
  }
  return std::unique_ptr<DeliveryJournal>(
      new DeliveryJournal(std::move(options), std::move(db)));
}

absl::StatusOr<std::unique_ptr<DeliveryJournal>>
DeliveryJournal::OpenInStateDir(const std::string& state_dir, Options options) {
  if (state_dir.empty()) {
    LogWarn(
        "no state_dir configured: the delivery journal is kept in memory, so "
        "deliveries in flight when the adapter dies may be repeated or lost "
        "after a restart");
    options.path.clear();
    return Open(std::move(options));
  }
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat(
        "state_dir ", state_dir, ": cannot create: ", ec.message()));
  }
  options.path = (std::filesystem::path(state_dir) / kFileName).string();
  return Open(std::move(options));
}

absl::StatusOr<std::unique_ptr<DeliveryJournal>>
DeliveryJournal::OpenInStateDir(const std::string& state_dir) {
  return OpenInStateDir(state_dir, Options());
}

DeliveryJournal::DeliveryJournal(Options options, std::unique_ptr<Db> db)
    : options_(std::move(options)), db_(std::move(db)) {
  absl::MutexLock lock(&mu_);
  auto pruned = PruneLocked(absl::Now());
  if (!pruned.ok()) {
    LogWarn("delivery journal: pruning failed",
            {{"error", pruned.status().ToString()}});
  }
}

DeliveryJournal::~DeliveryJournal() = default;

absl::StatusOr<DeliveryJournal::Record> DeliveryJournal::Find(
    absl::string_view key) {
  absl::MutexLock lock(&mu_);
  Record record;
  IMB_RETURN_IF_ERROR(
      db_->Exec("SELECT completed FROM deliveries WHERE key = ?", {key},
                [&](sqlite3_stmt* s) {
                  record.completed = sqlite3_column_int64(s, 0) != 0;
                }));
  absl::Status parse;
  IMB_RETURN_IF_ERROR(db_->Exec(
      "SELECT step, intent_at, done, failed, native_ids FROM steps WHERE "
      "key = ? "
      "ORDER BY step",
      {key}, [&](sqlite3_stmt* s) {
        size_t step = static_cast<size_t>(sqlite3_column_int64(s, 0));
        if (step >= record.steps.size()) record.steps.resize(step + 1);
        Step& out = record.steps[step];
        out.intent_at = absl::FromUnixMillis(sqlite3_column_int64(s, 1));
        out.done = sqlite3_column_int64(s, 2) != 0;
        out.failed = sqlite3_column_int64(s, 3) != 0;
        const char* text =
            reinterpret_cast<const char*>(sqlite3_column_text(s, 4));
        nlohmann::json ids = nlohmann::json::parse(
            text != nullptr ? text : "", nullptr, /*allow_exceptions=*/false);
        if (!ids.is_array()) {
          parse = absl::DataLossError(
              absl::StrCat("delivery journal ", options_.path, ": step ", step,
                           " of ", key, " has unreadable native ids"));
          return;
        }
        for (const auto& id : ids) {
          if (id.is_string()) out.native_ids.push_back(id.get<std::string>());
        }
      }));
  IMB_RETURN_IF_ERROR(parse);
  return record;
}

absl::StatusOr<bool> DeliveryJournal::HasNativeId(absl::string_view target,
                                                  absl::string_view native_id) {
  absl::MutexLock lock(&mu_);
  bool found = false;
  IMB_RETURN_IF_ERROR(db_->Exec(
      "SELECT 1 FROM deliveries d JOIN steps s ON s.key = d.key, "
      "json_each(s.native_ids) j WHERE d.target = ? AND j.value = ? LIMIT 1",
      {target, native_id}, [&](sqlite3_stmt*) { found = true; }));
  return found;
}

absl::Status DeliveryJournal::RecordIntent(absl::string_view key,
                                           absl::string_view target,
                                           size_t step) {
  absl::MutexLock lock(&mu_);
  int64_t now = Millis(absl::Now());
  return db_->Transaction(
      [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
        IMB_RETURN_IF_ERROR(db_->Exec(
            "INSERT INTO deliveries(key, target, created_at, updated_at, "
            "completed) VALUES(?, ?, ?, ?, 0) ON CONFLICT(key) DO UPDATE SET "
            "updated_at = excluded.updated_at",
            {key, target, now, now}));
        return db_->Exec(
            "INSERT INTO steps(key, step, intent_at, done, failed, native_ids) "
            "VALUES(?, ?, ?, 0, 0, '[]') ON CONFLICT(key, step) DO UPDATE SET "
            "failed = 0",
            {key, static_cast<int64_t>(step), now});
      });
}

absl::Status DeliveryJournal::RecordResult(
    absl::string_view key, size_t step,
    const std::vector<std::string>& native_ids) {
  return RecordResult(key, step, native_ids, /*completes=*/false);
}

absl::Status DeliveryJournal::RecordResult(
    absl::string_view key, size_t step,
    const std::vector<std::string>& native_ids, bool completes) {
  std::string ids = nlohmann::json(native_ids).dump();
  absl::MutexLock lock(&mu_);
  int64_t now = Millis(absl::Now());
  IMB_RETURN_IF_ERROR(db_->Transaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(
                                           mu_) -> absl::Status {
    IMB_RETURN_IF_ERROR(db_->Exec(
        "UPDATE deliveries SET updated_at = ?, completed = ? WHERE key = ?",
        {now, int64_t{completes}, key}));
    return db_->Exec(
        "INSERT INTO steps(key, step, intent_at, done, failed, native_ids) "
        "VALUES(?, ?, ?, 1, 0, ?) ON CONFLICT(key, step) DO UPDATE SET done = "
        "1, failed = 0, native_ids = excluded.native_ids",
        {key, static_cast<int64_t>(step), now, ids});
  }));
  if (completes) CountCompletionLocked();
  return absl::OkStatus();
}

void DeliveryJournal::CountCompletionLocked() {
  if (++completions_since_prune_ < kPruneEvery) return;
  auto pruned = PruneLocked(absl::Now());
  if (!pruned.ok()) {
    LogWarn("delivery journal: pruning failed",
            {{"error", pruned.status().ToString()}});
  }
}

absl::Status DeliveryJournal::RecordFailure(absl::string_view key,
                                            size_t step) {
  absl::MutexLock lock(&mu_);
  return db_->Exec(
      "UPDATE steps SET failed = 1 WHERE key = ? AND step = ? AND done = 0",
      {key, static_cast<int64_t>(step)});
}

absl::Status DeliveryJournal::MarkCompleted(absl::string_view key) {
  absl::MutexLock lock(&mu_);
  IMB_RETURN_IF_ERROR(db_->Exec(
      "UPDATE deliveries SET completed = 1, updated_at = ? WHERE key = ?",
      {Millis(absl::Now()), key}));
  CountCompletionLocked();
  return absl::OkStatus();
}

absl::StatusOr<size_t> DeliveryJournal::Prune(absl::Time now) {
  absl::MutexLock lock(&mu_);
  return PruneLocked(now);
}

absl::StatusOr<size_t> DeliveryJournal::PruneLocked(absl::Time now) {
  completions_since_prune_ = 0;
  size_t removed = 0;
  int64_t cutoff = Millis(now - options_.retention);
  IMB_RETURN_IF_ERROR(db_->Transaction(
      [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
        // The oldest completed deliveries beyond the count bound, and every
        // delivery untouched for longer than the retention.
        IMB_RETURN_IF_ERROR(db_->Exec(
            "CREATE TEMP TABLE IF NOT EXISTS doomed(key TEXT PRIMARY KEY)"));
        IMB_RETURN_IF_ERROR(db_->Exec("DELETE FROM doomed"));
        IMB_RETURN_IF_ERROR(db_->Exec(
            "INSERT OR IGNORE INTO doomed SELECT key FROM deliveries WHERE "
            "updated_at < ?",
            {cutoff}));
        IMB_RETURN_IF_ERROR(db_->Exec(
            "INSERT OR IGNORE INTO doomed SELECT key FROM deliveries WHERE "
            "completed = 1 ORDER BY updated_at DESC LIMIT -1 OFFSET ?",
            {static_cast<int64_t>(options_.max_deliveries)}));
        IMB_RETURN_IF_ERROR(
            db_->Exec("SELECT count(*) FROM doomed", {}, [&](sqlite3_stmt* s) {
              removed = static_cast<size_t>(sqlite3_column_int64(s, 0));
            }));
        IMB_RETURN_IF_ERROR(db_->Exec(
            "DELETE FROM steps WHERE key IN (SELECT key FROM doomed)"));
        IMB_RETURN_IF_ERROR(db_->Exec(
            "DELETE FROM deliveries WHERE key IN (SELECT key FROM doomed)"));
        // Delivery state values go with their delivery's record.
        return db_->Exec(
            "DELETE FROM state WHERE delivery IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM deliveries d WHERE d.key = state.delivery)");
      }));
  return removed;
}

absl::StatusOr<std::vector<std::string>> DeliveryJournal::Run(
    absl::string_view key, absl::string_view target,
    const std::vector<StepCall>& steps, const Reconciler& reconcile) {
  std::vector<std::string> ids;
  if (key.empty()) {
    for (const StepCall& call : steps) {
      IMB_ASSIGN_OR_RETURN(std::vector<std::string> created, call());
      ids.insert(ids.end(), created.begin(), created.end());
    }
    return ids;
  }
  auto journaled = [](const absl::Status& s) {
    return absl::UnavailableError(s.message());
  };
  auto record = Find(key);
  if (!record.ok()) return journaled(record.status());
  if (record->completed) return record->NativeIds();
  const size_t done = record->DoneSteps();
  ids = record->NativeIds();
  for (size_t i = done; i < steps.size(); ++i) {
    std::optional<std::vector<std::string>> created;
    if (i < record->steps.size() && !record->steps[i].done &&
        !record->steps[i].failed && reconcile) {
      // An intent without a result: the adapter stopped during the call.
      IMB_ASSIGN_OR_RETURN(created, reconcile(i, record->steps[i]));
      if (created.has_value()) {
        LogInfo("delivery journal: reconciled a step left open",
                {{"key", std::string(key)},
                 {"step", absl::StrCat(i)},
                 {"native_ids", absl::StrCat(created->size())}});
      }
    }
    if (!created.has_value()) {
      absl::Status s = RecordIntent(key, target, i);
      if (!s.ok()) return journaled(s);
      absl::StatusOr<std::vector<std::string>> call = steps[i]();
      if (!call.ok()) {
        absl::Status s = RecordFailure(key, i);
        if (!s.ok()) {
          LogWarn("delivery journal: cannot record a failed step",
                  {{"key", std::string(key)}, {"error", s.ToString()}});
        }
        return call.status();
      }
      created = std::move(*call);
    }
    // The last step's result and the completion are one commit.
    absl::Status s =
        RecordResult(key, i, *created, /*completes=*/i + 1 == steps.size());
    if (!s.ok()) return journaled(s);
    ids.insert(ids.end(), created->begin(), created->end());
  }
  if (done >= steps.size()) {
    // Every step was done before (the last attempt died before completing).
    absl::Status s = MarkCompleted(key);
    if (!s.ok()) return journaled(s);
  }
  return ids;
}

absl::StatusOr<std::optional<std::string>> DeliveryJournal::GetState(
    absl::string_view name) {
  absl::MutexLock lock(&mu_);
  std::optional<std::string> value;
  IMB_RETURN_IF_ERROR(db_->Exec(
      "SELECT value FROM state WHERE name = ?", {name}, [&](sqlite3_stmt* s) {
        value.emplace(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)),
                      sqlite3_column_bytes(s, 0));
      }));
  return value;
}

absl::Status DeliveryJournal::PutState(absl::string_view name,
                                       absl::string_view value) {
  absl::MutexLock lock(&mu_);
  return db_->Exec(
      "INSERT INTO state(name, value, delivery) VALUES(?, ?, NULL) ON "
      "CONFLICT(name) DO UPDATE SET value = excluded.value, delivery = NULL",
      {name, value});
}

absl::Status DeliveryJournal::PutDeliveryState(absl::string_view key,
                                               absl::string_view name,
                                               absl::string_view value) {
  absl::MutexLock lock(&mu_);
  return db_->Exec(
      "INSERT INTO state(name, value, delivery) VALUES(?, ?, ?) ON "
      "CONFLICT(name) DO UPDATE SET value = excluded.value, delivery = "
      "excluded.delivery",
      {name, value, key});
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>>
DeliveryJournal::ListState(absl::string_view prefix) {
  absl::MutexLock lock(&mu_);
  std::vector<std::pair<std::string, std::string>> out;
  IMB_RETURN_IF_ERROR(db_->Exec(
      "SELECT name, value FROM state ORDER BY name", {}, [&](sqlite3_stmt* s) {
        auto text = [s](int i) {
          return std::string(
              reinterpret_cast<const char*>(sqlite3_column_text(s, i)),
              sqlite3_column_bytes(s, i));
        };
        std::string name = text(0);
        if (absl::StartsWith(name, prefix)) out.emplace_back(name, text(1));
      }));
  return out;
}

}  // namespace imbridge::adapters
