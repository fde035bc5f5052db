// `--check-config` of the real binaries: a good file passes with exit 0, and
// each kind of bad file (unknown field, missing required field, bad value,
// unset environment variable, missing secret file) stops the process with
// exit 1 and a message naming the file, the field path and the reason.

#include <stdio.h>
#include <sys/wait.h>

#include <fstream>
#include <iterator>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/router_process.h"

namespace imbridge::testing {
namespace {

using ::testing::HasSubstr;

struct Outcome {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs `BINARY --config FILE --check-config`, or with `file_after_check`
// the short form `BINARY --check-config FILE`.
Outcome CheckConfig(const std::string& binary, const std::string& yaml,
                    bool file_after_check = false) {
  static int n = 0;
  std::string dir = MakeTempDir("config-check");
  std::string path = absl::StrCat(dir, "/config-", ++n, ".yaml");
  std::ofstream(path) << yaml;
  std::string command =
      file_after_check
          ? absl::StrCat(BuildPath(binary), " --check-config ", path, " 2>&1")
          : absl::StrCat(BuildPath(binary), " --config ", path,
                         " --check-config 2>&1");
  Outcome out;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  char buf[4096];
  size_t got;
  while ((got = fread(buf, 1, sizeof(buf), pipe)) > 0)
    out.output.append(buf, got);
  int status = pclose(pipe);
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

constexpr char kRouter[] = "bridge/imbridge-router";

std::string RouterYaml(const std::string& extra) {
  return absl::StrCat(
      "data_dir: /tmp/imbridge-config-check\n"
      "adapters: [{name: a, token: \"0123456789abcdef0123\"}]\n",
      extra);
}

TEST(ConfigCheckTest, GoodRouterConfigPasses) {
  Outcome out = CheckConfig(kRouter, RouterYaml(R"(links:
  - name: l
    members:
      - {platform: slack, account: a, chat_id: C1}
      - {platform: telegram, account: b, chat_id: "-100", direction: out}
)"));
  EXPECT_EQ(out.exit_code, 0) << out.output;
  EXPECT_THAT(out.output, HasSubstr(": OK"));
}

TEST(ConfigCheckTest, CheckConfigAlsoTakesTheFileItself) {
  Outcome good = CheckConfig(kRouter, RouterYaml(""), true);
  EXPECT_EQ(good.exit_code, 0) << good.output;
  EXPECT_THAT(good.output, HasSubstr(": OK"));
  Outcome bad = CheckConfig(kRouter, RouterYaml("lisen: x\n"), true);
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_THAT(bad.output, HasSubstr("lisen"));
  Outcome adapter = CheckConfig("adapters/webhook/imbridge-adapter-webhook",
                                "routr: {}\n", true);
  EXPECT_EQ(adapter.exit_code, 1) << adapter.output;
  EXPECT_THAT(adapter.output, HasSubstr("routr"));
}

TEST(ConfigCheckTest, UnknownFieldIsNamedWithItsPath) {
  Outcome out = CheckConfig(kRouter, RouterYaml("dispatch: {windw: 3}\n"));
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_THAT(out.output, HasSubstr("dispatch.windw"));
  EXPECT_THAT(out.output, HasSubstr("config-"));  // the file
}

TEST(ConfigCheckTest, MissingRequiredFieldIsNamed) {
  Outcome out = CheckConfig(kRouter,
                            "adapters: [{name: a, token: "
                            "\"0123456789abcdef0123\"}]\n");
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_THAT(out.output, HasSubstr("data_dir: required"));
  out = CheckConfig(kRouter, RouterYaml(R"(links:
  - name: l
    members:
      - {platform: slack, account: a}
      - {platform: telegram, account: b, chat_id: "1"}
)"));
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_THAT(out.output, HasSubstr("links[0].members[0].chat_id"));
}

TEST(ConfigCheckTest, BadValuesAreNamedWithTheReason) {
  Outcome out = CheckConfig(kRouter, RouterYaml(R"(links:
  - name: l
    members:
      - {platform: slack, account: a, chat_id: C1, direction: sideways}
      - {platform: telegram, account: b, chat_id: "1"}
)"));
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_THAT(out.output, HasSubstr("links[0].members[0].direction"));
  EXPECT_THAT(out.output, HasSubstr("sideways"));

  out = CheckConfig(kRouter, RouterYaml("dispatch: {window: lots}\n"));
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_THAT(out.output, HasSubstr("dispatch.window"));

  out = CheckConfig(kRouter, RouterYaml("store: {read_connections: 65}\n"));
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_THAT(out.output, HasSubstr("store.read_connections: must be 1 to 64"));

  out = CheckConfig(kRouter, RouterYaml("admin_token: short\n"));
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_THAT(out.output, HasSubstr("admin_token: too short"));
  EXPECT_THAT(out.output, ::testing::Not(HasSubstr("short\n")));
}

TEST(ConfigCheckTest, SecretsFromUnsetVariablesOrMissingFilesAreNamed) {
  Outcome out = CheckConfig(
      kRouter, RouterYaml("admin_token: ${IMBRIDGE_TEST_SURELY_UNSET_VAR}\n"));
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_THAT(out.output, HasSubstr("IMBRIDGE_TEST_SURELY_UNSET_VAR"));

  out = CheckConfig(kRouter,
                    RouterYaml("admin_token_file: /nonexistent/admin-token\n"));
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_THAT(out.output, HasSubstr("admin_token_file"));
  EXPECT_THAT(out.output, HasSubstr("/nonexistent/admin-token"));
}

// The three-router example (deploy/ha/router-*.yaml) passes as shipped,
// with its secret files present (here in a temporary directory instead of
// /etc/imbridge/credentials); a relative store.postgres.blob_dir, which
// would name a different directory on each router, does not.
TEST(ConfigCheckTest, HighlyAvailableRouterExamplesPass) {
  const std::string credentials = MakeTempDir("ha-credentials");
  for (const char* name : {"admin-token", "adapter-token", "pg-password"}) {
    std::ofstream(absl::StrCat(credentials, "/", name))
        << "0123456789abcdef0123456789\n";
  }
  for (int n = 1; n <= 3; ++n) {
    std::ifstream in(absl::StrCat(IMBRIDGE_TEST_SOURCE_DIR,
                                  "/deploy/ha/router-", n, ".yaml"));
    std::string yaml((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
    ASSERT_FALSE(yaml.empty()) << "router-" << n;
    yaml =
        absl::StrReplaceAll(yaml, {{"/etc/imbridge/credentials", credentials}});
    Outcome out = CheckConfig(kRouter, yaml);
    EXPECT_EQ(out.exit_code, 0) << "router-" << n << ": " << out.output;
    if (n == 1) {
      out = CheckConfig(
          kRouter, absl::StrReplaceAll(yaml, {{"blob_dir: /srv/imbridge-blobs",
                                               "blob_dir: imbridge-blobs"}}));
      EXPECT_EQ(out.exit_code, 1);
      EXPECT_THAT(out.output,
                  HasSubstr("store.postgres.blob_dir: must be an absolute"));
    }
  }
}

}  // namespace
}  // namespace imbridge::testing
