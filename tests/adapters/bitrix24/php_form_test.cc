// PHP-style nested form bodies, as Bitrix24 posts its events.

#include "adapters/bitrix24/php_form.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::adapters::bitrix24 {
namespace {

using nlohmann::json;

TEST(Bitrix24PhpFormTest, NestedKeysArraysAndStrings) {
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

TEST(Bitrix24PhpFormTest, ObjectsWithOtherKeysStayObjects) {
  absl::StatusOr<json> form = ParsePhpForm("bot[567][id]=567&x[1]=a");
  ASSERT_TRUE(form.ok());
  EXPECT_TRUE((*form)["bot"].is_object());
  EXPECT_EQ((*form)["bot"]["567"]["id"], "567");
  EXPECT_TRUE((*form)["x"].is_object());  // Keys not starting at 0.
}

// Found by fuzz/fuzz_bitrix24_form: a body whose keys were all "0".."n-1"
// came back as a JSON array instead of the form's object.
TEST(Bitrix24PhpFormTest, TheFormItselfIsAlwaysAnObject) {
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

TEST(Bitrix24PhpFormTest, MalformedBodiesAreRefused) {
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
}  // namespace imbridge::adapters::bitrix24
