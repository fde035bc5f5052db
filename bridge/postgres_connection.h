#ifndef IMBRIDGE_BRIDGE_POSTGRES_CONNECTION_H_
#define IMBRIDGE_BRIDGE_POSTGRES_CONNECTION_H_

// The libpq plumbing shared by the PostgreSQL store (postgres_store.cc) and
// the queue leases (queue_leases.cc): binary parameters and results, and a
// connection that reconnects and sends pipelines. Only those two files
// include it; nothing outside bridge/ sees libpq.

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "bridge/postgres_store.h"
#include "bridge/store_common.h"
#include "common/status_macros.h"

namespace imbridge::bridge::pg {

// Type oids of the parameters (pg_type.dat).
constexpr Oid kBoolOid = 16;
constexpr Oid kByteaOid = 17;
constexpr Oid kInt8Oid = 20;
constexpr Oid kTextOid = 25;
constexpr Oid kBoolArrayOid = 1000;
constexpr Oid kByteaArrayOid = 1001;
constexpr Oid kTextArrayOid = 1009;
constexpr Oid kInt8ArrayOid = 1016;

struct ConnCloser {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
using ConnPtr = std::unique_ptr<PGconn, ConnCloser>;

struct ResultCloser {
  void operator()(PGresult* result) const { PQclear(result); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultCloser>;

// libpq's message without its trailing newline.
inline std::string Trimmed(const char* message) {
  return std::string(
      absl::StripTrailingAsciiWhitespace(message != nullptr ? message : ""));
}

// Trouble that may pass (connection lost, server shutting down or out of
// resources, a serialization conflict) is kUnavailable; everything else is
// kInternal.
inline absl::StatusCode CodeForState(absl::string_view sqlstate) {
  if (sqlstate.empty() || absl::StartsWith(sqlstate, "08") ||
      absl::StartsWith(sqlstate, "53") || absl::StartsWith(sqlstate, "57P") ||
      absl::StartsWith(sqlstate, "40")) {
    return absl::StatusCode::kUnavailable;
  }
  return absl::StatusCode::kInternal;
}

// The error of a failed result (or of the connection when there is none).
inline absl::Status ResultError(PGconn* conn, const PGresult* result,
                                absl::string_view what) {
  const char* state = result != nullptr
                          ? PQresultErrorField(result, PG_DIAG_SQLSTATE)
                          : nullptr;
  std::string message = Trimmed(result != nullptr ? PQresultErrorMessage(result)
                                                  : PQerrorMessage(conn));
  if (message.empty()) message = Trimmed(PQerrorMessage(conn));
  absl::StatusCode code = PQstatus(conn) == CONNECTION_BAD
                              ? absl::StatusCode::kUnavailable
                              : CodeForState(state != nullptr ? state : "");
  return absl::Status(code, absl::StrCat("postgres: ", what, ": ", message));
}

// A one-dimensional array parameter without NULLs in PostgreSQL's binary
// format (array_send): a header, then each element as length and bytes.
class ArrayParam {
 public:
  // `element` is the elements' type oid, `type` the array's.
  ArrayParam(Oid element, Oid type) : type_(type) {
    Put32(1);  // dimensions
    Put32(0);  // no NULLs
    Put32(element);
    Put32(0);  // the element count, set by Finish
    Put32(1);  // lower bound
  }

  ArrayParam& Add(absl::string_view bytes) {
    Put32(static_cast<uint32_t>(bytes.size()));
    bytes_.append(bytes.data(), bytes.size());
    ++count_;
    return *this;
  }
  ArrayParam& AddInt(int64_t value) {
    Put32(8);
    uint64_t bits = static_cast<uint64_t>(value);
    for (int shift = 56; shift >= 0; shift -= 8) {
      bytes_.push_back(static_cast<char>((bits >> shift) & 0xff));
    }
    ++count_;
    return *this;
  }
  ArrayParam& AddBool(bool value) {
    return Add(value ? absl::string_view("\1", 1) : absl::string_view("\0", 1));
  }

  Oid type() const { return type_; }
  // The array's bytes; the builder is spent.
  std::string Finish() && {
    for (int i = 0; i < 4; ++i) {
      bytes_[12 + i] = static_cast<char>((count_ >> (24 - 8 * i)) & 0xff);
    }
    return std::move(bytes_);
  }

 private:
  void Put32(uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) {
      bytes_.push_back(static_cast<char>((v >> shift) & 0xff));
    }
  }

  const Oid type_;
  std::string bytes_;
  uint32_t count_ = 0;
};

// The parameters of one statement, sent in binary format with their types.
// Text and bytes are not copied: they must outlive the Params.
class Params {
 public:
  Params() = default;
  Params(Params&&) = default;
  Params& operator=(Params&&) = default;

