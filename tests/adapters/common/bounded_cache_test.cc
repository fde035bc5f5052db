#include "adapters/common/bounded_cache.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::adapters {
namespace {

using ::testing::ElementsAre;

using Cache = BoundedCache<std::string, int>;

// The keys from the most to the least recently used.
std::vector<std::string> Keys(const Cache& cache) {
  std::vector<std::string> out;
  for (const auto& [key, value] : cache) out.push_back(key);
  return out;
}

TEST(BoundedCacheTest, ANewKeyInAFullCacheEvictsTheLeastRecentlyUsed) {
  Cache cache(3);
  cache.Put("a", 1);
  cache.Put("b", 2);
  cache.Put("c", 3);
  EXPECT_EQ(cache.size(), 3u);
  cache.Put("d", 4);
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.Find("a"), nullptr);
  EXPECT_THAT(Keys(cache), ElementsAre("d", "c", "b"));
}

TEST(BoundedCacheTest, FindMakesAnEntryRecentPeekDoesNot) {
  Cache cache(3);
  cache.Put("a", 1);
  cache.Put("b", 2);
  cache.Put("c", 3);
  ASSERT_NE(cache.Find("a"), nullptr);
  EXPECT_EQ(*cache.Find("a"), 1);
  ASSERT_NE(cache.Peek("b"), nullptr);
  EXPECT_EQ(*cache.Peek("b"), 2);
  cache.Put("d", 4);  // Evicts b: a was found, b only peeked at.
  EXPECT_EQ(cache.Peek("b"), nullptr);
  EXPECT_THAT(Keys(cache), ElementsAre("d", "a", "c"));
  const Cache& read_only = cache;
  EXPECT_EQ(*read_only.Peek("c"), 3);
  EXPECT_EQ(read_only.Peek("zz"), nullptr);
}

TEST(BoundedCacheTest, PutOfAKnownKeyReplacesWithoutEvicting) {
  Cache cache(2);
  cache.Put("a", 1);
  cache.Put("b", 2);
  EXPECT_EQ(cache.Put("a", 10), 10);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_THAT(Keys(cache), ElementsAre("a", "b"));
  cache.Put("c", 3);  // b is now the least recently used.
  EXPECT_THAT(Keys(cache), ElementsAre("c", "a"));
  EXPECT_EQ(*cache.Find("a"), 10);
}

TEST(BoundedCacheTest, EraseByKeyAndWhileIterating) {
  Cache cache(10);
  for (int i = 0; i < 6; ++i) cache.Put(std::to_string(i), i);
  EXPECT_TRUE(cache.Erase("3"));
  EXPECT_FALSE(cache.Erase("3"));
  for (auto it = cache.begin(); it != cache.end();) {
    it = it->second % 2 == 0 ? cache.Erase(it) : std::next(it);
  }
  EXPECT_THAT(Keys(cache), ElementsAre("5", "1"));
  // Erased keys are gone from the index too: they can come back.
  cache.Put("4", 44);
  EXPECT_EQ(*cache.Find("4"), 44);
  EXPECT_EQ(cache.size(), 3u);
}

TEST(BoundedCacheTest, LooksUpByStringView) {
  Cache cache(2);
  cache.Put("chat-1", 7);
  absl::string_view key = "chat-1";
  ASSERT_NE(cache.Find(key), nullptr);
  EXPECT_EQ(*cache.Peek(key), 7);
  EXPECT_TRUE(cache.Erase(key));
  EXPECT_TRUE(cache.empty());
}

TEST(BoundedCacheTest, ZeroCapacityHoldsOneEntry) {
  Cache cache(0);
  EXPECT_EQ(cache.capacity(), 1u);
  cache.Put("a", 1);
  cache.Put("b", 2);
  EXPECT_THAT(Keys(cache), ElementsAre("b"));
}

TEST(BoundedCacheTest, ValuesStayPutAndMayBeMoveOnly) {
  BoundedCache<std::string, std::unique_ptr<int>> cache(100);
  std::unique_ptr<int>& first = cache.Put("first", std::make_unique<int>(1));
  int* value = first.get();
  for (int i = 0; i < 50; ++i) {
    cache.Put(std::to_string(i), std::make_unique<int>(i));
  }
  std::unique_ptr<int>* again = cache.Peek("first");
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again, &first);
  EXPECT_EQ(again->get(), value);
}

TEST(BoundedCacheTest, StaysBoundedUnderManyKeys) {
  Cache cache(64);
  for (int i = 0; i < 10000; ++i) {
    cache.Put(std::to_string(i), i);
    if (i % 3 == 0) cache.Find(std::to_string(i / 2));
  }
  EXPECT_EQ(cache.size(), 64u);
  size_t seen = 0;
  for (const auto& [key, value] : cache) {
    EXPECT_NE(cache.Peek(key), nullptr);
    EXPECT_EQ(std::to_string(value), key);
    ++seen;
  }
  EXPECT_EQ(seen, 64u);
  EXPECT_EQ(*cache.Peek("9999"), 9999);
}

}  // namespace
}  // namespace imbridge::adapters
