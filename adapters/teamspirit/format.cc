#include "adapters/teamspirit/format.h"

namespace imbridge::adapters::teamspirit {

size_t CountCharacters(absl::string_view text) {
  size_t count = 0;
  for (char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++count;
  }
  return count;
}

std::vector<std::string> SplitMessage(absl::string_view text,
                                      size_t max_characters) {
  std::vector<std::string> pieces;
  if (max_characters == 0) max_characters = 1;
  while (CountCharacters(text) > max_characters) {
    // The byte index after `max_characters` characters.
    size_t cut = 0;
    size_t chars = 0;
    while (cut < text.size()) {
      if ((static_cast<unsigned char>(text[cut]) & 0xC0) != 0x80) {
        if (chars == max_characters) break;
        ++chars;
      }
      ++cut;
    }
    absl::string_view window = text.substr(0, cut);
    size_t at = window.rfind('\n');
    if (at == absl::string_view::npos || at + 1 < cut / 2)
      at = window.rfind(' ');
    if (at != absl::string_view::npos && at + 1 >= cut / 2) cut = at + 1;
    pieces.emplace_back(text.substr(0, cut));
    text.remove_prefix(cut);
  }
  pieces.emplace_back(text);
  return pieces;
}

}  // namespace imbridge::adapters::teamspirit
