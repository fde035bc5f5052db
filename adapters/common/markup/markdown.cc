#include "adapters/common/markup/markdown.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace imbridge::adapters::markup {
namespace {

constexpr size_t kNone = absl::string_view::npos;
// Deeper nesting is kept as literal text (bounds recursion on hostile input).
constexpr int kMaxDepth = 16;
// Crossing spans are split at most this many times (bounds work).
constexpr int kMaxSplits = 256;

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Letters and digits, including every non-ASCII byte (Cyrillic words too).
bool IsWordChar(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  return u >= 0x80 || absl::ascii_isalnum(u);
}

bool IsAsciiPunct(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  return absl::ascii_ispunct(u);
}

size_t RunLength(absl::string_view s, size_t i, char c) {
  size_t j = i;
  while (j < s.size() && s[j] == c) ++j;
  return j - i;
}

// Removes backslash escapes of ASCII punctuation.
std::string Unescape(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && IsAsciiPunct(s[i + 1])) ++i;
    out.push_back(s[i]);
  }
  return out;
}

void AddSpan(std::vector<v1::Span>* spans, v1::Span::Kind kind, size_t start,
             size_t length, absl::string_view url = "",
             absl::string_view user_id = "", absl::string_view language = "") {
  if (length == 0) return;
  v1::Span span;
  span.set_kind(kind);
  span.set_offset(static_cast<uint32_t>(start));
  span.set_length(static_cast<uint32_t>(length));
  if (!url.empty()) span.set_url(std::string(url));
  if (!user_id.empty()) span.set_user_id(std::string(user_id));
  if (!language.empty()) span.set_language(std::string(language));
  spans->push_back(std::move(span));
}

// Parses inline markup of one block and appends its text to `out` and its
// spans (with offsets into `out`) to `spans`.
class InlineParser {
 public:
  InlineParser(std::string* out, std::vector<v1::Span>* spans)
      : out_(out), spans_(spans) {}

  void Parse(absl::string_view s, int depth) {
    if (depth > kMaxDepth) {
      out_->append(s.data(), s.size());
      return;
    }
    Scan scan(s);
    size_t i = 0;
    while (i < s.size()) {
      char c = s[i];
      size_t next = 0;
      if (c == '\\' && i + 1 < s.size() && IsAsciiPunct(s[i + 1])) {
        out_->push_back(s[i + 1]);
        i += 2;
        continue;
      }
      if (c == '`') {
        size_t run = RunLength(s, i, '`');
        size_t close = scan.FindCodeClose(i + run, run);
        if (close == kNone) {
          out_->append(s.data() + i, run);
          i += run;
          continue;
        }
        absl::string_view content = s.substr(i + run, close - i - run);
        if (content.size() >= 2 && content.front() == ' ' &&
            content.back() == ' ' && content.find_first_not_of(' ') != kNone) {
          content = content.substr(1, content.size() - 2);
        }
        size_t start = out_->size();
        out_->append(content.data(), content.size());
        AddSpan(spans_, v1::Span::CODE, start, content.size());
        i = close + run;
        continue;
      }
      if (c == '@' && i + 1 < s.size() && s[i + 1] == '[' &&
          TryMention(scan, i, &next)) {
        i = next;
        continue;
      }
      if (c == '[') {
        if (TryLink(scan, i, depth, &next)) {
          i = next;
        } else {
          out_->push_back('[');
          ++i;
        }
        continue;
      }
      if (c == '*' || c == '_' || c == '~') {
        if (TryEmphasis(scan, i, depth, &next)) {
          i = next;
        } else {
          size_t run = RunLength(s, i, c);
          out_->append(s.data() + i, run);
          i += run;
        }
        continue;
      }
      out_->push_back(c);
      ++i;
    }
  }

 private:
  // Searches over one block's source, remembering failed searches so that
  // hostile input (thousands of unmatched openers) stays linear.
  class Scan {
   public:
    explicit Scan(absl::string_view s)
        : s_(s), bracket_match_(s.size(), kNone) {
      std::vector<size_t> open;
      for (size_t j = 0; j < s_.size(); ++j) {
        char c = s_[j];
        if (c == '\\') {
          ++j;
        } else if (c == '`') {
          size_t run = RunLength(s_, j, '`');
          size_t close = FindCodeClose(j + run, run);
          j = (close == kNone ? j + run : close + run) - 1;
        } else if (c == '[') {
          open.push_back(j);
        } else if (c == ']' && !open.empty()) {
          bracket_match_[open.back()] = j;
          open.pop_back();
        }
      }
    }

