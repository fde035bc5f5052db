#ifndef IMBRIDGE_ADAPTERS_COMMON_DELIVERY_JOURNAL_H_
#define IMBRIDGE_ADAPTERS_COMMON_DELIVERY_JOURNAL_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

struct sqlite3;

namespace imbridge::adapters {

// The durable record of an adapter's deliveries, so that a crash (kill -9)
// between a messenger's native call and its answer neither loses nor
// repeats a message where the messenger lets us tell what happened.
//
// A delivery (named by the router's idempotency key) is a row of steps, one
// per native call (text, then each file; or each part of a long text). Before
// a step's call the adapter records its intent; after the call, the native
// ids it created. Run() does that bookkeeping for a list of steps: a retried
// or re-sent delivery skips the steps already done, returns the ids of a
// delivery already completed without calling anything, and hands a step
// whose intent has no result (the adapter stopped in between) to the
// messenger's reconciler, which looks the message up (Slack, by message
// metadata) or applies the adapter's documented policy (Telegram).
//
// The same store keeps an adapter's small named state values (the Telegram
// polling offset, chat aliases) with PutState()/GetState(), and values that
// belong to one delivery (PutDeliveryState(), pruned with its record).
//
// Storage: one SQLite file in WAL mode, synchronous=FULL (a recorded intent
// survives a crash of the process and of the machine); or, with an empty
// path, an in-memory database that lives as long as the object. Completed
// deliveries are pruned after `retention`, and beyond `max_deliveries` the
// oldest completed ones go first; deliveries never completed are pruned
// after `retention` too (the router has given up on them by then), and
// with them their delivery state values.
//
// Thread-safe: one connection behind a mutex. Every method blocks for a
// small SQLite transaction (an fsync with a file).
class DeliveryJournal {
 public:
  struct Options {
    // The database file; empty for an in-memory journal.
    std::string path;
    // How long a delivery's record is kept. Default 7 days.
    absl::Duration retention = absl::Hours(7 * 24);
    // Most completed deliveries kept. Default 100000.
    size_t max_deliveries = 100000;
  };

  // The file name inside an adapter's state directory.
  static constexpr char kFileName[] = "delivery_journal.sqlite";

  // Opens (creating if missing) the journal at options.path. Errors:
  // kDataLoss for a file that is not a journal (corrupt, or another kind of
  // file), naming the path and what to do; kFailedPrecondition for a journal
  // written by a newer build; kUnavailable when the file cannot be opened.
  static absl::StatusOr<std::unique_ptr<DeliveryJournal>> Open(Options options);

  // Opens `<state_dir>/delivery_journal.sqlite`, creating the directory if
  // missing. With an empty `state_dir` the journal is in memory and a
  // warning is logged: deliveries in flight when the process dies may then
  // be repeated or lost.
  static absl::StatusOr<std::unique_ptr<DeliveryJournal>> OpenInStateDir(
      const std::string& state_dir, Options options);
  static absl::StatusOr<std::unique_ptr<DeliveryJournal>> OpenInStateDir(
      const std::string& state_dir);

  ~DeliveryJournal();
  DeliveryJournal(const DeliveryJournal&) = delete;
  DeliveryJournal& operator=(const DeliveryJournal&) = delete;

  // One step of a delivery as recorded.
  struct Step {
    bool done = false;  // The result was recorded.
    // The last call of the step returned an error (the messenger answered
    // with a failure, or the call timed out). False for an intent whose call
    // never returned (the process died during it).
    bool failed = false;
    std::vector<std::string> native_ids;
    absl::Time intent_at;  // When the intent was recorded.
  };
  // What the journal knows of one delivery.
  struct Record {
    bool completed = false;
    // Steps by number (0, 1, ...) as far as any was recorded.
    std::vector<Step> steps;

    // How many steps, from the first, are done.
    size_t DoneSteps() const;
    // The native ids of those steps, in order.
    std::vector<std::string> NativeIds() const;
  };

  // The record of `key`; an empty Record when the journal has none.
  absl::StatusOr<Record> Find(absl::string_view key);

