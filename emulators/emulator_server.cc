#include "emulators/emulator_server.h"

#include "absl/strings/str_cat.h"

namespace imbridge::fakes {

EmulatorServer::~EmulatorServer() { Stop(); }

absl::Status EmulatorServer::Start(const HttpServer::Options& options,
                                   const std::vector<EmulatorRoute>& routes) {
  if (server_ != nullptr) {
    return absl::FailedPreconditionError("the emulator was started twice");
  }
  host_ = options.host;
  server_ = std::make_unique<HttpServer>(options);
  for (const EmulatorRoute& route : routes) {
    server_->HandlePrefix(route.method, route.prefix, route.handler);
  }
  return server_->Start();
}

void EmulatorServer::Stop() {
  if (server_ != nullptr) server_->Stop();
}

uint16_t EmulatorServer::port() const {
  return server_ == nullptr ? 0 : server_->port();
}

std::string EmulatorServer::base_url() const {
  return absl::StrCat("http://", host_, ":", port());
}

}  // namespace imbridge::fakes
