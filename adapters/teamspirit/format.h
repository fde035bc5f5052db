#ifndef IMBRIDGE_ADAPTERS_TEAMSPIRIT_FORMAT_H_
#define IMBRIDGE_ADAPTERS_TEAMSPIRIT_FORMAT_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "imbridge/v1/events.pb.h"

// TeamSpirit's message markup (the CommonMark subset of
// ../shared/teamspirit-api.md) to and from the bridge's RichText.
//
// Supported: **bold** and __bold__, *italic* and _italic_ (an underscore
// inside a word is a literal), ~~strike~~, `inline code` (any backtick run
// length), fenced code blocks (``` with an optional language), [links](url),
// block quotes (lines starting with ">"), backslash escapes of ASCII
// punctuation, and mentions @[Name](user:id). Everything else (headings,
// lists, tables, HTML) is kept as literal text. A line structure is kept:
// every source line is one text line, except the fence lines of code
// blocks, which disappear.
//
// All functions are pure and thread-safe; they accept any input (invalid
// UTF-8, unbalanced markup, spans out of range) without failing.

namespace imbridge::adapters::teamspirit {

// Parses TeamSpirit markdown. Mentions become "@Name" with a MENTION span
// whose user_id is the TeamSpirit user id.
v1::RichText MarkdownToRichText(absl::string_view markdown);

// How RichTextToMarkdown renders mentions.
struct MarkdownRenderOptions {
  // True when the mentions' user ids are TeamSpirit ids (the event comes
  // from TeamSpirit): they are written as @[Name](user:id). Otherwise a
  // mention is written as its plain text.
  bool native_mentions = false;
};

// Renders rich text as TeamSpirit markdown, escaping markup characters of
// the plain text so that it reads back unchanged. Spans that overlap
// without nesting are split; spans that are invalid (out of range, not on a
// UTF-8 character boundary, of an unknown kind) are ignored. UNDERLINE and
// SPOILER have no markdown and are rendered as plain text.
std::string RichTextToMarkdown(const v1::RichText& text,
                               const MarkdownRenderOptions& options = {});

// Escapes `text` so that TeamSpirit shows it literally.
std::string EscapeMarkdown(absl::string_view text);

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
