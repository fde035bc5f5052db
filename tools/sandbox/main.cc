// imbridge-sandbox: emulated TeamSpirit, Slack, Telegram (and Bitrix24)
// servers for the real adapters, and a web page to chat as their users and
// watch the bridge mirror everything (docs/quickstart.md).
//
//   imbridge-sandbox --config sandbox.yaml [--check-config]

#include <signal.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "tools/sandbox/sandbox.h"
#include "tools/sandbox/sandbox_config.h"
#include "tools/sandbox/web_server.h"

namespace {

constexpr char kUsage[] =
    "usage: imbridge-sandbox --config FILE [--check-config]\n";

// The page's directory when the config names none: the source tree's
// tools/sandbox/web the binary was built from, or, for an installed binary
// (cmake --install, the .deb, the container image), share/imbridge/sandbox/web
// beside its bin/.
std::string DefaultWebDir() {
  std::error_code error;
  if (std::filesystem::is_directory(IMBRIDGE_SANDBOX_WEB_DIR, error)) {
    return IMBRIDGE_SANDBOX_WEB_DIR;
  }
  std::filesystem::path exe =
      std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) return IMBRIDGE_SANDBOX_WEB_DIR;
  std::filesystem::path installed =
      exe.parent_path().parent_path() / "share/imbridge/sandbox/web";
  return std::filesystem::is_directory(installed, error)
             ? installed.string()
             : IMBRIDGE_SANDBOX_WEB_DIR;
}

// Writes `text` to `path` through a temporary file, so that a reader never
// sees half of it.
bool WriteAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out.good()) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
      config_path = argv[++i];
    } else if (std::strcmp(argv[i], "--check-config") == 0) {
      check_only = true;
    } else {
      std::fputs(kUsage, stderr);
      return 2;
    }
  }
  if (config_path.empty()) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  absl::StatusOr<imbridge::v1::SandboxConfig> config =
      imbridge::sandbox::LoadSandboxConfig(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "imbridge-sandbox: %s\n",
                 std::string(config.status().message()).c_str());
    return 1;
  }
  if (check_only) {
    std::printf("%s: ok\n", config_path.c_str());
    return 0;
  }
  imbridge::InitLogging("sandbox", "",
                        imbridge::ParseLogLevel(config->log_level())
                            .value_or(imbridge::LogLevel::kInfo));

  const std::string& listen = config->listen();
  const size_t colon = listen.rfind(':');
  uint32_t port = 0;
  if (!absl::SimpleAtoi(listen.substr(colon + 1), &port) || port > 65535) {
    std::fprintf(stderr, "imbridge-sandbox: %s: listen: bad port\n",
                 config_path.c_str());
    return 1;
  }
  const std::string host = listen.substr(0, colon);

  // Signals are taken with sigwait() below; block them in every thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::string web_dir = config->web_dir();
  if (web_dir.empty()) web_dir = DefaultWebDir();

  imbridge::sandbox::Sandbox sandbox(*config);
  if (absl::Status s = sandbox.Start(); !s.ok()) {
    imbridge::LogError("cannot start the emulated messengers",
                       {{"reason", s.message()}});
    return 1;
  }
  imbridge::sandbox::WebServer web(&sandbox, web_dir, host,
                                   static_cast<uint16_t>(port));
  if (absl::Status s = web.Start(); !s.ok()) {
    imbridge::LogError("cannot serve the page",
                       {{"listen", listen}, {"reason", s.message()}});
    std::fprintf(stderr,
                 "imbridge-sandbox: cannot listen on %s (is the port in use?)"
                 "\n",
                 listen.c_str());
    return 1;
  }
  const std::string page = absl::StrCat("http://", host, ":", web.port(), "/");
  if (!config->endpoints_file().empty()) {
    std::string text = absl::StrCat("PAGE_URL='", page, "'\n");
    for (const auto& [key, value] : sandbox.Endpoints()) {
      absl::StrAppend(&text, key, "='", value, "'\n");
    }
    if (!WriteAtomically(config->endpoints_file(), text)) {
      imbridge::LogError("cannot write the endpoints file",
                         {{"path", config->endpoints_file()}});
      return 1;
    }
  }
  imbridge::LogInfo("sandbox ready", {{"page", page}});

  int signal = 0;
  sigwait(&signals, &signal);
  imbridge::LogInfo("stopping", {{"signal", strsignal(signal)}});
  web.Stop();
  sandbox.Stop();
  return 0;
}