    absl::string_view s() const { return s_; }
    size_t BracketMatch(size_t i) const { return bracket_match_[i]; }

    // The start of the next run of exactly `run` backticks at or after
    // `from`, or kNone.
    size_t FindCodeClose(size_t from, size_t run) {
      auto failed = code_failed_.find(run);
      if (failed != code_failed_.end() && from >= failed->second) return kNone;
      size_t j = from;
      while (j < s_.size()) {
        if (s_[j] != '`') {
          ++j;
          continue;
        }
        size_t r = RunLength(s_, j, '`');
        if (r == run) return j;
        j += r;
      }
      code_failed_[run] = from;
      return kNone;
    }

    // Finds the closer of an emphasis opened with `len` times `c` whose
    // inner text starts at `from`. Returns the index of the closer's first
    // delimiter character, or kNone.
    size_t FindEmphasisClose(size_t from, char c, size_t len) {
      std::pair<char, size_t> key(c, len);
      auto failed = emphasis_failed_.find(key);
      if (failed != emphasis_failed_.end() && from >= failed->second) {
        return kNone;
      }
      size_t j = from;
      while (j < s_.size()) {
        char ch = s_[j];
        if (ch == '\\') {
          j += 2;
          continue;
        }
        if (ch == '`') {
          size_t r = RunLength(s_, j, '`');
          size_t close = FindCodeClose(j + r, r);
          j = close == kNone ? j + r : close + r;
          continue;
        }
        if (ch != c) {
          ++j;
          continue;
        }
        size_t r = RunLength(s_, j, c);
        if (j > from && !IsSpace(s_[j - 1])) {
          size_t at = kNone;
          if (r == len) {
            at = j;
          } else if (r == 3 && len < 3 && c != '~') {
            // "**b *i***": the run also closes an inner emphasis first.
            at = j + (3 - len);
          }
          bool flank_ok =
              c != '_' || j + r >= s_.size() || !IsWordChar(s_[j + r]);
          if (at != kNone && flank_ok) return at;
        }
        j += r;
      }
      emphasis_failed_[key] = from;
      return kNone;
    }

    // The end of a link destination starting at `from` (after "("): the
    // index of the ")" that closes it, with *url set; kNone if there is none.
    size_t FindDestinationClose(size_t from, std::string* url) {
      if (from >= destination_failed_) return kNone;
      size_t j = from;
      while (j < s_.size() && s_[j] == ' ') ++j;
      size_t start = j;
      if (j < s_.size() && s_[j] == '<') {
        size_t close = s_.find('>', j + 1);
        size_t nl = s_.find('\n', j + 1);
        if (close == kNone || (nl != kNone && nl < close)) return kNone;
        *url = Unescape(s_.substr(j + 1, close - j - 1));
        j = close + 1;
      } else {
        int depth = 0;
        while (j < s_.size()) {
          char c = s_[j];
          if (c == '\\' && j + 1 < s_.size()) {
            j += 2;
            continue;
          }
          if (IsSpace(c)) break;
          if (c == '(') ++depth;
          if (c == ')') {
            if (depth == 0) break;
            --depth;
          }
          ++j;
        }
        if (j >= s_.size()) {
          destination_failed_ = std::min(destination_failed_, from);
          return kNone;
        }
        *url = Unescape(s_.substr(start, j - start));
      }
      while (j < s_.size() && s_[j] == ' ') ++j;
      if (j < s_.size() && (s_[j] == '"' || s_[j] == '\'')) {
        // An optional title, which the bridge drops.
        size_t close = s_.find(s_[j], j + 1);
        if (close == kNone) return kNone;
        j = close + 1;
        while (j < s_.size() && s_[j] == ' ') ++j;
      }
      if (j >= s_.size() || s_[j] != ')') return kNone;
      return j;
    }

   private:
    absl::string_view s_;
    std::vector<size_t> bracket_match_;
    std::map<size_t, size_t> code_failed_;
    std::map<std::pair<char, size_t>, size_t> emphasis_failed_;
    size_t destination_failed_ = kNone;
  };

