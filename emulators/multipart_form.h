#ifndef IMBRIDGE_EMULATORS_MULTIPART_FORM_H_
#define IMBRIDGE_EMULATORS_MULTIPART_FORM_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace imbridge {

// One part of a multipart/form-data body.
struct MultipartFormPart {
  std::string name;
  std::string filename;
  std::string content_type;
  std::string data;
};

// The parts of a multipart/form-data `body` whose Content-Type header is
// `type` (with its boundary), as the emulated servers receive uploads.
// kInvalidArgument for a body that does not follow the format. Pure.
absl::StatusOr<std::vector<MultipartFormPart>> ParseMultipartForm(
    absl::string_view body, absl::string_view type);

}  // namespace imbridge

#endif  // IMBRIDGE_EMULATORS_MULTIPART_FORM_H_