  Params& Int(int64_t value) {
    uint64_t bits = static_cast<uint64_t>(value);
    std::string& bytes = owned_.emplace_back(8, '\0');
    for (int i = 7; i >= 0; --i) {
      bytes[i] = static_cast<char>(bits & 0xff);
      bits >>= 8;
    }
    return Add(kInt8Oid, bytes);
  }
  Params& Time(absl::Time value) { return Int(ToStoreMillis(value)); }
  Params& Bool(bool value) {
    return Add(kBoolOid, owned_.emplace_back(1, value ? '\1' : '\0'));
  }
  Params& Null(Oid type) {
    types_.push_back(type);
    values_.push_back(nullptr);
    lengths_.push_back(0);
    formats_.push_back(1);
    return *this;
  }
  Params& Text(absl::string_view value) { return Add(kTextOid, value); }
  // A text[] in the binary array format: one dimension, no NULLs.
  Params& TextArray(absl::Span<const absl::string_view> values) {
    ArrayParam array(kTextOid, kTextArrayOid);
    for (absl::string_view v : values) array.Add(v);
    return Array(std::move(array));
  }
  Params& Array(ArrayParam array) {
    const Oid type = array.type();
    return Add(type, owned_.emplace_back(std::move(array).Finish()));
  }
  Params& Bytes(absl::string_view value) { return Add(kByteaOid, value); }
  Params& OwnedText(std::string value) {
    return Add(kTextOid, owned_.emplace_back(std::move(value)));
  }
  // Copies `value` first: for temporaries.
  Params& OwnedBytes(std::string value) {
    return Add(kByteaOid, owned_.emplace_back(std::move(value)));
  }

  int size() const { return static_cast<int>(types_.size()); }
  const Oid* types() const { return types_.data(); }
  const char* const* values() const { return values_.data(); }
  const int* lengths() const { return lengths_.data(); }
  const int* formats() const { return formats_.data(); }

 private:
  Params& Add(Oid type, absl::string_view value) {
    types_.push_back(type);
    // A null pointer would send SQL NULL; an empty value must send "".
    values_.push_back(value.data() != nullptr ? value.data() : "");
    lengths_.push_back(static_cast<int>(value.size()));
    formats_.push_back(1);
    return *this;
  }

  // Storage of converted values; a deque never moves its elements.
  std::deque<std::string> owned_;
  std::vector<Oid> types_;
  std::vector<const char*> values_;
  std::vector<int> lengths_;
  std::vector<int> formats_;
};

// Reads a binary-format result.
class Rows {
 public:
  explicit Rows(ResultPtr result) : result_(std::move(result)) {}

  int size() const { return PQntuples(result_.get()); }
  bool IsNull(int row, int col) const {
    return PQgetisnull(result_.get(), row, col) != 0;
  }
  int64_t Int(int row, int col) const {
    const auto* bytes = reinterpret_cast<const unsigned char*>(
        PQgetvalue(result_.get(), row, col));
    int length = PQgetlength(result_.get(), row, col);
    uint64_t bits = 0;
    for (int i = 0; i < length; ++i) bits = (bits << 8) | bytes[i];
    // Sign-extend shorter integers (int2, int4).
    if (length > 0 && length < 8 && (bytes[0] & 0x80) != 0) {
      bits |= ~uint64_t{0} << (8 * length);
    }
    return static_cast<int64_t>(bits);
  }
  absl::Time Time(int row, int col) const {
    return FromStoreMillis(Int(row, col));
  }
  bool Bool(int row, int col) const {
    return PQgetlength(result_.get(), row, col) > 0 &&
           PQgetvalue(result_.get(), row, col)[0] != 0;
  }
  absl::string_view Bytes(int row, int col) const {
    return absl::string_view(PQgetvalue(result_.get(), row, col),
                             PQgetlength(result_.get(), row, col));
  }
  std::string Text(int row, int col) const {
    return std::string(Bytes(row, col));
  }