  // "@[Name](user:id)" at i.
  bool TryMention(Scan& scan, size_t i, size_t* next) {
    absl::string_view s = scan.s();
    size_t close = scan.BracketMatch(i + 1);
    if (close == kNone || close == i + 2) return false;
    constexpr absl::string_view kUserPrefix = "(user:";
    if (s.substr(close + 1, kUserPrefix.size()) != kUserPrefix) return false;
    size_t id_start = close + 1 + kUserPrefix.size();
    size_t id_end = id_start;
    while (id_end < s.size() && s[id_end] != ')' && !IsSpace(s[id_end])) {
      ++id_end;
    }
    if (id_end >= s.size() || s[id_end] != ')' || id_end == id_start) {
      return false;
    }
    std::string name = Unescape(s.substr(i + 2, close - i - 2));
    if (name.find('\n') != std::string::npos) return false;
    size_t start = out_->size();
    out_->push_back('@');
    out_->append(name);
    AddSpan(spans_, v1::Span::MENTION, start, out_->size() - start, "",
            s.substr(id_start, id_end - id_start));
    *next = id_end + 1;
    return true;
  }

  // "[text](url)" at i.
  bool TryLink(Scan& scan, size_t i, int depth, size_t* next) {
    absl::string_view s = scan.s();
    size_t close = scan.BracketMatch(i);
    if (close == kNone || close + 1 >= s.size() || s[close + 1] != '(') {
      return false;
    }
    std::string url;
    size_t end = scan.FindDestinationClose(close + 2, &url);
    if (end == kNone || url.empty()) return false;
    size_t start = out_->size();
    Parse(s.substr(i + 1, close - i - 1), depth + 1);
    AddSpan(spans_, v1::Span::LINK, start, out_->size() - start, url);
    *next = end + 1;
    return true;
  }

  // "*x*", "_x_", "**x**", "__x__", "***x***", "~~x~~" at i.
  bool TryEmphasis(Scan& scan, size_t i, int depth, size_t* next) {
    absl::string_view s = scan.s();
    char c = s[i];
    size_t run = RunLength(s, i, c);
    if (i + run >= s.size() || IsSpace(s[i + run])) return false;
    if (c == '_' && i > 0 && IsWordChar(s[i - 1])) return false;
    std::vector<size_t> tries;
    if (c == '~') {
      if (run != 2) return false;
      tries = {2};
    } else if (run >= 3) {
      tries = {3, 2, 1};
    } else {
      tries = {run};
    }
    for (size_t len : tries) {
      size_t at = scan.FindEmphasisClose(i + len, c, len);
      if (at == kNone || at <= i + len) continue;
      size_t start = out_->size();
      Parse(s.substr(i + len, at - i - len), depth + 1);
      size_t length = out_->size() - start;
      if (c == '~') {
        AddSpan(spans_, v1::Span::STRIKE, start, length);
      } else {
        if (len != 2) AddSpan(spans_, v1::Span::ITALIC, start, length);
        if (len != 1) AddSpan(spans_, v1::Span::BOLD, start, length);
      }
      *next = at + len;
      return true;
    }
    return false;
  }

  std::string* out_;
  std::vector<v1::Span>* spans_;
};

// Up to three spaces, then "```..." (at least three backticks) and an info
// string without backticks.
bool IsFenceOpen(absl::string_view line, size_t* fence, std::string* lang) {
  size_t i = 0;
  while (i < line.size() && i < 3 && line[i] == ' ') ++i;
  size_t run = RunLength(line, i, '`');
  if (run < 3) return false;
  absl::string_view info = absl::StripAsciiWhitespace(line.substr(i + run));
  if (info.find('`') != kNone) return false;
  *fence = run;
  size_t space = info.find_first_of(" \t");
  *lang = std::string(info.substr(0, space));
  return true;
}

bool IsFenceClose(absl::string_view line, size_t fence) {
  size_t i = 0;
  while (i < line.size() && i < 3 && line[i] == ' ') ++i;
  size_t run = RunLength(line, i, '`');
  if (run < fence) return false;
  return absl::StripAsciiWhitespace(line.substr(i + run)).empty();
}

// A block-quote line: up to three spaces, ">" and an optional space; sets
// *content to the rest.
bool IsQuoteLine(absl::string_view line, absl::string_view* content) {
  size_t i = 0;
  while (i < line.size() && i < 3 && line[i] == ' ') ++i;
  if (i >= line.size() || line[i] != '>') return false;
  ++i;
  if (i < line.size() && line[i] == ' ') ++i;
  *content = line.substr(i);
  return true;
}

