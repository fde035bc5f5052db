#include "common/file_size.h"

#include "gtest/gtest.h"

namespace imbridge {
namespace {

TEST(FileSizeTextTest, PicksTheUnit) {
  EXPECT_EQ(FileSizeText(0), "0 B");
  EXPECT_EQ(FileSizeText(1023), "1023 B");
  EXPECT_EQ(FileSizeText(1024), "1 KB");
  EXPECT_EQ(FileSizeText(14 * 1024 + 100), "14 KB");
  EXPECT_EQ(FileSizeText(2202010), "2.1 MB");
  EXPECT_EQ(FileSizeText(3ull << 30), "3.0 GB");
}

}  // namespace
}  // namespace imbridge
