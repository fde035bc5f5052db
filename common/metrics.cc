#include "common/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace imbridge::metrics {
namespace {

void AtomicAdd(std::atomic<double>& target, double delta) {
  double old = target.load(std::memory_order_relaxed);
  while (!target.compare_exchange_weak(old, old + delta,
                                       std::memory_order_relaxed)) {
  }
}

bool ValidName(absl::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = absl::ascii_isalpha(c) || c == '_' || c == ':' ||
              (i > 0 && absl::ascii_isdigit(c));
    if (!ok) return false;
  }
  return true;
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    return absl::StrFormat("%.0f", v);
  }
  return absl::StrFormat("%.9g", v);
}

// Escapes a label value: backslash, double quote and newline.
std::string EscapeLabel(absl::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// Escapes HELP text: backslash and newline.
std::string EscapeHelp(absl::string_view help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// "{a="x",b="y"}" (with `extra` appended), or "" when there are no labels.
std::string RenderLabels(
    const Labels& labels,
    const std::pair<std::string, std::string>* extra = nullptr) {
  if (labels.empty() && extra == nullptr) return "";
  std::string out = "{";
  bool first = true;
  auto add = [&](const std::pair<std::string, std::string>& label) {
    if (!first) out += ",";
    first = false;
    absl::StrAppend(&out, label.first, "=\"", EscapeLabel(label.second), "\"");
  };
  for (const auto& label : labels) add(label);
  if (extra != nullptr) add(*extra);
  out += "}";
  return out;
}

void CheckLabels(absl::string_view metric, const Labels& labels) {
  for (const auto& label : labels) {
    if (!ValidName(label.first) || label.first == "le") {
      std::fprintf(stderr, "metrics: bad label name '%s' on %s\n",
                   label.first.c_str(), std::string(metric).c_str());
      std::abort();
    }
  }
}

// Series are keyed by their labels sorted by name, so the order a caller
// lists them in does not matter.
Labels Sorted(Labels labels) {
  std::sort(labels.begin(), labels.end());
  return labels;
}

}  // namespace

void Gauge::Add(double d) { AtomicAdd(value_, d); }

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)),
      buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  std::sort(bounds_.begin(), bounds_.end());
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i] = 0;
}

void Histogram::Observe(double v) {
  size_t i =
      std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  AtomicAdd(sum_, v);
}

std::vector<uint64_t> Histogram::bucket_counts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    out[i] = buckets_[i].load(std::memory_order_relaxed);
  }
  return out;
}

std::vector<double> LatencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
          0.25,  0.5,    1,     2.5,  5,     10,   30};
}

Registry& Registry::Default() {
  static Registry* registry = new Registry();
  return *registry;
}

Registry::Family& Registry::FamilyFor(absl::string_view name,
                                      absl::string_view help, Type type) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    if (!ValidName(name)) {
      std::fprintf(stderr, "metrics: bad metric name '%s'\n",
                   std::string(name).c_str());
      std::abort();
    }
    it = families_.emplace(std::string(name), Family{}).first;
    it->second.type = type;
    it->second.help = std::string(help);
  } else if (it->second.type != type) {
    std::fprintf(stderr, "metrics: '%s' registered with two types\n",
                 std::string(name).c_str());
    std::abort();
  }
  return it->second;
}

Counter& Registry::GetCounter(absl::string_view name, absl::string_view help,
                              const Labels& labels) {
  absl::MutexLock lock(&mu_);
  Family& family = FamilyFor(name, help, Type::kCounter);
  auto& slot = family.counters[Sorted(labels)];
  if (slot == nullptr) {
    CheckLabels(name, labels);
    slot = std::make_unique<Counter>();
  }
  return *slot;
}

Gauge& Registry::GetGauge(absl::string_view name, absl::string_view help,
                          const Labels& labels) {
  absl::MutexLock lock(&mu_);
  Family& family = FamilyFor(name, help, Type::kGauge);
  auto& slot = family.gauges[Sorted(labels)];
  if (slot == nullptr) {
    CheckLabels(name, labels);
    slot = std::make_unique<Gauge>();
  }
  return *slot;
}

Histogram& Registry::GetHistogram(absl::string_view name,
                                  absl::string_view help, const Labels& labels,
                                  std::vector<double> upper_bounds) {
  absl::MutexLock lock(&mu_);
  Family& family = FamilyFor(name, help, Type::kHistogram);
  auto& slot = family.histograms[Sorted(labels)];
  if (slot == nullptr) {
    CheckLabels(name, labels);
    slot = std::make_unique<Histogram>(std::move(upper_bounds));
  }
  return *slot;
}

double Registry::SumCounters(absl::string_view name, const Labels& match) {
  absl::MutexLock lock(&mu_);
  auto it = families_.find(name);
  if (it == families_.end()) return 0;
  double sum = 0;
  for (const auto& [labels, counter] : it->second.counters) {
    bool all = true;
    for (const auto& m : match) {
      all = all && std::find(labels.begin(), labels.end(), m) != labels.end();
    }
    if (all) sum += static_cast<double>(counter->value());
  }
  return sum;
}

uint64_t Registry::AddCollector(std::function<void(Registry&)> collector) {
  absl::MutexLock lock(&collectors_mu_);
  uint64_t handle = next_collector_++;
  collectors_.emplace(handle, std::move(collector));
  return handle;
}

void Registry::RemoveCollector(uint64_t handle) {
  absl::MutexLock lock(&collectors_mu_);
  collectors_.erase(handle);
}

std::string Registry::RenderText() {
  {
    // Collectors may call Get*() (which takes mu_), so they run without it.
    absl::MutexLock lock(&collectors_mu_);
    for (auto& [handle, collector] : collectors_) collector(*this);
  }
  absl::MutexLock lock(&mu_);
  std::string out;
  for (const auto& [name, family] : families_) {
    const char* type = family.type == Type::kCounter ? "counter"
                       : family.type == Type::kGauge ? "gauge"
                                                     : "histogram";
    absl::StrAppend(&out, "# HELP ", name, " ", EscapeHelp(family.help), "\n",
                    "# TYPE ", name, " ", type, "\n");
    for (const auto& [labels, counter] : family.counters) {
      absl::StrAppend(&out, name, RenderLabels(labels), " ", counter->value(),
                      "\n");
    }
    for (const auto& [labels, gauge] : family.gauges) {
      absl::StrAppend(&out, name, RenderLabels(labels), " ",
                      FormatValue(gauge->value()), "\n");
    }
    for (const auto& [labels, histogram] : family.histograms) {
      std::vector<uint64_t> counts = histogram->bucket_counts();
      uint64_t cumulative = 0;
      const auto& bounds = histogram->upper_bounds();
      for (size_t i = 0; i <= bounds.size(); ++i) {
        cumulative += counts[i];
        std::pair<std::string, std::string> le{
            "le", i < bounds.size() ? FormatValue(bounds[i]) : "+Inf"};
        absl::StrAppend(&out, name, "_bucket", RenderLabels(labels, &le), " ",
                        cumulative, "\n");
      }
      absl::StrAppend(&out, name, "_sum", RenderLabels(labels), " ",
                      FormatValue(histogram->sum()), "\n");
      absl::StrAppend(&out, name, "_count", RenderLabels(labels), " ",
                      cumulative, "\n");
    }
  }
  return out;
}

}  // namespace imbridge::metrics
