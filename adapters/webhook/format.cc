#include "adapters/webhook/format.h"

#include <algorithm>
#include <cstring>
#include <set>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace imbridge::adapters::webhook {
namespace {

// A letter or digit (any non-ASCII byte counts, so UTF-8 letters do).
bool IsWordChar(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  return u >= 0x80 || absl::ascii_isalnum(u);
}

void SortSpans(v1::RichText* out) {
  std::stable_sort(out->mutable_spans()->begin(), out->mutable_spans()->end(),
                   [](const v1::Span& a, const v1::Span& b) {
                     if (a.offset() != b.offset()) {
                       return a.offset() < b.offset();
                     }
                     return a.length() > b.length();
                   });
}

// Appends mrkdwn to a RichText; see AppendMrkdwn.
class MrkdwnParser {
 public:
  MrkdwnParser(bool formatting, v1::RichText* out)
      : formatting_(formatting), out_(out) {}

  void Parse(absl::string_view s, bool line_start) {
    size_t i = 0;
    while (i < s.size()) {
      char c = s[i];
      if (formatting_ && line_start && c == '>') {
        size_t eol = s.find('\n', i);
        if (eol == absl::string_view::npos) eol = s.size();
        absl::string_view content = s.substr(i + 1, eol - i - 1);
        if (absl::StartsWith(content, " ")) content.remove_prefix(1);
        size_t start = pos();
        Parse(content, false);
        AddSpan(v1::Span::QUOTE, start);
        i = eol;
        line_start = false;
        continue;
      }
      if (formatting_ && s.substr(i, 3) == "```") {
        size_t end = s.find("```", i + 3);
        if (end != absl::string_view::npos) {
          absl::string_view content = s.substr(i + 3, end - i - 3);
          if (absl::StartsWith(content, "\n")) content.remove_prefix(1);
          if (absl::EndsWith(content, "\n")) content.remove_suffix(1);
          size_t start = pos();
          AppendLiteral(content);
          AddSpan(v1::Span::PRE, start);
          i = end + 3;
          line_start = false;
          continue;
        }
      }
      if (formatting_ && c == '`') {
        size_t end = s.find('`', i + 1);
        if (end != absl::string_view::npos && end > i + 1 &&
            s.substr(i + 1, end - i - 1).find('\n') ==
                absl::string_view::npos) {
          size_t start = pos();
          AppendLiteral(s.substr(i + 1, end - i - 1));
          AddSpan(v1::Span::CODE, start);
          i = end + 1;
          line_start = false;
          continue;
        }
      }
      if (c == '<') {
        size_t end = s.find('>', i + 1);
        if (end != absl::string_view::npos) {
          absl::string_view token = s.substr(i + 1, end - i - 1);
          if (!token.empty() &&
              token.find_first_of("\n<") == absl::string_view::npos) {
            AppendToken(token);
            i = end + 1;
            line_start = false;
            continue;
          }
        }
      }
      if (formatting_ && (c == '*' || c == '_' || c == '~')) {
        size_t close = FindClose(s, i);
        if (close != absl::string_view::npos) {
          size_t start = pos();
          Parse(s.substr(i + 1, close - i - 1), false);
          AddSpan(c == '*'   ? v1::Span::BOLD
                  : c == '_' ? v1::Span::ITALIC
                             : v1::Span::STRIKE,
                  start);
          i = close + 1;
          line_start = false;
          continue;
        }
      }
      size_t used = AppendEntityOrChar(s, i);
      line_start = c == '\n';
      i += used;
    }
  }

  void AppendLiteral(absl::string_view s) {
    size_t i = 0;
    while (i < s.size()) i += AppendEntityOrChar(s, i);
  }

  size_t pos() const { return out_->text().size(); }

  void AddSpan(v1::Span::Kind kind, size_t start, std::string url = "") {
    if (pos() <= start) return;
    v1::Span* span = out_->add_spans();
    span->set_kind(kind);
    span->set_offset(static_cast<uint32_t>(start));
    span->set_length(static_cast<uint32_t>(pos() - start));
    if (!url.empty()) span->set_url(std::move(url));
  }

 private:
  // Appends the entity at s[i] (&amp; &lt; &gt;) decoded, or the byte;
  // returns how many bytes were used.
  size_t AppendEntityOrChar(absl::string_view s, size_t i) {
    static constexpr std::pair<const char*, char> kEntities[] = {
        {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}};
    if (s[i] == '&') {
      for (const auto& [entity, ch] : kEntities) {
        if (s.substr(i, strlen(entity)) == entity) {
          out_->mutable_text()->push_back(ch);
          return strlen(entity);
        }
      }
    }
    out_->mutable_text()->push_back(s[i]);
    return 1;
  }

