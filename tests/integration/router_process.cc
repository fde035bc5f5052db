#include "tests/integration/router_process.h"

#include <stdlib.h>

#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/http/http_client.h"

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

absl::StatusOr<double> RouterProcess::Metric(
    const std::string& name,
    const std::vector<std::pair<std::string, std::string>>& labels) const {
  HttpClient http;
  auto r = http.Get(absl::StrCat("http://127.0.0.1:", http_port(), "/metrics"));
  if (!r.ok()) return r.status();
  if (r->status != 200) {
    return absl::UnavailableError(absl::StrCat("/metrics: HTTP ", r->status));
  }
  double sum = 0;
  for (absl::string_view line : absl::StrSplit(r->body, '\n')) {
    if (!absl::StartsWith(line, absl::StrCat(name, "{")) &&
        !absl::StartsWith(line, absl::StrCat(name, " "))) {
      continue;
    }
    bool match = true;
    for (const auto& [label, value] : labels) {
      match = match &&
              absl::StrContains(line, absl::StrCat(label, "=\"", value, "\""));
    }
    double v = 0;
    size_t space = line.rfind(' ');
    if (match && space != absl::string_view::npos &&
        absl::SimpleAtod(line.substr(space + 1), &v)) {
      sum += v;
    }
  }
  return sum;
}

bool RouterProcess::WaitForMetric(
    const std::string& name,
    const std::vector<std::pair<std::string, std::string>>& labels,
    double at_least, absl::Duration timeout) const {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    absl::StatusOr<double> value = Metric(name, labels);
    if (value.ok() && *value >= at_least) return true;
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
}

std::string RouterProcess::ReadLog() const {
  return ReadWholeFile(dir_ + "/router.log");
}

}  // namespace imbridge::testing
