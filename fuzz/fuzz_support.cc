#include "fuzz/fuzz_support.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/utf8.h"

namespace imbridge::fuzz {
namespace {

// Pieces a random text is made of: the markup of Slack mrkdwn, Markdown,
// BB-code and Telegram, line structure, and characters of 1 to 4 bytes in
// UTF-8 (1 or 2 UTF-16 code units), the zero width space BB-code uses.
const char* const kPieces[] = {"*",
                               "_",
                               "~",
                               "`",
                               "```",
                               "\n",
                               " ",
                               ">",
                               "> ",
                               "&",
                               "&amp;",
                               "&lt;",
                               "&gt;",
                               "<",
                               "<@U1>",
                               "<#C1|general>",
                               "<!here>",
                               "<https://x.example|x>",
                               "[",
                               "]",
                               "(",
                               ")",
                               "**",
                               "__",
                               "~~",
                               "\\",
                               "@[A](user:u1)",
                               "[b]",
                               "[/b]",
                               "[url=https://x]",
                               "[/url]",
                               "[code]",
                               "[/code]",
                               "[quote]",
                               "[/quote]",
                               "[USER=1]",
                               "[/USER]",
                               ">>",
                               "[br]",
                               "a",
                               "word",
                               "é",
                               "€",
                               "😀",
                               "\xE2\x80\x8B",
                               "\r\n",
                               "\t",
                               "#",
                               "-",
                               "1.",
                               "https://example.com/a?b=c",
                               "x@y.z",
                               "/start"};

const v1::Span::Kind kKnownKinds[] = {
    v1::Span::BOLD,      v1::Span::ITALIC,         v1::Span::STRIKE,
    v1::Span::UNDERLINE, v1::Span::CODE,           v1::Span::PRE,
    v1::Span::LINK,      v1::Span::MENTION,        v1::Span::QUOTE,
    v1::Span::SPOILER,   v1::Span::CHANNEL_MENTION};

std::string ConsumeText(FuzzedDataProvider& provider, bool valid_only) {
  std::string text;
  size_t pieces = provider.ConsumeIntegralInRange<size_t>(0, 64);
  for (size_t i = 0; i < pieces && provider.remaining_bytes() > 0; ++i) {
    if (!valid_only && provider.ConsumeIntegralInRange<int>(0, 15) == 0) {
      text.push_back(static_cast<char>(provider.ConsumeIntegral<uint8_t>()));
      continue;
    }
    text += kPieces[provider.ConsumeIntegralInRange<size_t>(
        0, sizeof(kPieces) / sizeof(kPieces[0]) - 1)];
  }
  if (valid_only && !IsValidUtf8(text)) text = ToValidUtf8(text);
  return text;
}

// Character boundaries of `text` (every byte offset when it is not UTF-8),
// including 0 and the size.
std::vector<uint32_t> Boundaries(absl::string_view text) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (IsUtf8Boundary(text, i)) out.push_back(static_cast<uint32_t>(i));
  }
  return out;
}

}  // namespace

void Check(bool condition, absl::string_view what) {
  if (condition) return;
  std::fprintf(stderr, "fuzz property violated: %.*s\n",
               static_cast<int>(what.size()), what.data());
  std::abort();
}

void CheckSpansInRange(const v1::RichText& text, absl::string_view parser) {
  for (const v1::Span& span : text.spans()) {
    uint64_t end = uint64_t{span.offset()} + span.length();
    if (end > text.text().size()) {
      std::fprintf(stderr, "%.*s: span [%u, +%u) kind %d outside text of %zu\n",
                   static_cast<int>(parser.size()), parser.data(),
                   span.offset(), span.length(), static_cast<int>(span.kind()),
                   text.text().size());
      std::abort();
    }
  }
}

v1::RichText ConsumeRichText(FuzzedDataProvider& provider, bool valid_only) {
  v1::RichText rich;
  rich.set_text(ConsumeText(provider, valid_only));
  const std::vector<uint32_t> bounds = Boundaries(rich.text());
  size_t spans = provider.ConsumeIntegralInRange<size_t>(0, 8);
  for (size_t i = 0; i < spans && provider.remaining_bytes() > 0; ++i) {
    v1::Span* span = rich.add_spans();
    if (valid_only || provider.ConsumeBool()) {
      span->set_kind(kKnownKinds[provider.ConsumeIntegralInRange<size_t>(
          0, sizeof(kKnownKinds) / sizeof(kKnownKinds[0]) - 1)]);
    } else {
      span->set_kind(static_cast<v1::Span::Kind>(
          provider.ConsumeIntegralInRange<int>(-1, 13)));
    }
    if (valid_only || provider.ConsumeIntegralInRange<int>(0, 7) != 0) {
      size_t a = provider.ConsumeIntegralInRange<size_t>(0, bounds.size() - 1);
      size_t b = provider.ConsumeIntegralInRange<size_t>(a, bounds.size() - 1);
      span->set_offset(bounds[a]);
      span->set_length(bounds[b] - bounds[a]);
    } else {
      span->set_offset(provider.ConsumeIntegral<uint32_t>());
      span->set_length(provider.ConsumeIntegral<uint32_t>());
    }
    switch (span->kind()) {
      case v1::Span::LINK:
      case v1::Span::CHANNEL_MENTION:
        span->set_url(provider.PickValueInArray<const char*>(
            {"https://example.com/", "https://x.example/a_b*c)d]e", "",
             "mailto:a@b.c", "javascript:alert(1)", "https://x|y>z"}));
        break;
      case v1::Span::MENTION:
        span->set_user_id(provider.PickValueInArray<const char*>(
            {"U123", "12345", "", "u1", "-1", "99999999999999999999"}));
        break;
      case v1::Span::PRE:
        span->set_language(
            provider.PickValueInArray<const char*>({"", "cpp", "a b`c\n"}));
        break;
      default:
        break;
    }
  }
  std::stable_sort(rich.mutable_spans()->begin(), rich.mutable_spans()->end(),
                   [](const v1::Span& a, const v1::Span& b) {
                     return a.offset() < b.offset();
                   });
  return rich;
}

}  // namespace imbridge::fuzz