 private:
  ResultPtr result_;
};

// One statement of a pipeline: a prepared statement's name or SQL text, and
// its parameters.
struct Command {
  const char* statement;
  bool prepared;
  Params params;
};

// The wait after a failed connection attempt before the next, doubling up
// to the most (Connection::Ensure).
constexpr absl::Duration kFirstConnectBackoff = absl::Milliseconds(100);
constexpr absl::Duration kMaxConnectBackoff = absl::Seconds(2);

// A connection to the database that reconnects when it finds itself broken.
// Not thread-safe: one user at a time.
class Connection {
 public:
  // `prepared` lists statements (name, SQL) to prepare on every connect.
  Connection(const PostgresStoreOptions* options,
             std::vector<std::pair<const char*, const char*>> prepared)
      : options_(options), prepared_(std::move(prepared)) {}

  // Connects, or reconnects if the connection broke; kUnavailable when the
  // server cannot be reached. After a failed attempt the next one waits
  // (kFirstConnectBackoff, doubling up to kMaxConnectBackoff): meanwhile
  // calls fail at once with the last attempt's reason. So a writer retrying
  // a failed group commit one operation at a time, or a poller, costs one
  // attempt per backoff instead of one per call, each of which may wait
  // connect_timeout on a network that went silent.
  absl::Status Ensure() {
    if (conn_ != nullptr && PQstatus(conn_.get()) == CONNECTION_OK) {
      return absl::OkStatus();
    }
    conn_.reset();
    const absl::Time now = absl::Now();
    if (now < next_attempt_) {
      return absl::UnavailableError(
          absl::StrCat("postgres: not connected, the next attempt is in ",
                       absl::ToInt64Milliseconds(next_attempt_ - now),
                       " ms (the last one failed: ",
                       absl::StripPrefix(last_failure_, "postgres: "), ")"));
    }
    absl::Status connected = Connect();
    if (connected.ok()) {
      backoff_ = absl::ZeroDuration();
      next_attempt_ = absl::InfinitePast();
      return connected;
    }
    backoff_ = std::min(
        backoff_ == absl::ZeroDuration() ? kFirstConnectBackoff : 2 * backoff_,
        kMaxConnectBackoff);
    next_attempt_ = absl::Now() + backoff_;
    last_failure_ = std::string(connected.message());
    return connected;
  }

  PGconn* get() const { return conn_.get(); }

  // Runs one statement (SQL text) and returns its rows (empty for a
  // command).
  absl::StatusOr<Rows> Exec(const char* sql, const Params& params = Params()) {
    IMB_RETURN_IF_ERROR(Ensure());
    ResultPtr result(PQexecParams(conn_.get(), sql, params.size(),
                                  params.types(), params.values(),
                                  params.lengths(), params.formats(),
                                  /*resultFormat=*/1));
    ExecStatusType status = PQresultStatus(result.get());
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
      return ResultError(conn_.get(), result.get(), FirstWords(sql));
    }
    return Rows(std::move(result));
  }

  // Runs several statements in one statement string (no parameters).
  absl::Status ExecScript(const char* sql) {
    IMB_RETURN_IF_ERROR(Ensure());
    ResultPtr result(PQexec(conn_.get(), sql));
    if (PQresultStatus(result.get()) != PGRES_COMMAND_OK &&
        PQresultStatus(result.get()) != PGRES_TUPLES_OK) {
      return ResultError(conn_.get(), result.get(), FirstWords(sql));
    }
    return absl::OkStatus();
  }

  // Sends `commands` in one pipeline ending in one sync, and returns each
  // one's rows, in order: one round trip. If one fails, the ones after it
  // are skipped by the server and the first error is returned.
  absl::StatusOr<std::vector<Rows>> Pipeline(std::vector<Command>& commands) {
    IMB_RETURN_IF_ERROR(Ensure());
    PGconn* conn = conn_.get();
    if (PQenterPipelineMode(conn) != 1) {
      return ResultError(conn, nullptr, "entering pipeline mode");
    }
    absl::Status status = absl::OkStatus();
    for (const Command& c : commands) {
      const Params& p = c.params;
      int sent =
          c.prepared
              ? PQsendQueryPrepared(conn, c.statement, p.size(), p.values(),
                                    p.lengths(), p.formats(), 1)
              : PQsendQueryParams(conn, c.statement, p.size(), p.types(),
                                  p.values(), p.lengths(), p.formats(), 1);
      if (sent != 1) {
        status = ResultError(conn, nullptr, "sending a statement");
        break;
      }
    }
    if (status.ok() && PQpipelineSync(conn) != 1) {
      status = ResultError(conn, nullptr, "sending the sync");
    }
    if (status.ok()) status = Flush();
    if (!status.ok()) {
      // The pipeline is in an unknown state: start over on a new connection.
      conn_.reset();
      return status;
    }
    std::vector<Rows> rows;
    rows.reserve(commands.size());
    for (const Command& c : commands) {
      ResultPtr result(PQgetResult(conn));
      if (result == nullptr) {
        status = ResultError(conn, nullptr, "reading results");
        conn_.reset();
        return status;
      }
      ExecStatusType s = PQresultStatus(result.get());
      if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK && status.ok()) {
        status =
            ResultError(conn, result.get(),
                        c.prepared ? c.statement : FirstWords(c.statement));
      }
      // Each statement's results end with a null.
      while (ResultPtr(PQgetResult(conn)) != nullptr) {
      }
      rows.emplace_back(std::move(result));
    }
    // The sync's own result comes next.
    bool synced = false;
    for (int i = 0; i < 3 && !synced; ++i) {
      ResultPtr result(PQgetResult(conn));
      synced = result != nullptr &&
               PQresultStatus(result.get()) == PGRES_PIPELINE_SYNC;
    }
    if (!synced || PQexitPipelineMode(conn) != 1 ||
        PQstatus(conn) == CONNECTION_BAD) {
      if (status.ok()) status = ResultError(conn, nullptr, "ending pipeline");
      conn_.reset();
    }
    IMB_RETURN_IF_ERROR(status);
    return rows;
  }