  // The closing marker of the one opening at s[i], or npos.
  static size_t FindClose(absl::string_view s, size_t i) {
    char marker = s[i];
    if (i + 1 >= s.size() || absl::ascii_isspace(s[i + 1])) {
      return absl::string_view::npos;
    }
    if (i > 0 && IsWordChar(s[i - 1])) return absl::string_view::npos;
    for (size_t j = i + 1; j < s.size(); ++j) {
      if (s[j] == '\n') break;
      if (s[j] == marker && j > i + 1 && !absl::ascii_isspace(s[j - 1]) &&
          (j + 1 == s.size() || !IsWordChar(s[j + 1]))) {
        return j;
      }
    }
    return absl::string_view::npos;
  }

  // <url|label>, <url>, <@U1|name>, <#C1|name>, <!here>, <!date^...|text>.
  void AppendToken(absl::string_view token) {
    absl::string_view target = token;
    absl::string_view label;
    if (size_t bar = token.find('|'); bar != absl::string_view::npos) {
      target = token.substr(0, bar);
      label = token.substr(bar + 1);
    }
    if (absl::StartsWith(target, "@") || absl::StartsWith(target, "#")) {
      out_->mutable_text()->push_back(target[0]);
      AppendLiteral(label.empty() ? target.substr(1) : label);
      return;
    }
    if (absl::StartsWith(target, "!")) {
      if (!label.empty()) {
        AppendLiteral(label);
        return;
      }
      absl::string_view word = target.substr(1);
      word = word.substr(0, word.find('^'));
      out_->mutable_text()->push_back('@');
      AppendLiteral(word);
      return;
    }
    if (target.find(':') == absl::string_view::npos) {
      // Not a link: keep the text as written.
      out_->mutable_text()->push_back('<');
      AppendLiteral(token);
      out_->mutable_text()->push_back('>');
      return;
    }
    std::string url;
    {
      v1::RichText decoded;
      MrkdwnParser(false, &decoded).AppendLiteral(target);
      url = decoded.text();
    }
    size_t start = pos();
    AppendLiteral(label.empty() ? target : label);
    AddSpan(v1::Span::LINK, start, std::move(url));
  }

  const bool formatting_;
  v1::RichText* out_;
};

const nlohmann::json* StringField(const nlohmann::json& object,
                                  const char* name) {
  auto it = object.find(name);
  if (it == object.end() || !it->is_string() ||
      it->get_ref<const std::string&>().empty()) {
    return nullptr;
  }
  return &*it;
}

// Ends the current line of `out` if it has text.
void NewLine(v1::RichText* out) {
  if (!out->text().empty() && out->text().back() != '\n') {
    out->mutable_text()->push_back('\n');
  }
}

}  // namespace

void AppendMrkdwn(absl::string_view text, bool formatting, v1::RichText* out) {
  bool line_start = out->text().empty() || out->text().back() == '\n';
  MrkdwnParser(formatting, out).Parse(text, line_start);
  SortSpans(out);
}

void AppendSlackAttachments(const nlohmann::json& attachments,
                            v1::RichText* out) {
  if (!attachments.is_array()) return;
  for (const nlohmann::json& a : attachments) {
    if (!a.is_object()) continue;
    std::set<std::string> mrkdwn_in;
    if (auto it = a.find("mrkdwn_in"); it != a.end() && it->is_array()) {
      for (const auto& name : *it) {
        if (name.is_string()) mrkdwn_in.insert(name.get<std::string>());
      }
    }
    auto text_of = [](const nlohmann::json* j) -> absl::string_view {
      return j->get_ref<const std::string&>();
    };
    auto part = [&](const char* name) {
      const nlohmann::json* value = StringField(a, name);
      if (value == nullptr) return false;
      NewLine(out);
      MrkdwnParser(mrkdwn_in.count(name) > 0, out).Parse(text_of(value), true);
      return true;
    };

    bool shown = part("pretext");
    part("author_name");
    if (const nlohmann::json* title = StringField(a, "title")) {
      NewLine(out);
      MrkdwnParser parser(false, out);
      size_t start = parser.pos();
      parser.Parse(text_of(title), true);
      if (const nlohmann::json* link = StringField(a, "title_link")) {
        parser.AddSpan(v1::Span::LINK, start,
                       link->get_ref<const std::string&>());
      }
      parser.AddSpan(v1::Span::BOLD, start);
      shown = true;
    }
    shown = part("text") || shown;
    if (auto it = a.find("fields"); it != a.end() && it->is_array()) {
      for (const nlohmann::json& field : *it) {
        if (!field.is_object()) continue;
        const nlohmann::json* title = StringField(field, "title");
        const nlohmann::json* value = StringField(field, "value");
        if (title == nullptr && value == nullptr) continue;
        NewLine(out);
        MrkdwnParser parser(mrkdwn_in.count("fields") > 0, out);
        if (title != nullptr) {
          size_t start = parser.pos();
          MrkdwnParser(false, out).Parse(text_of(title), false);
          parser.AddSpan(v1::Span::BOLD, start);
          if (value != nullptr) out->mutable_text()->append(": ");
        }
        if (value != nullptr) parser.Parse(text_of(value), false);
        shown = true;
      }
    }
    if (const nlohmann::json* image = StringField(a, "image_url")) {
      NewLine(out);
      MrkdwnParser parser(false, out);
      size_t start = parser.pos();
      parser.AppendLiteral(text_of(image));
      parser.AddSpan(v1::Span::LINK, start,
                     image->get_ref<const std::string&>());
    }
    if (!shown) part("fallback");
    part("footer");
  }
  SortSpans(out);
}

