// The result line of imbridge-http-bench, and a smoke run of the bench with
// the real router, webhook and Slack adapters (a tiny message count; no timing
// is asserted).
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/run_command.h"
#include "tools/http_bench/bench_line.h"

namespace imbridge::tools {
namespace {

using imbridge::testing::RunCommand;
using ::testing::HasSubstr;

TEST(BenchLineTest, FormatsAndParsesBack) {
  std::string line = FormatBenchLine(
      {{"path", "webhook"}, {"p99_ms", "4.250"}, {"empty", ""}});
  EXPECT_EQ(line, "HTTPBENCH path=webhook p99_ms=4.250 empty=-");
  auto fields = ParseBenchLine(line);
  ASSERT_TRUE(fields.ok()) << fields.status();
  EXPECT_EQ((*fields)["path"], "webhook");
  EXPECT_EQ((*fields)["p99_ms"], "4.250");
  EXPECT_EQ((*fields)["empty"], "-");
  EXPECT_EQ(fields->size(), 3u);
}

TEST(BenchLineTest, RefusesMalformedLines) {
  EXPECT_THAT(ParseBenchLine("path=webhook").status().message(),
              HasSubstr("no HTTPBENCH prefix"));
  EXPECT_THAT(ParseBenchLine("").status().message(),
              HasSubstr("no HTTPBENCH prefix"));
  EXPECT_THAT(ParseBenchLine("HTTPBENCH path").status().message(),
              HasSubstr("has no '='"));
  EXPECT_THAT(ParseBenchLine("HTTPBENCH =1").status().message(),
              HasSubstr("invalid key"));
  EXPECT_THAT(ParseBenchLine("HTTPBENCH P99=1").status().message(),
              HasSubstr("invalid key"));
  EXPECT_THAT(ParseBenchLine("HTTPBENCH a=1 a=2").status().message(),
              HasSubstr("given twice"));
}

std::string BenchBinary() {
  return imbridge::testing::BuildBinary("tools/http_bench/imbridge-http-bench");
}

// Checks one HTTPBENCH line of a smoke run: every message answered, every
// accepted one delivered, and each figure a number.
void CheckResultLine(const std::string& line, const std::string& path,
                     const std::string& out) {
  auto fields = ParseBenchLine(line);
  ASSERT_TRUE(fields.ok()) << fields.status() << "\n" << out;
  EXPECT_EQ((*fields)["path"], path);
  // Every message was answered, and every accepted one was delivered to the
  // bench's receiver through the router and the outgoing webhook.
  int64_t accepted = 0, refused = 0, cpu_messages = 0, samples = 0;
  ASSERT_TRUE(absl::SimpleAtoi((*fields)["closed_accepted"], &accepted));
  ASSERT_TRUE(absl::SimpleAtoi((*fields)["closed_refused"], &refused));
  EXPECT_EQ(accepted + refused, 200) << out;
  EXPECT_GT(accepted, 0) << out;
  EXPECT_EQ((*fields)["all_delivered"], "1") << out;
  ASSERT_TRUE(absl::SimpleAtoi((*fields)["cpu_messages"], &cpu_messages));
  EXPECT_GT(cpu_messages, 0) << out;
  ASSERT_TRUE(absl::SimpleAtoi((*fields)["latency_samples"], &samples));
  EXPECT_GT(samples, 0) << out;
  for (const char* key : {"closed_accepted_per_s", "cpu_us_per_msg", "p50_ms",
                          "p99_ms", "ceiling_per_s", "accepted_ratio"}) {
    double value = -1;
    EXPECT_TRUE(absl::SimpleAtod((*fields)[key], &value)) << key << "\n" << out;
    EXPECT_GE(value, 0) << key;
  }
  int64_t hwm = 0;
  ASSERT_TRUE(absl::SimpleAtoi((*fields)["adapter_hwm_kib"], &hwm));
  EXPECT_GT(hwm, 0);
  // The anonymous part and the PSS are parts of the RSS.
  for (const char* key : {"adapter_anon_kib", "adapter_pss_kib"}) {
    int64_t kib = 0;
    ASSERT_TRUE(absl::SimpleAtoi((*fields)[key], &kib)) << key;
    EXPECT_GT(kib, 0) << key;
    EXPECT_LE(kib, hwm) << key;
  }
}

TEST(HttpBenchSmokeTest, RunsBothPathsAndPrintsParsableLines) {
  int exit_code = -1;
  std::string out =
      RunCommand(BenchBinary() +
                     " --path=both --messages=200 --connections=4 "
                     "--rate=400 --duration=60 2>&1",
                 &exit_code);
  ASSERT_EQ(exit_code, 0) << out;
  std::vector<std::string> lines;
  for (absl::string_view l : absl::StrSplit(out, '\n')) {
    if (absl::StartsWith(l, "HTTPBENCH ")) lines.emplace_back(l);
  }
  ASSERT_EQ(lines.size(), 2u) << out;
  for (size_t i = 0; i < lines.size(); ++i) {
    SCOPED_TRACE(lines[i]);
    CheckResultLine(lines[i], i == 0 ? "webhook" : "slack", out);
  }
}

TEST(HttpBenchSmokeTest, RefusesBadFlags) {
  int exit_code = -1;
  std::string out =
      RunCommand(BenchBinary() + " --messages=zero 2>&1", &exit_code);
  EXPECT_EQ(exit_code, 2);
  EXPECT_THAT(out, HasSubstr("bad flag: --messages=zero"));
  out = RunCommand(BenchBinary() + " --path=teams 2>&1", &exit_code);
  EXPECT_EQ(exit_code, 2);
  EXPECT_THAT(out, HasSubstr("bad flag: --path=teams"));
}

}  // namespace
}  // namespace imbridge::tools
