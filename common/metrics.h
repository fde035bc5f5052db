#ifndef IMBRIDGE_COMMON_METRICS_H_
#define IMBRIDGE_COMMON_METRICS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace imbridge::metrics {

// Label name/value pairs of one time series, for example
// {{"platform", "slack"}, {"result", "ok"}}.
using Labels = std::vector<std::pair<std::string, std::string>>;

// A value that only grows (events, requests, errors). Thread-safe, lock-free.
class Counter {
 public:
  void Increment(uint64_t by = 1) {
    value_.fetch_add(by, std::memory_order_relaxed);
  }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down (queue depth, attached adapters).
// Thread-safe, lock-free.
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double d);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// A distribution (latencies in seconds) over fixed cumulative buckets.
// Thread-safe, lock-free.
class Histogram {
 public:
  // `upper_bounds` ascending; +Inf is implicit.
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double v);

  const std::vector<double>& upper_bounds() const { return bounds_; }
  // Per-bucket counts (not cumulative), one more than upper_bounds() (+Inf).
  std::vector<uint64_t> bucket_counts() const;
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

// Buckets for latencies in seconds: 1 ms .. 30 s.
std::vector<double> LatencyBuckets();

// A set of named metrics rendered in the Prometheus text exposition format
// (version 0.0.4) for `GET /metrics`. Series are keyed by their labels
// sorted by name.
//
// Metrics are created on first use and live as long as the registry; the
// returned references stay valid, so hot paths look a series up once and
// keep the pointer. A name is one type: asking for a counter named like an
// existing gauge aborts (a programming error). Names must match
// [a-zA-Z_:][a-zA-Z0-9_:]*; label values are escaped when rendered.
//
// Collectors are callbacks run at every render, before the text is built,
// to refresh gauges from state owned elsewhere (queue depths read from the
// store, counters of the webhook server).
//
// Thread-safe.
class Registry {
 public:
  // The process-wide registry that /metrics serves.
  static Registry& Default();

  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  Counter& GetCounter(absl::string_view name, absl::string_view help,
                      const Labels& labels = {});
  Gauge& GetGauge(absl::string_view name, absl::string_view help,
                  const Labels& labels = {});
  Histogram& GetHistogram(absl::string_view name, absl::string_view help,
                          const Labels& labels = {},
                          std::vector<double> upper_bounds = LatencyBuckets());

  // The sum of the counters named `name` whose labels include every pair of
  // `match` (0 if there are none).
  double SumCounters(absl::string_view name, const Labels& match = {});

  // Adds a callback run before every render. It may call Get*/Set on this
  // registry. It must not call RenderText(). Returns a handle for
  // RemoveCollector().
  uint64_t AddCollector(std::function<void(Registry&)> collector);
  // Removes a collector (its owner is going away). Waits for a render in
  // progress to finish.
  void RemoveCollector(uint64_t handle);

  // The whole registry in the Prometheus text format: for each metric name
  // (sorted) a # HELP and # TYPE line, then its series sorted by labels.
  std::string RenderText();

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Family {
    Type type;
    std::string help;
    std::map<Labels, std::unique_ptr<Counter>> counters;
    std::map<Labels, std::unique_ptr<Gauge>> gauges;
    std::map<Labels, std::unique_ptr<Histogram>> histograms;
  };
  Family& FamilyFor(absl::string_view name, absl::string_view help, Type type)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex collectors_mu_;
  std::map<uint64_t, std::function<void(Registry&)>> collectors_
      ABSL_GUARDED_BY(collectors_mu_);
  uint64_t next_collector_ ABSL_GUARDED_BY(collectors_mu_) = 1;
  absl::Mutex mu_;
  std::map<std::string, Family, std::less<>> families_ ABSL_GUARDED_BY(mu_);
};

// Content-Type of RenderText()'s output.
inline constexpr absl::string_view kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";

}  // namespace imbridge::metrics

#endif  // IMBRIDGE_COMMON_METRICS_H_
