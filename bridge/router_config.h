#ifndef IMBRIDGE_BRIDGE_ROUTER_CONFIG_H_
#define IMBRIDGE_BRIDGE_ROUTER_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"
#include "imbridge/v1/config.pb.h"

namespace imbridge::bridge {

// Loads the router's config file, validates it (errors name the file, the
// field path and the reason) and fills every unset field with its default, so
// that the rest of the router reads plain values.
absl::StatusOr<v1::RouterConfig> LoadRouterConfig(const std::string& path);

// The directory of the router's blob files: store.postgres.blob_dir when
// set, else <data_dir>/blobs.
std::string BlobDir(const v1::RouterConfig& config);

// Validates and fills defaults of an already parsed config; `source` names it
// in errors.
absl::Status ValidateRouterConfig(const std::string& source,
                                  v1::RouterConfig* config);

}  // namespace imbridge::bridge

#endif  // IMBRIDGE_BRIDGE_ROUTER_CONFIG_H_