  // Abandons an open or failed transaction, if there is one; never fails
  // (a broken connection is dropped, which ends its transaction).
  void RollbackIfOpen() {
    if (conn_ == nullptr) return;
    PGTransactionStatusType t = PQtransactionStatus(conn_.get());
    if (t == PQTRANS_IDLE) return;
    if (t == PQTRANS_INTRANS || t == PQTRANS_INERROR) {
      ResultPtr result(PQexec(conn_.get(), "ROLLBACK"));
      if (PQresultStatus(result.get()) == PGRES_COMMAND_OK) return;
    }
    conn_.reset();
  }

  // Exec with a bound: runs `sql` and waits at most `timeout` for its
  // answer (a network that went silent does not hold the caller for the
  // operating system's minutes). On timeout the connection is dropped (the
  // server ends its transaction) and kDeadlineExceeded returned. Ensure()
  // may still take up to connect_timeout when the server is unreachable.
  absl::StatusOr<Rows> ExecWithin(const char* sql, const Params& params,
                                  absl::Duration timeout) {
    IMB_RETURN_IF_ERROR(Ensure());
    const absl::Time deadline = absl::Now() + timeout;
    PGconn* conn = conn_.get();
    if (PQsendQueryParams(conn, sql, params.size(), params.types(),
                          params.values(), params.lengths(), params.formats(),
                          /*resultFormat=*/1) != 1) {
      absl::Status status = ResultError(conn, nullptr, FirstWords(sql));
      conn_.reset();
      return status;
    }
    absl::Status status = Flush();
    ResultPtr last;
    while (status.ok()) {
      if (PQconsumeInput(conn) != 1) {
        status = ResultError(conn, nullptr, "receiving");
        break;
      }
      if (PQisBusy(conn) == 0) {
        ResultPtr result(PQgetResult(conn));
        if (result == nullptr) break;  // all results read
        last = std::move(result);
        continue;
      }
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) {
        status = absl::DeadlineExceededError(
            absl::StrCat("postgres: ", FirstWords(sql), ": no answer within ",
                         absl::FormatDuration(timeout)));
        break;
      }
      pollfd fd{PQsocket(conn), POLLIN, 0};
      int ms = static_cast<int>(absl::ToInt64Milliseconds(left)) + 1;
      if (poll(&fd, 1, ms) < 0 && errno != EINTR) {
        status = absl::UnavailableError(
            absl::StrCat("postgres: poll: ", strerror(errno)));
      }
    }
    if (!status.ok()) {
      conn_.reset();
      return status;
    }
    ExecStatusType s = PQresultStatus(last.get());
    if (last == nullptr || (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK)) {
      return ResultError(conn, last.get(), FirstWords(sql));
    }
    return Rows(std::move(last));
  }

  // A notification (LISTEN) as it arrived.
  struct Notification {
    std::string channel;
    std::string payload;
  };

  // The notifications (LISTEN) that arrived so far, of every channel
  // listened to, in arrival order, reading what the socket holds without
  // waiting; the socket to poll for more is get()'s PQsocket. kUnavailable
  // (the connection dropped) if it broke.
  absl::StatusOr<std::vector<Notification>> TakeNotifications() {
    std::vector<Notification> notifications;
    if (conn_ == nullptr) return notifications;
    if (PQconsumeInput(conn_.get()) != 1) {
      absl::Status status = ResultError(conn_.get(), nullptr, "receiving");
      conn_.reset();
      return status;
    }
    while (PGnotify* n = PQnotifies(conn_.get())) {
      notifications.push_back({n->relname, n->extra});
      PQfreemem(n);
    }
    return notifications;
  }

