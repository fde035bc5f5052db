#include "adapters/teamspirit/format.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::adapters::teamspirit {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

TEST(TeamSpiritSplitMessageTest, ShortTextIsOnePiece) {
  EXPECT_THAT(SplitMessage("hello", 10), ElementsAre("hello"));
  EXPECT_THAT(SplitMessage("", 10), ElementsAre(""));
}

TEST(TeamSpiritSplitMessageTest,
     PrefersLineBreaksThenSpacesAndCountsCharacters) {
  EXPECT_THAT(SplitMessage("aaaa\nbbbb cccc", 10),
              ElementsAre("aaaa\n", "bbbb cccc"));
  EXPECT_THAT(SplitMessage("aaaaa bbbbbbb", 8),
              ElementsAre("aaaaa ", "bbbbbbb"));
  // Ten Cyrillic letters are 20 bytes but 10 characters.
  std::string cyr = "ЖЖЖЖЖЖЖЖЖЖЖЖ";  // 12 characters
  std::vector<std::string> pieces = SplitMessage(cyr, 10);
  ASSERT_THAT(pieces, SizeIs(2));
  EXPECT_EQ(CountCharacters(pieces[0]), 10u);
  EXPECT_EQ(pieces[0] + pieces[1], cyr);
}

}  // namespace
}  // namespace imbridge::adapters::teamspirit
