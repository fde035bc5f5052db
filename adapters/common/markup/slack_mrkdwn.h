#ifndef IMBRIDGE_ADAPTERS_COMMON_MARKUP_SLACK_MRKDWN_H_
#define IMBRIDGE_ADAPTERS_COMMON_MARKUP_SLACK_MRKDWN_H_

#include <functional>
#include <string>

#include "absl/strings/string_view.h"
#include "imbridge/v1/events.pb.h"

// Conversion between Slack's mrkdwn and the bridge's RichText
// (platforms.md 1.9), shared by the Slack adapter and the webhook adapter
// (whose incoming webhooks take Slack-compatible payloads). Every function here
// is pure, thread-safe and non-blocking (apart from what a UserNameResolver
// does).

namespace imbridge::adapters::markup {

// Returns the name to show for a Slack user id met in a `<@U…>` mention
// (for example the user's display name from users.info); empty when
// unknown, in which case the id is shown.
using UserNameResolver = std::function<std::string(absl::string_view user_id)>;

// Parses mrkdwn as it arrives in Slack events (with `&amp;`, `&lt;`, `&gt;`
// escapes) into plain text plus spans:
//   *bold* _italic_ ~strike~ `code`        BOLD, ITALIC, STRIKE, CODE (nested
//                                          styles become nested spans)
//   ```block```                             PRE (one leading and trailing
//                                          newline inside the fence dropped)
//   > quoted line (also "&gt; ")            QUOTE over consecutive lines
//   <@U123> / <@U123|name>                  MENTION "@Name" (user_id U123)
//   <#C123|general>                         CHANNEL_MENTION "#general"
//   <!here> <!channel> <!everyone>          "@here" ...
//   <!subteam^S1|@team> <!date^…|fallback>  the label
//   <https://x|label> / <https://x>         LINK (url, text = label or url)
// Style markers follow Slack's rules: an opening marker starts a word and
// is followed by a non-space, a closing one ends a word, both on one line;
// other markers stay literal. `resolve_user` may be null. Without `styles`
// only the escapes and the <...> entities are converted; style markers,
// fences and quotes stay literal text (Slack's "mrkdwn": false).
v1::RichText MrkdwnToRichText(absl::string_view mrkdwn,
                              const UserNameResolver& resolve_user,
                              bool styles = true);

// How RichTextToMrkdwn renders what Slack cannot show natively.
struct MrkdwnOptions {
  // Render MENTION spans as `<@user_id>` (only when the ids are Slack ids of
  // the same workspace); otherwise the span's text is rendered as is.
  bool native_mentions = false;
};

// Renders RichText as mrkdwn for chat.postMessage/chat.update: the text is
// escaped (& < > only), spans become markers (UNDERLINE and SPOILER have no
// mrkdwn form and render as plain text), links `<url|label>`, quotes "> "
// line prefixes. Spans that overlap without nesting are split so that the
// markers nest; style spans are trimmed of surrounding whitespace and split
// at newlines, as Slack requires. Spans out of range or off UTF-8
// character boundaries are ignored.
std::string RichTextToMrkdwn(const v1::RichText& text,
                             const MrkdwnOptions& options = {});

// Escapes `&`, `<` and `>` as Slack requires in message text.
std::string EscapeMrkdwn(absl::string_view text);

// Reverses EscapeMrkdwn (`&amp;`, `&lt;`, `&gt;`; other entities stay).
std::string UnescapeMrkdwn(absl::string_view text);

}  // namespace imbridge::adapters::markup

#endif  // IMBRIDGE_ADAPTERS_COMMON_MARKUP_SLACK_MRKDWN_H_
