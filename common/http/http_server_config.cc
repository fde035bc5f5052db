#include "common/http/http_server_config.h"

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/config_loader.h"

namespace imbridge {

absl::Status ValidateHttpServerLimits(absl::string_view source,
                                      const v1::HttpServerOptions& http) {
  if (http.max_body_bytes() > kMaxHttpBodyBytes) {
    return ConfigError(
        source, "http.max_body_bytes",
        absl::StrCat("must be at most ", kMaxHttpBodyBytes, " (64 MiB)"));
  }
  if (http.header_timeout_ms() != 0 &&
      (http.header_timeout_ms() < kMinHttpHeaderTimeoutMs ||
       http.header_timeout_ms() > kMaxHttpHeaderTimeoutMs)) {
    return ConfigError(
        source, "http.header_timeout_ms",
        absl::StrCat("must be between ", kMinHttpHeaderTimeoutMs, " and ",
                     kMaxHttpHeaderTimeoutMs, " (0: the default, 10000)"));
  }
  if (http.max_connections() > kMaxHttpConnections) {
    return ConfigError(source, "http.max_connections",
                       absl::StrCat("must be at most ", kMaxHttpConnections,
                                    " (0: the default, 4096)"));
  }
  return absl::OkStatus();
}

void ApplyHttpServerLimits(const v1::HttpServerOptions& http,
                           HttpServer::Options* options) {
  if (http.max_body_bytes() > 0)
    options->max_body_bytes = http.max_body_bytes();
  if (http.header_timeout_ms() > 0) {
    options->header_timeout = absl::Milliseconds(http.header_timeout_ms());
  }
  if (http.max_connections() > 0) {
    options->max_connections = http.max_connections();
  }
}

}  // namespace imbridge
