#include "tests/integration/adapter_process.h"

#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "tests/integration/router_process.h"

namespace imbridge::testing {

AdapterProcess::AdapterProcess(std::string binary, std::string config_body)
    : binary_(std::move(binary)),
      config_body_(std::move(config_body)),
      dir_(MakeTempDir("imbridge-adapter")) {}

std::string AdapterProcess::base_url() const {
  return absl::StrCat("http://127.0.0.1:", port_);
}

absl::Status AdapterProcess::Start() {
  std::string port_file = dir_ + "/adapter.port";
  {
    std::ofstream out(config_path());
    out << config_body_ << "\n"
        << "http:\n"
        << "  listen: 127.0.0.1:" << port_ << "\n"
        << "  port_file: " << port_file << "\n";
    for (absl::string_view field :
         absl::StrSplit(http_fields_, '\n', absl::SkipEmpty())) {
      out << "  " << field << "\n";
    }
  }
  return process_.Start(BuildPath(binary_), config_path(),
                        dir_ + "/adapter.log", port_file, &port_);
}

void AdapterProcess::Kill() { process_.Kill(); }

int AdapterProcess::Terminate(absl::Duration timeout) {
  return process_.Terminate(timeout);
}

std::string AdapterProcess::ReadLog() const {
  return ReadWholeFile(dir_ + "/adapter.log");
}

}  // namespace imbridge::testing
