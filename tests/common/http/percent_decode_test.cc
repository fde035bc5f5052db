#include "common/http/percent_decode.h"

#include "gtest/gtest.h"

namespace imbridge {
namespace {

TEST(PercentDecodeTest, EscapesAndPlus) {
  EXPECT_EQ(PercentDecode("a%20b+c%2", false), "a b+c%2");
  EXPECT_EQ(PercentDecode("a%20b+c%zz", true), "a b c%zz");
}

TEST(PercentDecodeTest, BothCasesOfHexAndEscapesAtTheEnd) {
  EXPECT_EQ(PercentDecode("%41%4a%4A", false), "AJJ");
  EXPECT_EQ(PercentDecode("x%41", false), "xA");
  EXPECT_EQ(PercentDecode("x%4", false), "x%4");
  EXPECT_EQ(PercentDecode("%", true), "%");
  EXPECT_EQ(PercentDecode("%E2%9C%93", false), "\xE2\x9C\x93");
}

}  // namespace
}  // namespace imbridge
