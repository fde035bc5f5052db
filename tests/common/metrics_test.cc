#include "common/metrics.h"

#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::metrics {
namespace {

using ::testing::HasSubstr;

TEST(MetricsTest, CountersRenderWithHelpTypeAndSortedLabels) {
  Registry registry;
  registry
      .GetCounter("imbridge_events_in_total", "Events in.",
                  {{"platform", "slack"}})
      .Increment(3);
  registry
      .GetCounter("imbridge_events_in_total", "Events in.",
                  {{"platform", "a\"b\\c\nd"}})
      .Increment();
  std::string text = registry.RenderText();
  EXPECT_EQ(text,
            "# HELP imbridge_events_in_total Events in.\n"
            "# TYPE imbridge_events_in_total counter\n"
            "imbridge_events_in_total{platform=\"a\\\"b\\\\c\\nd\"} 1\n"
            "imbridge_events_in_total{platform=\"slack\"} 3\n");
}

TEST(MetricsTest, SameSeriesIsTheSameObject) {
  Registry registry;
  Counter& a = registry.GetCounter("c_total", "c", {{"x", "1"}});
  Counter& b = registry.GetCounter("c_total", "c", {{"x", "1"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &registry.GetCounter("c_total", "c", {{"x", "2"}}));
}

TEST(MetricsTest, GaugesAndCollectorsRefreshAtRender) {
  Registry registry;
  int depth = 7;
  uint64_t handle = registry.AddCollector([&](Registry& r) {
    r.GetGauge("imbridge_queue_depth", "Depth.").Set(depth);
  });
  EXPECT_THAT(registry.RenderText(), HasSubstr("imbridge_queue_depth 7\n"));
  depth = 9;
  EXPECT_THAT(registry.RenderText(), HasSubstr("imbridge_queue_depth 9\n"));
  registry.RemoveCollector(handle);
  depth = 11;
  EXPECT_THAT(registry.RenderText(), HasSubstr("imbridge_queue_depth 9\n"));
  Gauge& g = registry.GetGauge("g", "g");
  g.Add(1.5);
  g.Add(-0.25);
  EXPECT_THAT(registry.RenderText(), HasSubstr("\ng 1.25\n"));
}

TEST(MetricsTest, HistogramBucketsAreCumulative) {
  Registry registry;
  Histogram& h =
      registry.GetHistogram("lat_seconds", "Latency.", {{"p", "t"}}, {0.1, 1});
  h.Observe(0.05);
  h.Observe(0.1);  // On the bound: counted in le="0.1".
  h.Observe(0.5);
  h.Observe(3);
  std::string text = registry.RenderText();
  EXPECT_THAT(text, HasSubstr("# TYPE lat_seconds histogram\n"));
  EXPECT_THAT(text, HasSubstr("lat_seconds_bucket{p=\"t\",le=\"0.1\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("lat_seconds_bucket{p=\"t\",le=\"1\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("lat_seconds_bucket{p=\"t\",le=\"+Inf\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("lat_seconds_count{p=\"t\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("lat_seconds_sum{p=\"t\"} 3.65\n"));
}

TEST(MetricsTest, ConcurrentIncrementsAreAllCounted) {
  Registry registry;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        registry.GetCounter("n_total", "n").Increment();
        registry.GetHistogram("h", "h").Observe(0.002);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(registry.GetCounter("n_total", "n").value(), 40000u);
  EXPECT_EQ(registry.GetHistogram("h", "h").count(), 40000u);
}

TEST(MetricsDeathTest, OneNameHasOneType) {
  Registry registry;
  registry.GetCounter("x_total", "x");
  EXPECT_DEATH(registry.GetGauge("x_total", "x"), "two types");
  EXPECT_DEATH(registry.GetCounter("bad name", "x"), "bad metric name");
}

}  // namespace
}  // namespace imbridge::metrics
