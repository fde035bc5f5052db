#include "common/utf8.h"

#include <string>

#include "gtest/gtest.h"
#include "imbridge/v1/events.pb.h"

namespace imbridge {
namespace {

TEST(IsValidUtf8Test, AcceptsWellFormedText) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("caf\xC3\xA9"));              // é
  EXPECT_TRUE(IsValidUtf8("\xE2\x82\xAC 5"));           // €
  EXPECT_TRUE(IsValidUtf8("\xF0\x9F\x93\x8E report"));  // 📎
  EXPECT_TRUE(IsValidUtf8("\xED\x9F\xBF"));             // U+D7FF
  EXPECT_TRUE(IsValidUtf8("\xF4\x8F\xBF\xBF"));         // U+10FFFF
  EXPECT_TRUE(IsValidUtf8(std::string("nul\0inside", 10)));
}

TEST(IsValidUtf8Test, RejectsMalformedTextAndSaysWhere) {
  struct Case {
    std::string text;
    size_t offset;
  };
  const Case cases[] = {
      {"ab\x80", 2},            // lone continuation byte
      {"\xC3", 0},              // truncated two-byte sequence
      {"x\xE2\x82", 1},         // truncated three-byte sequence
      {"\xC0\xAF", 0},          // overlong '/'
      {"\xE0\x80\xAF", 0},      // overlong, three bytes
      {"\xF0\x80\x80\xAF", 0},  // overlong, four bytes
      {"ok \xED\xA0\x80", 3},   // UTF-16 surrogate U+D800
      {"\xF4\x90\x80\x80", 0},  // above U+10FFFF
      {"\xF5\x80\x80\x80", 0},  // invalid lead byte
      {"\xFF", 0},              // never in UTF-8
      {"caf\xC3\xA9\xC3(", 5},  // bad continuation after a good char
  };
  for (const Case& c : cases) {
    size_t offset = 999;
    EXPECT_FALSE(IsValidUtf8(c.text, &offset)) << c.text;
    EXPECT_EQ(offset, c.offset) << c.text;
  }
}

TEST(IsUtf8BoundaryTest, FindsCharacterBoundaries) {
  const std::string text = "a\xC3\xA9\xF0\x9F\x93\x8E";  // a é 📎
  EXPECT_TRUE(IsUtf8Boundary(text, 0));
  EXPECT_TRUE(IsUtf8Boundary(text, 1));
  EXPECT_FALSE(IsUtf8Boundary(text, 2));
  EXPECT_TRUE(IsUtf8Boundary(text, 3));
  EXPECT_FALSE(IsUtf8Boundary(text, 4));
  EXPECT_FALSE(IsUtf8Boundary(text, 6));
  EXPECT_TRUE(IsUtf8Boundary(text, 7));
  EXPECT_FALSE(IsUtf8Boundary(text, 8));
  EXPECT_TRUE(IsUtf8Boundary("", 0));
}

TEST(ToValidUtf8Test, ReplacesBadSequencesOnly) {
  EXPECT_EQ(ToValidUtf8("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_EQ(ToValidUtf8("a\xFF"
                        "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(ToValidUtf8("\xE2\x82 x"), "\xEF\xBF\xBD x");
  EXPECT_EQ(ToValidUtf8("end\xC3"), "end\xEF\xBF\xBD");
  EXPECT_TRUE(IsValidUtf8(ToValidUtf8("\xC0\xAF\xED\xA0\x80\xF5")));
}

// Strings are set through the generated setters, which (like the wire
// format's writer) store bytes as given.
TEST(FindInvalidUtf8FieldTest, NamesTheFirstBadField) {
  v1::Event event;
  event.set_key("k");
  event.mutable_posted()->mutable_text()->set_text("fine \xF0\x9F\x93\x8E");
  event.mutable_posted()->add_attachments()->set_name("a.txt");
  EXPECT_EQ(FindInvalidUtf8Field(event), "");

  event.mutable_posted()->add_attachments()->set_name("b\xFF.txt");
  EXPECT_EQ(FindInvalidUtf8Field(event), "posted.attachments[1].name");
  event.mutable_posted()->mutable_text()->set_text("bad \xC3(");
  EXPECT_EQ(FindInvalidUtf8Field(event), "posted.text.text");
  event.set_key("\x80");
  EXPECT_EQ(FindInvalidUtf8Field(event), "key");
}

}  // namespace
}  // namespace imbridge
