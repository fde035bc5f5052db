#ifndef IMBRIDGE_ADAPTERS_TEAMSPIRIT_FORMAT_H_
#define IMBRIDGE_ADAPTERS_TEAMSPIRIT_FORMAT_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

// TeamSpirit's text limits. Its markup (Markdown) is converted by the
// shared adapters/common/markup/markdown.h.
//
// All functions are pure and thread-safe; they accept any input (invalid
// UTF-8 too) without failing.

namespace imbridge::adapters::teamspirit {

// Number of Unicode characters (code points) in `text`; bytes of invalid
// UTF-8 count one each.
size_t CountCharacters(absl::string_view text);

// Splits `text` into pieces of at most `max_characters` characters each,
// preferring to cut after a line break, then after a space. Returns one
// piece (the whole text, possibly empty) when it fits.
std::vector<std::string> SplitMessage(absl::string_view text,
                                      size_t max_characters);

}  // namespace imbridge::adapters::teamspirit

#endif  // IMBRIDGE_ADAPTERS_TEAMSPIRIT_FORMAT_H_