  // Closes the connection; the next call connects again.
  void Drop() { conn_.reset(); }

 private:
  // One attempt to connect and set the session up.
  absl::Status Connect() {
    // Defaults first: the connection string overrides them. A server that
    // cannot be reached, or a network that went silent, fails a call in
    // seconds (kUnavailable) instead of stalling the writer for the
    // operating system's minutes.
    const char* keywords[] = {"application_name",
                              "connect_timeout",
                              "keepalives_idle",
                              "keepalives_interval",
                              "keepalives_count",
                              "tcp_user_timeout",
                              "dbname",
                              "password",
                              nullptr};
    const char* values[] = {
        "imbridge-router",
        "10",
        "10",
        "5",
        "3",
        "20000",
        options_->dsn.c_str(),
        options_->password.empty() ? nullptr : options_->password.c_str(),
        nullptr};
    ConnPtr conn(PQconnectdbParams(keywords, values, /*expand_dbname=*/1));
    if (conn == nullptr) {
      return absl::ResourceExhaustedError("postgres: out of memory");
    }
    if (PQstatus(conn.get()) != CONNECTION_OK) {
      return absl::UnavailableError(absl::StrCat(
          "postgres: cannot connect: ", Trimmed(PQerrorMessage(conn.get()))));
    }
    std::string setup =
        absl::StrCat("SET synchronous_commit = ",
                     options_->durability == v1::NORMAL ? "off" : "on",
                     "; SET client_min_messages = warning; SET TIME ZONE 'UTC'"
                     // The writer's statements unnest arrays of a batch's rows:
                     // a generic plan guesses 10 rows and joins them by nested
                     // loops (seconds per batch of 1,000); a plan for the
                     // actual arrays costs about a millisecond per batch.
                     "; SET plan_cache_mode = force_custom_plan");
    ResultPtr result(PQexec(conn.get(), setup.c_str()));
    if (PQresultStatus(result.get()) != PGRES_COMMAND_OK) {
      return ResultError(conn.get(), result.get(), "setting up the session");
    }
    for (const auto& [name, sql] : prepared_) {
      ResultPtr prepared(PQprepare(conn.get(), name, sql, 0, nullptr));
      if (PQresultStatus(prepared.get()) != PGRES_COMMAND_OK) {
        return ResultError(conn.get(), prepared.get(),
                           absl::StrCat("preparing ", name));
      }
    }
    // Pipelines are sent without blocking (see Pipeline); plain queries
    // (PQexec*) block whatever this says.
    if (PQsetnonblocking(conn.get(), 1) != 0) {
      return ResultError(conn.get(), nullptr, "setting non-blocking mode");
    }
    conn_ = std::move(conn);
    return absl::OkStatus();
  }

  static std::string FirstWords(const char* sql) {
    return std::string(absl::StripLeadingAsciiWhitespace(sql).substr(0, 60));
  }

  // Sends what libpq buffered, reading the server's answers meanwhile so
  // that neither side blocks on a full socket.
  absl::Status Flush() {
    PGconn* conn = conn_.get();
    while (true) {
      int pending = PQflush(conn);
      if (pending == 0) return absl::OkStatus();
      if (pending < 0) return ResultError(conn, nullptr, "sending");
      pollfd fd{PQsocket(conn), POLLIN | POLLOUT, 0};
      if (poll(&fd, 1, 60000) < 0 && errno != EINTR) {
        return absl::UnavailableError(
            absl::StrCat("postgres: poll: ", strerror(errno)));
      }
      if ((fd.revents & POLLIN) != 0 && PQconsumeInput(conn) != 1) {
        return ResultError(conn, nullptr, "receiving");
      }
    }
  }

  const PostgresStoreOptions* options_;
  std::vector<std::pair<const char*, const char*>> prepared_;
  ConnPtr conn_;
  // After a failed connection attempt (Ensure): the wait before the next,
  // when it may be made, and why the last one failed.
  absl::Duration backoff_ = absl::ZeroDuration();
  absl::Time next_attempt_ = absl::InfinitePast();
  std::string last_failure_;
};

}  // namespace imbridge::bridge::pg

#endif  // IMBRIDGE_BRIDGE_POSTGRES_CONNECTION_H_