bool IsBlank(absl::string_view line) {
  return absl::StripAsciiWhitespace(line).empty();
}

void SortSpans(std::vector<v1::Span>* spans) {
  std::stable_sort(spans->begin(), spans->end(),
                   [](const v1::Span& a, const v1::Span& b) {
                     if (a.offset() != b.offset()) {
                       return a.offset() < b.offset();
                     }
                     return a.length() > b.length();
                   });
}

// --- Rendering -------------------------------------------------------------

// An inline span prepared for rendering: [start, end) of the text.
struct Piece {
  v1::Span::Kind kind;
  size_t start;
  size_t end;
  std::string url;          // LINK
  std::string user_id;      // MENTION
  bool underscore = false;  // ITALIC written with "_" rather than "*".
};

bool IsAtomic(const Piece& p) {
  return p.kind == v1::Span::CODE || p.kind == v1::Span::MENTION;
}

int KindRank(v1::Span::Kind kind) {
  switch (kind) {
    case v1::Span::LINK:
      return 0;
    case v1::Span::BOLD:
      return 1;
    case v1::Span::ITALIC:
      return 2;
    case v1::Span::STRIKE:
      return 3;
    default:
      return 4;
  }
}

bool PieceOrder(const Piece& a, const Piece& b) {
  if (a.start != b.start) return a.start < b.start;
  if (a.end != b.end) return a.end > b.end;
  return KindRank(a.kind) < KindRank(b.kind);
}

bool IsCharBoundary(const std::string& text, size_t p) {
  return p >= text.size() ||
         (static_cast<unsigned char>(text[p]) & 0xC0) != 0x80;
}

