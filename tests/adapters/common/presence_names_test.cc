#include "adapters/common/presence_names.h"

#include "gtest/gtest.h"

namespace imbridge::adapters {
namespace {

TEST(PresenceNamesTest, NamesAndBack) {
  EXPECT_EQ(PresenceName(v1::ONLINE), "online");
  EXPECT_EQ(PresenceName(v1::AWAY), "away");
  EXPECT_EQ(PresenceName(v1::DND), "dnd");
  EXPECT_EQ(PresenceName(v1::OFFLINE), "offline");
  for (v1::Presence p : {v1::ONLINE, v1::AWAY, v1::DND, v1::OFFLINE}) {
    EXPECT_EQ(PresenceFromName(PresenceName(p)), p);
  }
}

TEST(PresenceNamesTest, UnspecifiedAndUnknown) {
  EXPECT_EQ(PresenceName(v1::PRESENCE_UNSPECIFIED), "");
  EXPECT_EQ(PresenceName(static_cast<v1::Presence>(99)), "");
  EXPECT_EQ(PresenceFromName(""), v1::PRESENCE_UNSPECIFIED);
  EXPECT_EQ(PresenceFromName("Online"), v1::PRESENCE_UNSPECIFIED);
  EXPECT_EQ(PresenceFromName("busy"), v1::PRESENCE_UNSPECIFIED);
}

}  // namespace
}  // namespace imbridge::adapters