std::string RichTextToMarkdown(const v1::RichText& rich) {
  const std::string& text = rich.text();
  std::vector<const v1::Span*> spans;
  for (const v1::Span& s : rich.spans()) {
    if (s.length() == 0 ||
        static_cast<uint64_t>(s.offset()) + s.length() > text.size()) {
      continue;
    }
    switch (s.kind()) {
      case v1::Span::BOLD:
      case v1::Span::ITALIC:
      case v1::Span::STRIKE:
      case v1::Span::CODE:
      case v1::Span::PRE:
      case v1::Span::LINK:
      case v1::Span::QUOTE:
        spans.push_back(&s);
        break;
      case v1::Span::CHANNEL_MENTION:
        if (!s.url().empty()) spans.push_back(&s);
        break;
      default:
        break;
    }
  }
  std::stable_sort(spans.begin(), spans.end(),
                   [](const v1::Span* a, const v1::Span* b) {
                     if (a->offset() != b->offset()) {
                       return a->offset() < b->offset();
                     }
                     return a->length() > b->length();
                   });

  std::string out;
  auto end_of = [](const v1::Span* s) {
    return static_cast<size_t>(s->offset()) + s->length();
  };
  auto at_line_start = [&] { return out.empty() || out.back() == '\n'; };
  auto open = [&](const v1::Span* s) {
    switch (s->kind()) {
      case v1::Span::BOLD:
        out += "**";
        break;
      case v1::Span::ITALIC:
        out += "_";
        break;
      case v1::Span::STRIKE:
        out += "~~";
        break;
      case v1::Span::CODE:
        out += "`";
        break;
      case v1::Span::PRE:
        if (!at_line_start()) out += "\n";
        absl::StrAppend(&out, "```", s->language(), "\n");
        break;
      case v1::Span::QUOTE:
        if (!at_line_start()) out += "\n";
        out += "> ";
        break;
      default:  // LINK, CHANNEL_MENTION with a URL.
        out += "[";
        break;
    }
  };
  auto close = [&](const v1::Span* s, size_t p) {
    bool text_follows_on_line = p < text.size() && text[p] != '\n';
    switch (s->kind()) {
      case v1::Span::BOLD:
        out += "**";
        break;
      case v1::Span::ITALIC:
        out += "_";
        break;
      case v1::Span::STRIKE:
        out += "~~";
        break;
      case v1::Span::CODE:
        out += "`";
        break;
      case v1::Span::PRE:
        if (!at_line_start()) out += "\n";
        out += "```";
        if (text_follows_on_line) out += "\n";
        break;
      case v1::Span::QUOTE:
        if (text_follows_on_line) out += "\n";
        break;
      default:
        absl::StrAppend(&out, "](", s->url(), ")");
        break;
    }
  };

  std::vector<const v1::Span*> stack;
  size_t next = 0;
  for (size_t p = 0; p <= text.size(); ++p) {
    // Close what ends here; spans crossing a closed one are reopened.
    for (;;) {
      size_t k = stack.size();
      for (size_t i = 0; i < stack.size(); ++i) {
        if (end_of(stack[i]) <= p) {
          k = i;
          break;
        }
      }
      if (k == stack.size()) break;
      std::vector<const v1::Span*> reopen;
      while (stack.size() > k) {
        const v1::Span* s = stack.back();
        stack.pop_back();
        close(s, p);
        if (end_of(s) > p) reopen.push_back(s);
      }
      for (auto it = reopen.rbegin(); it != reopen.rend(); ++it) {
        open(*it);
        stack.push_back(*it);
      }
    }
    while (next < spans.size() && spans[next]->offset() == p) {
      open(spans[next]);
      stack.push_back(spans[next]);
      ++next;
    }
    if (p == text.size()) break;
    char c = text[p];
    bool raw = false;
    bool quoted = false;
    for (const v1::Span* s : stack) {
      raw |= s->kind() == v1::Span::CODE || s->kind() == v1::Span::PRE;
      quoted |= s->kind() == v1::Span::QUOTE;
    }
    if (c == '\n' && quoted) {
      out += "\n> ";
      continue;
    }
    if (!raw && c != 0 && strchr("\\`*_~[]", c) != nullptr) out += '\\';
    out += c;
  }
  return out;
}

}  // namespace imbridge::adapters::webhook
