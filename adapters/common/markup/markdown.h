#ifndef IMBRIDGE_ADAPTERS_COMMON_MARKUP_MARKDOWN_H_
#define IMBRIDGE_ADAPTERS_COMMON_MARKUP_MARKDOWN_H_

#include <string>

#include "absl/strings/string_view.h"
#include "imbridge/v1/events.pb.h"

// Markdown (the CommonMark subset that TeamSpirit's messages use, see
// ../shared/teamspirit-api.md, and that the webhook adapter's outgoing
// payloads carry) to and from the bridge's RichText. Shared by the adapters
// that speak it.
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

namespace imbridge::adapters::markup {

// Parses Markdown. Mentions become "@Name" with a MENTION span
// whose user_id is the TeamSpirit user id.
v1::RichText MarkdownToRichText(absl::string_view markdown);

// How RichTextToMarkdown renders mentions.
struct MarkdownRenderOptions {
  // True when the mentions' user ids are TeamSpirit ids (the event comes
  // from TeamSpirit): they are written as @[Name](user:id). Otherwise a
  // mention is written as its plain text.
  bool native_mentions = false;
};

// Renders rich text as Markdown, escaping markup characters of
// the plain text so that it reads back unchanged. Spans that overlap
// without nesting are split; spans that are invalid (out of range, not on a
// UTF-8 character boundary, of an unknown kind) are ignored. UNDERLINE and
// SPOILER have no markdown and are rendered as plain text.
std::string RichTextToMarkdown(const v1::RichText& text,
                               const MarkdownRenderOptions& options = {});

// Escapes `text` so that a Markdown reader (TeamSpirit) shows it literally.
std::string EscapeMarkdown(absl::string_view text);

}  // namespace imbridge::adapters::markup

#endif  // IMBRIDGE_ADAPTERS_COMMON_MARKUP_MARKDOWN_H_
