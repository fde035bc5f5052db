// deploy/: the systemd units are hardened and well-formed (checked with
// systemd-analyze when it is installed), and the example configs load into
// their schemas.

#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/config_loader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "imbridge/v1/config.pb.h"
#include "imbridge/v1/webhook_config.pb.h"
#include "tests/integration/router_process.h"

namespace imbridge::testing {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;

std::string SourcePath(const std::string& relative) {
  return absl::StrCat(IMBRIDGE_TEST_SOURCE_DIR, "/", relative);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// A unit file: "Section.Key" -> every value given (in order).
using Unit = std::map<std::string, std::vector<std::string>>;

Unit ParseUnit(const std::string& text) {
  Unit unit;
  std::string section;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      section = std::string(line.substr(1, line.size() - 2));
      continue;
    }
    size_t eq = line.find('=');
    if (eq == absl::string_view::npos) continue;
    std::string key = absl::StrCat(
        section, ".", absl::StripAsciiWhitespace(line.substr(0, eq)));
    unit[key].push_back(
        std::string(absl::StripAsciiWhitespace(line.substr(eq + 1))));
  }
  return unit;
}

std::string Last(const Unit& unit, const std::string& key) {
  auto it = unit.find(key);
  return it == unit.end() || it->second.empty() ? "" : it->second.back();
}

// Space-separated words of every value of `key`.
std::vector<std::string> Words(const Unit& unit, const std::string& key) {
  std::vector<std::string> out;
  auto it = unit.find(key);
  if (it == unit.end()) return out;
  for (const std::string& v : it->second) {
    for (absl::string_view w : absl::StrSplit(v, ' ', absl::SkipEmpty())) {
      out.emplace_back(w);
    }
  }
  return out;
}

const std::vector<std::string>& UnitNames() {
  static const auto* names = new std::vector<std::string>{
      "imbridge-router",          "imbridge-adapter-teamspirit",
      "imbridge-adapter-slack",   "imbridge-adapter-telegram",
      "imbridge-adapter-webhook",
  };
  return *names;
}

TEST(SystemdUnitsTest, EveryUnitIsHardened) {
  for (const std::string& name : UnitNames()) {
    SCOPED_TRACE(name);
    std::string text =
        ReadFile(SourcePath(absl::StrCat("deploy/systemd/", name, ".service")));
    ASSERT_FALSE(text.empty());
    Unit unit = ParseUnit(text);
    EXPECT_TRUE(Last(unit, "Service.DynamicUser") == "yes" ||
                !Last(unit, "Service.User").empty());
    EXPECT_EQ(Last(unit, "Service.ProtectSystem"), "strict");
    EXPECT_EQ(Last(unit, "Service.ProtectHome"), "yes");
    EXPECT_EQ(Last(unit, "Service.PrivateTmp"), "yes");
    EXPECT_EQ(Last(unit, "Service.NoNewPrivileges"), "yes");
    EXPECT_EQ(Last(unit, "Service.ConfigurationDirectory"), "imbridge");
    EXPECT_EQ(Last(unit, "Service.Restart"), "on-failure");
    EXPECT_FALSE(Last(unit, "Service.RestartSec").empty());
    EXPECT_EQ(Last(unit, "Service.CapabilityBoundingSet"), "");
    EXPECT_THAT(Words(unit, "Unit.After"), Contains("network-online.target"));
    EXPECT_THAT(Words(unit, "Unit.Wants"), Contains("network-online.target"));
    EXPECT_THAT(Words(unit, "Install.WantedBy"), Contains("multi-user.target"));
    std::string exec = Last(unit, "Service.ExecStart");
    EXPECT_TRUE(absl::StartsWith(
        exec,
        absl::StrCat("/usr/local/bin/", name, " --config /etc/imbridge/")))
        << exec;
    // Secrets come as credentials, never in the unit itself.
    EXPECT_THAT(Words(unit, "Service.LoadCredential"),
                Contains("adapter-token:/etc/imbridge/credentials/"
                         "adapter-token"));
    EXPECT_TRUE(unit.find("Service.Environment") == unit.end());
    if (name == "imbridge-router") {
      EXPECT_EQ(Last(unit, "Service.StateDirectory"), "imbridge");
    } else {
      EXPECT_THAT(Words(unit, "Unit.After"),
                  Contains("imbridge-router.service"));
    }
  }
}

TEST(SystemdUnitsTest, SystemdAnalyzeVerifyAcceptsThem) {
  const char* analyze = "/usr/bin/systemd-analyze";
  if (access(analyze, X_OK) != 0) {
    GTEST_SKIP() << "systemd-analyze is not installed";
  }
  // verify insists that ExecStart exists: point it at /bin/true in a copy.
  std::string dir = MakeTempDir("units");
  std::string files;
  for (const std::string& name : UnitNames()) {
    std::string text =
        ReadFile(SourcePath(absl::StrCat("deploy/systemd/", name, ".service")));
    text = absl::StrReplaceAll(
        text, {{absl::StrCat("/usr/local/bin/", name), "/bin/true"}});
    std::string path = absl::StrCat(dir, "/", name, ".service");
    std::ofstream(path) << text;
    absl::StrAppend(&files, " ", path);
  }
  std::string command = absl::StrCat(analyze, " verify", files, " 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) output.append(buf, n);
  int status = pclose(pipe);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << output;
  // Warnings about our units would name them.
  EXPECT_THAT(output, ::testing::Not(HasSubstr("imbridge"))) << output;
}

// The examples name their secrets in /etc/imbridge/credentials/ (where the
// units show them too); here they come from a temporary directory.
std::string CredentialsDir() {
  std::string credentials = MakeTempDir("credentials");
  std::ofstream(credentials + "/admin-token") << "admin-token-0123456789\n";
  std::ofstream(credentials + "/adapter-token") << "token-from-systemd\n";
  return credentials;
}

std::string ExampleWithCredentials(const std::string& name,
                                   const std::string& credentials) {
  std::string text = ReadFile(SourcePath(absl::StrCat("deploy/", name)));
  EXPECT_THAT(text, HasSubstr("/etc/imbridge/credentials/"));
  return absl::StrReplaceAll(
      text, {{"/etc/imbridge/credentials/", absl::StrCat(credentials, "/")}});
}

TEST(ExampleConfigsTest, RouterExampleLoads) {
  std::string text =
      ExampleWithCredentials("router.example.yaml", CredentialsDir());
  v1::RouterConfig config;
  absl::Status status = LoadConfigYaml(text, "router.example.yaml", &config);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(config.http().listen(), "127.0.0.1:7701");
  EXPECT_EQ(config.data_dir(), "/var/lib/imbridge");
  EXPECT_EQ(config.admin_token(), "admin-token-0123456789");
  ASSERT_EQ(config.adapters_size(), 1);
  EXPECT_EQ(config.adapters(0).token(), "token-from-systemd");
}

TEST(ExampleConfigsTest, WebhookExampleLoadsWithCredentials) {
  std::string text =
      ExampleWithCredentials("webhook.example.yaml", CredentialsDir());
  v1::WebhookAdapterConfig config;
  absl::Status status = LoadConfigYaml(text, "webhook.example.yaml", &config);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(config.router().token(), "token-from-systemd");
  EXPECT_EQ(config.http().listen(), "127.0.0.1:7714");
  ASSERT_EQ(config.accounts_size(), 1);
  EXPECT_EQ(config.accounts(0).name(), "default");
}

}  // namespace
}  // namespace imbridge::testing
