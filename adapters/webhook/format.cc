#include "adapters/webhook/format.h"

#include <algorithm>
#include <set>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "adapters/common/markup/slack_mrkdwn.h"

namespace imbridge::adapters::webhook {
namespace {

void SortSpans(v1::RichText* out) {
  std::stable_sort(out->mutable_spans()->begin(), out->mutable_spans()->end(),
                   [](const v1::Span& a, const v1::Span& b) {
                     if (a.offset() != b.offset()) {
                       return a.offset() < b.offset();
                     }
                     return a.length() > b.length();
                   });
}

const nlohmann::json* StringField(const nlohmann::json& object,
                                  const char* name) {
  auto it = object.find(name);
  if (it == object.end() || !it->is_string() ||
      it->get_ref<const std::string&>().empty()) {
    return nullptr;
  }
  return &*it;
}

// Adds a span of `kind` from `start` to the end of `out`'s text (none if
// nothing was appended since `start`).
void AddSpanFrom(v1::RichText* out, v1::Span::Kind kind, size_t start,
                 const std::string& url = "") {
  if (out->text().size() <= start) return;
  v1::Span* span = out->add_spans();
  span->set_kind(kind);
  span->set_offset(static_cast<uint32_t>(start));
  span->set_length(static_cast<uint32_t>(out->text().size() - start));
  if (!url.empty()) span->set_url(url);
}

// Ends the current line of `out` if it has text.
void NewLine(v1::RichText* out) {
  if (!out->text().empty() && out->text().back() != '\n') {
    out->mutable_text()->push_back('\n');
  }
}

}  // namespace

void AppendMrkdwn(absl::string_view text, bool formatting, v1::RichText* out) {
  v1::RichText parsed = markup::MrkdwnToRichText(text, nullptr, formatting);
  const uint32_t base = static_cast<uint32_t>(out->text().size());
  out->mutable_text()->append(parsed.text());
  for (v1::Span& span : *parsed.mutable_spans()) {
    // The ids are Slack's or made up by the sender, not users of this
    // webhook: mentions stay the plain "@U1" / "#name" they show as.
    if (span.kind() == v1::Span::MENTION ||
        span.kind() == v1::Span::CHANNEL_MENTION) {
      continue;
    }
    span.set_offset(span.offset() + base);
    *out->add_spans() = std::move(span);
  }
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
      AppendMrkdwn(text_of(value), mrkdwn_in.count(name) > 0, out);
      return true;
    };

    bool shown = part("pretext");
    part("author_name");
    if (const nlohmann::json* title = StringField(a, "title")) {
      NewLine(out);
      size_t start = out->text().size();
      AppendMrkdwn(text_of(title), false, out);
      if (const nlohmann::json* link = StringField(a, "title_link")) {
        AddSpanFrom(out, v1::Span::LINK, start,
                    link->get_ref<const std::string&>());
      }
      AddSpanFrom(out, v1::Span::BOLD, start);
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
        if (title != nullptr) {
          size_t start = out->text().size();
          AppendMrkdwn(text_of(title), false, out);
          AddSpanFrom(out, v1::Span::BOLD, start);
          if (value != nullptr) out->mutable_text()->append(": ");
        }
        if (value != nullptr) {
          AppendMrkdwn(text_of(value), mrkdwn_in.count("fields") > 0, out);
        }
        shown = true;
      }
    }
    if (const nlohmann::json* image = StringField(a, "image_url")) {
      NewLine(out);
      size_t start = out->text().size();
      out->mutable_text()->append(markup::UnescapeMrkdwn(text_of(image)));
      AddSpanFrom(out, v1::Span::LINK, start,
                  image->get_ref<const std::string&>());
    }
    if (!shown) part("fallback");
    part("footer");
  }
  SortSpans(out);
}

}  // namespace imbridge::adapters::webhook