std::string EscapeUrl(absl::string_view url) {
  std::string out;
  for (char c : url) {
    switch (c) {
      case ' ':
        out += "%20";
        break;
      case '(':
        out += "%28";
        break;
      case ')':
        out += "%29";
        break;
      case '\n':
      case '\r':
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

class Renderer {
 public:
  Renderer(const v1::RichText& rich, const MarkdownRenderOptions& options)
      : text_(rich.text()), options_(options) {
    Prepare(rich);
  }

  std::string Render() {
    size_t n = text_.size();
    size_t pre_index = 0;
    size_t next_piece = 0;
    size_t pos = 0;
    while (true) {
      CloseEndingAt(pos);
      if (pos >= n) break;
      if (pre_index < pres_.size() && pres_[pre_index].first == pos) {
        RenderPre(pres_[pre_index]);
        pos = pres_[pre_index].second;
        ++pre_index;
        continue;
      }
      bool line_start = pos == 0 || text_[pos - 1] == '\n';
      if (line_start && in_quote_[pos]) out_ += "> ";
      bool jumped = false;
      while (next_piece < pieces_.size() && pieces_[next_piece].start <= pos) {
        const Piece& p = pieces_[next_piece++];
        if (p.start < pos) continue;  // Inside an atomic piece; dropped.
        if (IsAtomic(p)) {
          RenderAtomic(p);
          pos = p.end;
          jumped = true;
          break;
        }
        out_ += OpenMarker(p);
        stack_.push_back(&p);
      }
      if (jumped) continue;
      size_t len = 1;
      while (pos + len < n && !IsCharBoundary(text_, pos + len)) ++len;
      EmitEscaped(pos, len);
      pos += len;
    }
    return out_;
  }

 private:
  void Prepare(const v1::RichText& rich) {
    size_t n = text_.size();
    in_quote_.assign(n, false);
    boundary_.assign(n + 1, false);
    std::vector<Piece> raw;
    for (const v1::Span& s : rich.spans()) {
      uint64_t start = s.offset();
      uint64_t end = start + s.length();
      if (s.length() == 0 || end > n || !IsCharBoundary(text_, start) ||
          !IsCharBoundary(text_, end)) {
        continue;
      }
      switch (s.kind()) {
        case v1::Span::PRE:
          pre_spans_.push_back({start, end, s.language()});
          break;
        case v1::Span::QUOTE:
          for (uint64_t i = start; i < end; ++i) in_quote_[i] = true;
          break;
        case v1::Span::BOLD:
        case v1::Span::ITALIC:
        case v1::Span::STRIKE:
        case v1::Span::CODE:
          raw.push_back({s.kind(), start, end, "", ""});
          break;
        case v1::Span::LINK:
        case v1::Span::CHANNEL_MENTION:
          if (!s.url().empty()) {
            raw.push_back({v1::Span::LINK, start, end, s.url(), ""});
          }
          break;
        case v1::Span::MENTION:
          raw.push_back({v1::Span::MENTION, start, end, "", s.user_id()});
          break;
        default:
          break;  // UNDERLINE, SPOILER, unknown: plain text.
      }
    }
    // Code blocks: in order, without overlaps.
    std::sort(
        pre_spans_.begin(), pre_spans_.end(),
        [](const PreSpan& a, const PreSpan& b) { return a.start < b.start; });
    size_t covered = 0;
    for (const PreSpan& p : pre_spans_) {
      if (p.start < covered) continue;
      pres_.emplace_back(p.start, p.end);
      languages_.push_back(p.language);
      covered = p.end;
    }
    // Inline spans: outside code blocks, one line each.
    std::vector<Piece> lined;
    for (const Piece& p : raw) {
      size_t a = p.start;
      while (a < p.end) {
        size_t b = p.end;
        for (const auto& [ps, pe] : pres_) {
          if (ps <= a && a < pe) a = pe;
          if (a < ps && ps < b) b = ps;
        }
        if (a >= p.end) break;
        if (p.kind != v1::Span::MENTION) {
          size_t nl = text_.find('\n', a);
          if (nl != std::string::npos && nl < b) b = nl;
        }
        if (a < b) {
          Piece q = p;
          q.start = a;
          q.end = b;
          lined.push_back(std::move(q));
        }
        a = b;
        if (a < p.end && text_[a] == '\n' && p.kind != v1::Span::MENTION) ++a;
      }
    }
    Trim(&lined);
    // Atomic pieces (code, mentions) never overlap; others never start or
    // end inside one.
    std::sort(lined.begin(), lined.end(), PieceOrder);
    std::vector<std::pair<size_t, size_t>> atoms;
    std::vector<Piece> kept;
    for (const Piece& p : lined) {
      if (!IsAtomic(p)) continue;
      if (!atoms.empty() && p.start < atoms.back().second) continue;
      atoms.emplace_back(p.start, p.end);
      kept.push_back(p);
    }
    for (Piece p : lined) {
      if (IsAtomic(p)) continue;
      for (const auto& [as, ae] : atoms) {
        if (as < p.start && p.start < ae) p.start = ae;
        if (as < p.end && p.end < ae) p.end = as;
      }
      if (p.start < p.end) kept.push_back(std::move(p));
    }
    SplitCrossing(&kept);
    Trim(&kept);
    std::sort(kept.begin(), kept.end(), PieceOrder);
    for (Piece& p : kept) {
      if (p.kind == v1::Span::ITALIC) {
        p.underscore = (p.start == 0 || !IsWordChar(text_[p.start - 1])) &&
                       (p.end >= n || !IsWordChar(text_[p.end]));
      }
      boundary_[p.start] = true;
      boundary_[p.end] = true;
    }
    pieces_ = std::move(kept);
  }

  // Removes leading and trailing whitespace from emphasis pieces (markdown
  // does not allow "** x**"); drops pieces that become empty.
  void Trim(std::vector<Piece>* pieces) {
    std::vector<Piece> out;
    for (Piece p : *pieces) {
      if (p.kind == v1::Span::BOLD || p.kind == v1::Span::ITALIC ||
          p.kind == v1::Span::STRIKE) {
        while (p.start < p.end && IsSpace(text_[p.start])) ++p.start;
        while (p.end > p.start && IsSpace(text_[p.end - 1])) --p.end;
      }
      if (p.start < p.end) out.push_back(std::move(p));
    }
    *pieces = std::move(out);
  }

  // Splits pieces that overlap without nesting, so that markers nest.
  void SplitCrossing(std::vector<Piece>* pieces) {
    int splits = 0;
    bool changed = true;
    while (changed && splits < kMaxSplits) {
      changed = false;
      std::sort(pieces->begin(), pieces->end(), PieceOrder);
      for (size_t i = 0; i < pieces->size() && !changed; ++i) {
        for (size_t j = i + 1; j < pieces->size(); ++j) {
          Piece& a = (*pieces)[i];
          Piece& b = (*pieces)[j];
          if (b.start >= a.end) break;
          if (b.end > a.end && b.start > a.start) {
            Piece tail = b;
            tail.start = a.end;
            b.end = a.end;
            pieces->push_back(std::move(tail));
            changed = true;
            ++splits;
            break;
          }
        }
      }
    }
  }

  std::string OpenMarker(const Piece& p) const {
    switch (p.kind) {
      case v1::Span::BOLD:
        return "**";
      case v1::Span::ITALIC:
        return p.underscore ? "_" : "*";
      case v1::Span::STRIKE:
        return "~~";
      case v1::Span::LINK:
        return "[";
      default:
        return "";
    }
  }

  std::string CloseMarker(const Piece& p) const {
    if (p.kind == v1::Span::LINK) {
      return absl::StrCat("](", EscapeUrl(p.url), ")");
    }
    return OpenMarker(p);
  }

  // Closes every open piece that ends at or before `pos`; pieces above them
  // on the stack that go on are closed and reopened.
  void CloseEndingAt(size_t pos) {
    auto ends = [pos](const Piece* p) { return p->end <= pos; };
    if (std::none_of(stack_.begin(), stack_.end(), ends)) return;
    std::vector<const Piece*> reopen;
    while (std::any_of(stack_.begin(), stack_.end(), ends)) {
      const Piece* top = stack_.back();
      stack_.pop_back();
      out_ += CloseMarker(*top);
      if (!ends(top)) reopen.push_back(top);
    }
    for (auto it = reopen.rbegin(); it != reopen.rend(); ++it) {
      out_ += OpenMarker(**it);
      stack_.push_back(*it);
    }
  }

  void RenderAtomic(const Piece& p) {
    absl::string_view content(text_.data() + p.start, p.end - p.start);
    if (p.kind == v1::Span::MENTION) {
      absl::string_view name = content;
      if (!name.empty() && name.front() == '@') name.remove_prefix(1);
      bool id_ok = !p.user_id.empty() &&
                   p.user_id.find_first_of(") \t\r\n") == std::string::npos;
      if (options_.native_mentions && id_ok && !name.empty()) {
        std::string escaped_name;
        for (char c : name) {
          if (c == '\\' || c == '[' || c == ']') escaped_name.push_back('\\');
          escaped_name.push_back(c);
        }
        absl::StrAppend(&out_, "@[", escaped_name, "](user:", p.user_id, ")");
      } else {
        for (size_t i = p.start; i < p.end;) {
          size_t len = 1;
          while (i + len < p.end && !IsCharBoundary(text_, i + len)) ++len;
          EmitEscaped(i, len);
          i += len;
        }
      }
      return;
    }
    // Inline code: a fence longer than any backtick run inside.
    size_t longest = 0;
    for (size_t i = 0; i < content.size();) {
      size_t r = RunLength(content, i, '`');
      longest = std::max(longest, r);
      i += r > 0 ? r : 1;
    }
    std::string fence(longest + 1, '`');
    bool pad = content.front() == '`' || content.back() == '`' ||
               (content.front() == ' ' && content.back() == ' ');
    absl::StrAppend(&out_, fence, pad ? " " : "", content, pad ? " " : "",
                    fence);
  }

  void RenderPre(const std::pair<size_t, size_t>& pre) {
    size_t index = &pre - pres_.data();
    absl::string_view content(text_.data() + pre.first, pre.second - pre.first);
    size_t longest = 0;
    for (size_t i = 0; i < content.size();) {
      size_t r = RunLength(content, i, '`');
      longest = std::max(longest, r);
      i += r > 0 ? r : 1;
    }
    std::string fence(std::max<size_t>(3, longest + 1), '`');
    std::string language;
    for (char c : languages_[index]) {
      if (!IsSpace(c) && c != '`') language.push_back(c);
    }
    if (!out_.empty() && out_.back() != '\n') out_ += '\n';
    absl::StrAppend(&out_, fence, language, "\n", content, "\n", fence);
    if (pre.second < text_.size() && text_[pre.second] != '\n') out_ += '\n';
  }

  // Writes text_[pos, pos+len) with markdown escapes where needed.
  void EmitEscaped(size_t pos, size_t len) {
    if (len == 1 && NeedsEscape(pos)) out_.push_back('\\');
    out_.append(text_, pos, len);
  }

  bool NeedsEscape(size_t pos) const {
    char c = text_[pos];
    size_t n = text_.size();
    char before = pos > 0 ? text_[pos - 1] : ' ';
    char after = pos + 1 < n ? text_[pos + 1] : ' ';
    bool at_boundary = boundary_[pos] || boundary_[pos + 1];
    switch (c) {
      case '\\':
      case '`':
      case '[':
      case ']':
        return true;
      case '*':
        return at_boundary || !(IsSpace(before) && IsSpace(after));
      case '_':
        if (at_boundary) return true;
        if (IsWordChar(before) && IsWordChar(after)) return false;
        return !(IsSpace(before) && IsSpace(after));
      case '~':
        return at_boundary || before == '~' || after == '~';
      case '>': {
        // Only the first non-blank character of a line starts a quote.
        size_t i = pos;
        while (i > 0 && text_[i - 1] == ' ') --i;
        return i == 0 || text_[i - 1] == '\n';
      }
      default:
        return false;
    }
  }

  struct PreSpan {
    size_t start;
    size_t end;
    std::string language;
  };

  const std::string& text_;
  MarkdownRenderOptions options_;
  std::vector<PreSpan> pre_spans_;
  std::vector<std::pair<size_t, size_t>> pres_;
  std::vector<std::string> languages_;
  std::vector<bool> in_quote_;
  std::vector<bool> boundary_;
  std::vector<Piece> pieces_;
  std::vector<const Piece*> stack_;
  std::string out_;
};

}  // namespace

v1::RichText MarkdownToRichText(absl::string_view markdown) {
  std::string out;
  std::vector<v1::Span> spans;
  InlineParser inline_parser(&out, &spans);
  std::vector<absl::string_view> lines = absl::StrSplit(markdown, '\n');
  for (absl::string_view& line : lines) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  }
  bool first = true;
  auto begin_line = [&] {
    if (!first) out.push_back('\n');
    first = false;
  };
  size_t k = 0;
  while (k < lines.size()) {
    size_t fence = 0;
    std::string language;
    absl::string_view quoted;
    if (IsFenceOpen(lines[k], &fence, &language)) {
      size_t m = k + 1;
      while (m < lines.size() && !IsFenceClose(lines[m], fence)) ++m;
      begin_line();
      size_t start = out.size();
      for (size_t j = k + 1; j < m; ++j) {
        if (j > k + 1) out.push_back('\n');
        out.append(lines[j].data(), lines[j].size());
      }
      AddSpan(&spans, v1::Span::PRE, start, out.size() - start, "", "",
              language);
      k = m < lines.size() ? m + 1 : m;
      continue;
    }
    if (IsQuoteLine(lines[k], &quoted)) {
      std::string block(quoted);
      ++k;
      while (k < lines.size() && IsQuoteLine(lines[k], &quoted)) {
        absl::StrAppend(&block, "\n", quoted);
        ++k;
      }
      begin_line();
      size_t start = out.size();
      inline_parser.Parse(block, 0);
      AddSpan(&spans, v1::Span::QUOTE, start, out.size() - start);
      continue;
    }
    if (IsBlank(lines[k])) {
      begin_line();
      out.append(lines[k].data(), lines[k].size());
      ++k;
      continue;
    }
    std::string paragraph(lines[k]);
    ++k;
    while (k < lines.size() && !IsBlank(lines[k]) &&
           !IsFenceOpen(lines[k], &fence, &language) &&
           !IsQuoteLine(lines[k], &quoted)) {
      absl::StrAppend(&paragraph, "\n", lines[k]);
      ++k;
    }
    begin_line();
    inline_parser.Parse(paragraph, 0);
  }
  SortSpans(&spans);
  v1::RichText rich;
  rich.set_text(std::move(out));
  for (v1::Span& s : spans) *rich.add_spans() = std::move(s);
  return rich;
}

std::string RichTextToMarkdown(const v1::RichText& text,
                               const MarkdownRenderOptions& options) {
  return Renderer(text, options).Render();
}

std::string EscapeMarkdown(absl::string_view text) {
  v1::RichText rich;
  rich.set_text(std::string(text));
  return RichTextToMarkdown(rich);
}

}  // namespace imbridge::adapters::markup
