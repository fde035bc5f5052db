#include "common/bounded_labels.h"

#include <string>

#include "gtest/gtest.h"

namespace imbridge::metrics {
namespace {

TEST(BoundedLabelValuesTest, KeepsTheFirstNamesAndCallsTheRestOther) {
  BoundedLabelValues values(2);
  EXPECT_EQ(values.Of("ONIMBOTV2JOINCHAT"), "ONIMBOTV2JOINCHAT");
  EXPECT_EQ(values.Of("reaction.added"), "reaction.added");
  // Full: a third name is "other", the kept ones stay themselves.
  EXPECT_EQ(values.Of("ONIMBOTV2COMMANDADD"), "other");
  EXPECT_EQ(values.Of("ONIMBOTV2JOINCHAT"), "ONIMBOTV2JOINCHAT");
}

TEST(BoundedLabelValuesTest, WhatIsNoNameNeverTakesAPlace) {
  BoundedLabelValues values(1);
  EXPECT_EQ(values.Of(""), "other");
  EXPECT_EQ(values.Of("a b"), "other");
  EXPECT_EQ(values.Of("type\"} 1\nforged_total{"), "other");
  EXPECT_EQ(values.Of(std::string(65, 'A')), "other");
  EXPECT_EQ(values.Of(std::string(64, 'A')), std::string(64, 'A'));
}

}  // namespace
}  // namespace imbridge::metrics
