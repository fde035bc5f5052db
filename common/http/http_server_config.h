#ifndef IMBRIDGE_COMMON_HTTP_HTTP_SERVER_CONFIG_H_
#define IMBRIDGE_COMMON_HTTP_HTTP_SERVER_CONFIG_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/http/http_server.h"
#include "imbridge/v1/config.pb.h"

// The limits of the `http:` block every process's config has
// (v1::HttpServerOptions: the router's and each adapter's HTTP server):
// body size, header timeout and open connections. The router and the
// adapters check and apply them through these two functions, so that the
// rules and defaults are the same everywhere (docs/configuration.md).
// Pure functions; thread-safe.

namespace imbridge {

// Upper bounds of the limits (a zero field means the HttpServer default).
inline constexpr uint64_t kMaxHttpBodyBytes = 64u << 20;
inline constexpr uint32_t kMinHttpHeaderTimeoutMs = 100;
inline constexpr uint32_t kMaxHttpHeaderTimeoutMs = 300000;
inline constexpr uint32_t kMaxHttpConnections = 65536;

// OK when every limit of `http` is 0 (the default) or in range:
// max_body_bytes at most 64 MiB, header_timeout_ms 100 to 300000,
// max_connections at most 65536. Otherwise the ConfigError of the first bad
// field ("<source>: http.header_timeout_ms: ..."). Does not look at
// `listen`, which each process reads in its own way.
absl::Status ValidateHttpServerLimits(absl::string_view source,
                                      const v1::HttpServerOptions& http);

// Sets the limits `http` gives (the non-zero ones) on `options`; the others
// keep their values. Call after ValidateHttpServerLimits.
void ApplyHttpServerLimits(const v1::HttpServerOptions& http,
                           HttpServer::Options* options);

}  // namespace imbridge

#endif  // IMBRIDGE_COMMON_HTTP_HTTP_SERVER_CONFIG_H_
