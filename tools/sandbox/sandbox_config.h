#ifndef IMBRIDGE_TOOLS_SANDBOX_SANDBOX_CONFIG_H_
#define IMBRIDGE_TOOLS_SANDBOX_SANDBOX_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "imbridge/v1/sandbox_config.pb.h"

namespace imbridge::sandbox {

// Loads imbridge-sandbox's YAML config (proto/imbridge/v1/sandbox_config.proto)
// from `path`, fills in the documented defaults and checks it. Errors name
// the file, the field path and the reason; secrets never appear in them.
absl::StatusOr<v1::SandboxConfig> LoadSandboxConfig(const std::string& path);

// The same for YAML text (`source` names it in errors).
absl::StatusOr<v1::SandboxConfig> ParseSandboxConfig(absl::string_view yaml,
                                                     absl::string_view source);

}  // namespace imbridge::sandbox

#endif  // IMBRIDGE_TOOLS_SANDBOX_SANDBOX_CONFIG_H_
