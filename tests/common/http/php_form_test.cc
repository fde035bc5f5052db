// PHP-style nested form bodies, as Bitrix24 posts its events.

#include "common/http/php_form.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge {
namespace {

using nlohmann::json;

TEST(PhpFormTest, NestedKeysArraysAndStrings) {
  absl::StatusOr<json> form = ParsePhpForm(
      "event=ONIMBOTV2MESSAGEADD&data%5Bmessage%5D%5Bid%5D=5"
      "&data[message][text]=hi+%5Bb%5Dthere%5B%2Fb%5D"
      "&data[message][params][files][0][id]=7"
      "&data[message][params][files][1][id]=8&data[list][]=a&data[list][]=b"
      "&auth[application_token]=tok&data[message][isSystem]=");
  ASSERT_TRUE(form.ok()) << form.status();
  EXPECT_EQ(*form, json::parse(R"({
    "event": "ONIMBOTV2MESSAGEADD",
    "data": {"message": {"id": "5", "text": "hi [b]there[/b]", "isSystem": "",
                         "params": {"files": [{"id": "7"}, {"id": "8"}]}},
             "list": ["a", "b"]},
    "auth": {"application_token": "tok"}})"));
}

TEST(PhpFormTest, ObjectsWithOtherKeysStayObjects) {
  absl::StatusOr<json> form = ParsePhpForm("bot[567][id]=567&x[1]=a");
  ASSERT_TRUE(form.ok());
  EXPECT_TRUE((*form)["bot"].is_object());
  EXPECT_EQ((*form)["bot"]["567"]["id"], "567");
  EXPECT_TRUE((*form)["x"].is_object());  // Keys not starting at 0.
}

// Found by fuzz/fuzz_bitrix24_form: a body whose keys were all "0".."n-1"
// came back as a JSON array instead of the form's object.
TEST(PhpFormTest, TheFormItselfIsAlwaysAnObject) {
  absl::StatusOr<json> form = ParsePhpForm("0=a&1=b");
  ASSERT_TRUE(form.ok()) << form.status();
  EXPECT_EQ(*form, json::parse(R"({"0": "a", "1": "b"})"));
  form = ParsePhpForm("&0");
  ASSERT_TRUE(form.ok()) << form.status();
  EXPECT_EQ(*form, json::parse(R"({"0": ""})"));
  form = ParsePhpForm("0[0]=x");
  ASSERT_TRUE(form.ok()) << form.status();
  EXPECT_EQ(*form, json::parse(R"({"0": ["x"]})"));
}

TEST(PhpFormTest, MalformedBodiesAreRefused) {
  EXPECT_FALSE(ParsePhpForm("data[message=1").ok());
  EXPECT_FALSE(ParsePhpForm("data[a]x[b]=1").ok());
  EXPECT_FALSE(ParsePhpForm("a=%zz").ok());
  EXPECT_FALSE(ParsePhpForm("a=%4").ok());
  EXPECT_FALSE(ParsePhpForm("a=1&a[b]=2").ok());
  EXPECT_FALSE(ParsePhpForm("a[b]=2&a=1").ok());
  EXPECT_FALSE(ParsePhpForm("[x]=1").ok());
  EXPECT_TRUE(ParsePhpForm("").ok());
}

}  // namespace
}  // namespace imbridge

namespace imbridge {
namespace {

using nlohmann::json;

// EncodePhpForm writes what ParsePhpForm reads back (scalars as strings),
// as http_build_query would: nested keys, true as 1, nulls left out.
TEST(PhpFormTest, EncodesNestedObjectsThatParseBack) {
  json params = {{"botId", 12},
                 {"dialogId", "chat5"},
                 {"fields",
                  {{"message", "[b]Ann[/b]: a&b=c? 100% ✓\nnext"},
                   {"replyId", 7},
                   {"system", false},
                   {"urlPreview", true},
                   {"none", nullptr}}},
                 {"ids", {3, 4}}};
  std::string form = EncodePhpForm(params);
  EXPECT_EQ(form.find(' '), std::string::npos) << form;
  EXPECT_EQ(form.find('['), std::string::npos) << form;
  EXPECT_THAT(form, ::testing::StartsWith("botId=12&dialogId=chat5&fields%5B"));
  absl::StatusOr<json> back = ParsePhpForm(form);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, json::parse(R"({
    "botId": "12", "dialogId": "chat5",
    "fields": {"message": "[b]Ann[/b]: a&b=c? 100% ✓\nnext", "replyId": "7",
               "system": "0", "urlPreview": "1"},
    "ids": ["3", "4"]})"));
  EXPECT_EQ(EncodePhpForm(json::object()), "");
  EXPECT_EQ(EncodePhpForm(json::array({1})), "");
}

}  // namespace
}  // namespace imbridge
