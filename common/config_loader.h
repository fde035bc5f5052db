#ifndef IMBRIDGE_COMMON_CONFIG_LOADER_H_
#define IMBRIDGE_COMMON_CONFIG_LOADER_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace imbridge {

// Loads configuration files into the messages of
// proto/imbridge/v1/config.proto.
//
// The YAML document is mapped onto the message by field name, recursively:
// mappings become messages, sequences repeated fields, scalars the field's
// type (enum values by name, case-insensitive). Every error names the source,
// the field path and the reason, for example
//   "router.yaml: links[0].members[1].direction: unknown value 'bth'
//    (expected one of both, in, out)".
// Strings may hold ${ENV_VAR}; an unset variable is an error. A string field
// `x_file` next to a field `x` reads `x` from that file (trailing newlines
// removed); setting both is an error.
//
// Thread-compatible; the functions hold no state.

// Reads `path` and loads it into `message` (cleared first).
absl::Status LoadConfigFile(const std::string& path,
                            google::protobuf::Message* message);

// Loads YAML text; `source` names it in errors (usually the file path).
absl::Status LoadConfigYaml(absl::string_view yaml, absl::string_view source,
                            google::protobuf::Message* message);

// Builds the error for a value that parsed but is not acceptable, in the same
// format as the loader's own errors: "<source>: <field_path>: <reason>".
absl::Status ConfigError(absl::string_view source, absl::string_view field_path,
                         absl::string_view reason);

}  // namespace imbridge

#endif  // IMBRIDGE_COMMON_CONFIG_LOADER_H_
