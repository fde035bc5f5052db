#include "common/http/url_origin.h"

#include "gtest/gtest.h"

namespace imbridge {
namespace {

TEST(ParseUrlOriginTest, SchemeHostAndDefaultOrExplicitPort) {
  absl::StatusOr<UrlOrigin> o =
      ParseUrlOrigin("HTTPS://Files.Slack.com/files-pri/T1/a?t=secret");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->scheme, "https");
  EXPECT_EQ(o->host, "files.slack.com");
  EXPECT_EQ(o->port, 443);
  EXPECT_FALSE(o->has_user_info);
  EXPECT_EQ(o->ForLog(), "https://files.slack.com:443");

  o = ParseUrlOrigin("http://127.0.0.1:8080/x");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->port, 8080);
  EXPECT_EQ(ParseUrlOrigin("http://h/")->port, 80);
  EXPECT_EQ(ParseUrlOrigin("ws://h/socket")->port, 80);
  EXPECT_EQ(ParseUrlOrigin("wss://wss-primary.slack.com/link?t=1")->port, 443);
  EXPECT_EQ(ParseUrlOrigin("http://[::1]:9000/")->host, "[::1]");
}

TEST(ParseUrlOriginTest, SameOriginComparesSchemeHostAndPort) {
  EXPECT_EQ(*ParseUrlOrigin("https://a.example/x"),
            *ParseUrlOrigin("https://A.example:443/y"));
  EXPECT_NE(*ParseUrlOrigin("https://a.example/"),
            *ParseUrlOrigin("http://a.example/"));
  EXPECT_NE(*ParseUrlOrigin("https://a.example/"),
            *ParseUrlOrigin("https://a.example:8443/"));
  EXPECT_NE(*ParseUrlOrigin("https://a.example/"),
            *ParseUrlOrigin("https://a.example.evil.org/"));
}

TEST(ParseUrlOriginTest, UserInfoIsNoticed) {
  absl::StatusOr<UrlOrigin> o = ParseUrlOrigin("https://user@h.example/x");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE(o->has_user_info);
  EXPECT_EQ(o->host, "h.example");
  EXPECT_TRUE(ParseUrlOrigin("https://u:p@h.example/")->has_user_info);
}

TEST(ParseUrlOriginTest, RejectsWhatIsNotAnAbsoluteWebUrl) {
  for (const char* url :
       {"not a url", "files.slack.com/x", "ftp://h/x", "file:///etc/passwd",
        "https://", "http://h:99999/", "javascript:alert(1)", ""}) {
    absl::StatusOr<UrlOrigin> o = ParseUrlOrigin(url);
    EXPECT_FALSE(o.ok()) << url;
    EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument) << url;
  }
}

}  // namespace
}  // namespace imbridge
