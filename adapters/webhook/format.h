#ifndef IMBRIDGE_ADAPTERS_WEBHOOK_FORMAT_H_
#define IMBRIDGE_ADAPTERS_WEBHOOK_FORMAT_H_

#include "absl/strings/string_view.h"
#include "imbridge/v1/events.pb.h"
#include "nlohmann/json.hpp"

// Text conversions of the generic webhook adapter: Slack's "mrkdwn" (what
// Slack-compatible incoming webhooks send) to RichText and Slack's legacy
// message attachments to RichText. (Outgoing webhooks carry Markdown from
// adapters/common/markup/markdown.h.) Pure functions; thread-safe.

namespace imbridge::adapters::webhook {

// Appends Slack mrkdwn `text` to `out`, parsed by the shared mrkdwn
// converter (markup::MrkdwnToRichText): <url|label> and <url> become LINK
// spans, <@U1>, <#C1|name> and <!here> the plain text "@U1", "#name" and
// "@here" (no mention spans: the ids are not this webhook's users), and
// &amp; &lt; &gt; are decoded. With `formatting`, also *bold*, _italic_,
// ~strike~, `code`, ```pre``` and "> " quotes become spans. Spans in `out`
// stay sorted by offset.
void AppendMrkdwn(absl::string_view text, bool formatting, v1::RichText* out);

// Appends the legacy attachments `attachments` (a JSON array of objects) the
// way Slack shows them: per attachment its pretext, author_name, title
// (bold, linked to title_link), text, fields ("title: value" lines),
// image_url and footer, each on its own line; the fallback when it has none
// of pretext, title, text and fields. Attachments are separated from what
// `out` already holds by a newline. Which parts are mrkdwn follows each
// attachment's "mrkdwn_in" (links are always converted). Non-object entries
// and non-string fields are skipped.
void AppendSlackAttachments(const nlohmann::json& attachments,
                            v1::RichText* out);

}  // namespace imbridge::adapters::webhook

#endif  // IMBRIDGE_ADAPTERS_WEBHOOK_FORMAT_H_
