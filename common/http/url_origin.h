#ifndef IMBRIDGE_COMMON_HTTP_URL_ORIGIN_H_
#define IMBRIDGE_COMMON_HTTP_URL_ORIGIN_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace imbridge {

// The parts of an absolute URL that decide where credentials may go: scheme
// and host (lower case; an IPv6 host keeps its brackets) and port (explicit,
// or the scheme's default: 80 for http and ws, 443 for https and wss).
struct UrlOrigin {
  std::string scheme;
  std::string host;
  int port = 0;
  // The URL carried user info ("user:pass@host"); what it was is not kept.
  bool has_user_info = false;

  // Same scheme, host and port.
  bool operator==(const UrlOrigin& o) const {
    return scheme == o.scheme && host == o.host && port == o.port;
  }
  bool operator!=(const UrlOrigin& o) const { return !(*this == o); }
  // "https://files.slack.com:443", for logs and errors: never the path or
  // query (they may hold a token).
  std::string ForLog() const;
};

// Parses `url` with libcurl's URL API (CURLU). kInvalidArgument when it is
// not an absolute http, https, ws or wss URL with a host. Thread-safe.
absl::StatusOr<UrlOrigin> ParseUrlOrigin(absl::string_view url);

}  // namespace imbridge

#endif  // IMBRIDGE_COMMON_HTTP_URL_ORIGIN_H_