  // Whether a delivery to `target` recorded `native_id` among the ids its
  // steps created: the message is one the adapter made (as long as the
  // delivery's record is kept, see `retention`).
  absl::StatusOr<bool> HasNativeId(absl::string_view target,
                                   absl::string_view native_id);

  // Records that step `step` of delivery `key` (to `target`, for the
  // operator's eyes) is about to be made. Idempotent; keeps an earlier
  // intent's time.
  absl::Status RecordIntent(absl::string_view key, absl::string_view target,
                            size_t step);
  // Records the native ids step `step` created.
  absl::Status RecordResult(absl::string_view key, size_t step,
                            const std::vector<std::string>& native_ids);
  // Records that the call of step `step` returned an error.
  absl::Status RecordFailure(absl::string_view key, size_t step);
  // Records that every step of `key` is done.
  absl::Status MarkCompleted(absl::string_view key);

  // Removes records older than `retention` (by their last change) and the
  // oldest completed ones beyond `max_deliveries`. Returns how many
  // deliveries were removed. Also runs on its own every few hundred
  // completions.
  absl::StatusOr<size_t> Prune(absl::Time now);

  // A native call of a delivery: returns the ids of what it created.
  using StepCall = std::function<absl::StatusOr<std::vector<std::string>>()>;
  // Decides a step whose intent was recorded without a result and without a
  // failure: the process died during its call. Returns the
  // ids the step created if it did happen (an empty vector for "treat as
  // done without ids"), std::nullopt if it did not (make it again), or an
  // error (retried later; nothing is called).
  using Reconciler =
      std::function<absl::StatusOr<std::optional<std::vector<std::string>>>(
          size_t step, const Step& recorded)>;

  // Runs delivery `key`'s `steps` in order with the bookkeeping above and
  // returns the ids of all steps. A completed delivery returns its recorded
  // ids without any call. A step's failure is recorded (Step::failed) and
  // returned as it is; the steps before it stay recorded as done, and the
  // failed step is made again on the next Run() without asking `reconcile`
  // (the messenger answered with a failure, or the call timed out; a call
  // that timed out after the messenger acted is therefore made twice). An empty
  // `key` runs every step without journaling. A journal write failure is
  // retryable (kUnavailable) and nothing more is called.
  absl::StatusOr<std::vector<std::string>> Run(
      absl::string_view key, absl::string_view target,
      const std::vector<StepCall>& steps, const Reconciler& reconcile);

  // Named state values of the adapter ("telegram/offset/<account>", ...).
  absl::StatusOr<std::optional<std::string>> GetState(absl::string_view name);
  absl::Status PutState(absl::string_view name, absl::string_view value);
  // A state value that belongs to delivery `key` (what an adapter must
  // remember of the copy it made, such as how many messages it has): kept
  // as long as the delivery's record, and pruned with it (Prune()). Put it
  // once the delivery is recorded (after Run()): a value whose delivery has
  // no record is removed by the next Prune().
  absl::Status PutDeliveryState(absl::string_view key, absl::string_view name,
                                absl::string_view value);
  // Every value whose name starts with `prefix`, ordered by name.
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ListState(
      absl::string_view prefix);

  // Where the journal lives ("" in memory).
  const std::string& path() const { return options_.path; }

 private:
  class Db;
  DeliveryJournal(Options options, std::unique_ptr<Db> db);
  absl::StatusOr<size_t> PruneLocked(absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // RecordResult(), and with `completes` also MarkCompleted(), in one
  // transaction.
  absl::Status RecordResult(absl::string_view key, size_t step,
                            const std::vector<std::string>& native_ids,
                            bool completes);
  // Prunes every kPruneEvery completions.
  void CountCompletionLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  absl::Mutex mu_;
  std::unique_ptr<Db> db_ ABSL_GUARDED_BY(mu_);
  uint64_t completions_since_prune_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace imbridge::adapters

#endif  // IMBRIDGE_ADAPTERS_COMMON_DELIVERY_JOURNAL_H_
