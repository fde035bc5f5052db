// A smoke run of imbridge-bench with the real router (a tiny event count;
// no timing is asserted): every phase of a default run completes and prints
// its line, the restart phase with the message map the run left behind.
#include <regex>
#include <string>

#include "absl/strings/numbers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/run_command.h"

namespace imbridge::tools {
namespace {

using imbridge::testing::BuildBinary;
using imbridge::testing::RunCommand;
using ::testing::HasSubstr;

TEST(BenchSmokeTest, RunsEveryDefaultPhaseAndRestartsOnTheRunsData) {
  int exit_code = -1;
  std::string out = RunCommand(BuildBinary("tools/bench/imbridge-bench") +
                                   " --events=2000 --rate=1000 --seconds=1 "
                                   "--ceiling=false 2>&1",
                               &exit_code);
  ASSERT_EQ(exit_code, 0) << out;
  EXPECT_THAT(out, HasSubstr("throughput: 2000 events relayed"));
  EXPECT_THAT(out, HasSubstr("latency at 1000 events/s for 1 s"));
  EXPECT_THAT(out, HasSubstr("memory after 3000 events"));
  // Each of the 3,000 events relayed left its original's row and its
  // copy's row in the message map; the router came back on them.
  std::smatch restart;
  ASSERT_TRUE(std::regex_search(
      out, restart,
      std::regex("restart to serving with ([0-9]+) message-map rows: "
                 "([0-9]+) ms")))
      << out;
  EXPECT_EQ(restart[1].str(), "6000");
  int64_t ms = -1;
  EXPECT_TRUE(absl::SimpleAtoi(restart[2].str(), &ms));
  EXPECT_GE(ms, 0);
}

TEST(BenchSmokeTest, RefusesBadFlags) {
  int exit_code = -1;
  std::string out = RunCommand(
      BuildBinary("tools/bench/imbridge-bench") + " --restart=maybe 2>&1",
      &exit_code);
  EXPECT_EQ(exit_code, 2);
  EXPECT_THAT(out, HasSubstr("usage: imbridge-bench"));
}

}  // namespace
}  // namespace imbridge::tools
