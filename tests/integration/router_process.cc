#include "tests/integration/router_process.h"

#include <stdlib.h>

#include <fstream>

#include "absl/strings/str_cat.h"

namespace imbridge::testing {

std::string BuildPath(const std::string& relative) {
  const char* build = std::getenv("IMBRIDGE_BUILD_DIR");
  return absl::StrCat(build != nullptr ? build : ".", "/", relative);
}

std::string MakeTempDir(const std::string& prefix) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string tmpl =
      absl::StrCat(base != nullptr ? base : "/tmp", "/", prefix, "-XXXXXX");
  if (mkdtemp(tmpl.data()) == nullptr) abort();
  return tmpl;
}

RouterProcess::RouterProcess(std::string config_body)
    : config_body_(std::move(config_body)),
      dir_(MakeTempDir("imbridge-router")) {}

std::string RouterProcess::address() const {
  return absl::StrCat("127.0.0.1:", port_);
}

absl::Status RouterProcess::Start() {
  std::string config_path = dir_ + "/router.yaml";
  {
    std::ofstream out(config_path);
    out << "listen: 127.0.0.1:" << port_ << "\n"
        << "data_dir: " << data_dir() << "\n"
        << config_body_ << "\n";
    // The HTTP server (metrics) on a free port too, unless the test sets it.
    if (config_body_.rfind("http:", 0) != 0 &&
        config_body_.find("\nhttp:") == std::string::npos) {
      out << "http: {listen: '127.0.0.1:0'}\n";
    }
  }
  return process_.Start(BuildPath("bridge/imbridge-router"), config_path,
                        dir_ + "/router.log", data_dir() + "/router.port",
                        &port_);
}

void RouterProcess::Kill() { process_.Kill(); }

int RouterProcess::Terminate(absl::Duration timeout) {
  return process_.Terminate(timeout);
}

int RouterProcess::http_port() const {
  std::ifstream in(data_dir() + "/router.http.port");
  int port = 0;
  in >> port;
  return port;
}

std::string RouterProcess::ReadLog() const {
  return ReadWholeFile(dir_ + "/router.log");
}

}  // namespace imbridge::testing
