#include "emulators/multipart_form.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace imbridge {
namespace {

// The value of parameter `param` in a header value such as
// `form-data; name="file"; filename="a.pdf"`.
std::string HeaderParam(absl::string_view value, absl::string_view param) {
  for (absl::string_view piece : absl::StrSplit(value, ';')) {
    piece = absl::StripAsciiWhitespace(piece);
    size_t eq = piece.find('=');
    if (eq == absl::string_view::npos) continue;
    if (!absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(piece.substr(0, eq)),
                                param)) {
      continue;
    }
    absl::string_view v = absl::StripAsciiWhitespace(piece.substr(eq + 1));
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') {
      v = v.substr(1, v.size() - 2);
    }
    return std::string(v);
  }
  return "";
}

}  // namespace

absl::StatusOr<std::vector<MultipartFormPart>> ParseMultipartForm(
    absl::string_view body, absl::string_view type) {
  std::string boundary = HeaderParam(type, "boundary");
  if (boundary.empty()) {
    return absl::InvalidArgumentError("multipart body without boundary");
  }
  std::string delimiter = absl::StrCat("--", boundary);
  std::vector<MultipartFormPart> parts;
  size_t pos = body.find(delimiter);
  if (pos == absl::string_view::npos) {
    return absl::InvalidArgumentError("multipart boundary not found");
  }
  while (true) {
    pos += delimiter.size();
    if (body.substr(pos, 2) == "--") break;  // Closing delimiter.
    if (body.substr(pos, 2) != "\r\n") {
      return absl::InvalidArgumentError("malformed multipart delimiter");
    }
    pos += 2;
    size_t header_end = body.find("\r\n\r\n", pos);
    if (header_end == absl::string_view::npos) {
      return absl::InvalidArgumentError("multipart part without headers end");
    }
    MultipartFormPart part;
    for (absl::string_view line :
         absl::StrSplit(body.substr(pos, header_end - pos), "\r\n")) {
      size_t colon = line.find(':');
      if (colon == absl::string_view::npos) continue;
      absl::string_view name =
          absl::StripAsciiWhitespace(line.substr(0, colon));
      absl::string_view value =
          absl::StripAsciiWhitespace(line.substr(colon + 1));
      if (absl::EqualsIgnoreCase(name, "Content-Disposition")) {
        part.name = HeaderParam(value, "name");
        part.filename = HeaderParam(value, "filename");
      } else if (absl::EqualsIgnoreCase(name, "Content-Type")) {
        part.content_type = std::string(value);
      }
    }
    size_t data_start = header_end + 4;
    size_t next = body.find(absl::StrCat("\r\n", delimiter), data_start);
    if (next == absl::string_view::npos) {
      return absl::InvalidArgumentError("multipart part is not terminated");
    }
    part.data = std::string(body.substr(data_start, next - data_start));
    parts.push_back(std::move(part));
    pos = next + 2;
  }
  return parts;
}

}  // namespace imbridge
