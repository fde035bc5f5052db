#ifndef IMBRIDGE_EMULATORS_CHATLIO_FAKE_CHATLIO_H_
#define IMBRIDGE_EMULATORS_CHATLIO_FAKE_CHATLIO_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "emulators/slack/fake_slack.h"

namespace imbridge::fakes {

// One webhook the fake sent.
struct FakeChatlioWebhook {
  std::string type;     // "new-conversation", "transcript", ...
  std::string body;     // The JSON as sent.
  int http_status = 0;  // The answer (0 when the request failed).
};

// One line of the widget as the visitor sees it.
struct FakeChatlioLine {
  bool from_visitor = false;
  std::string text;
};

// An emulated Chatlio widget for tests and the sandbox, working as Chatlio
// does (../shared/platforms.md §5, docs/chatlio.md) against an emulated
// Slack workspace (FakeSlack) in which it is an app of its own (its bot user,
// bot_id and app_id, Options::app):
//
// - A visitor's first message creates the visitor's Slack channel (created
//   by Chatlio's bot user, named after the visitor's handle) and sends the
//   new-conversation webhook naming it (slackChannelId); the visitor's
//   messages are posted there by Chatlio's bot (PostAsApp).
// - Everything posted in a visitor's channel by a person (a message without
//   a bot_id: a Slack user, or the bridge posting with a user token) reaches
//   the visitor (Received()); messages of bots, the bridge's bot included,
//   and Chatlio's own do not.
// - Online rule: the widget is online while some person who is a member of
//   the connected channel (Options::connected_channel) is "active" in Slack;
//   checked every Options::online_check_interval (30 s as Chatlio does;
//   short in tests). A visitor's first message while offline is an offline
//   message: the offline-message webhook, and no channel.
// - Webhooks (JSON POSTs in the shapes of Chatlio's documentation) to
//   "<webhook_url>/<type>": new-conversation, offline-message, feedback,
//   not-answered, and the transcript when a conversation ends
//   (EndConversation(), which also archives the channel).
//
// Thread-safe. Methods that send a webhook block for its answer.
class FakeChatlio {
 public:
  struct Options {
    // Chatlio's app in the workspace.
    FakeSlackApp app = {"UCHATLIO", "BCHATLIO", "ACHATLIO", "Chatlio"};
    // The Slack channel the widget is connected to (id and name), created
    // by Start() if the workspace lacks it.
    std::string connected_channel = "CSUPPORT";
    std::string connected_channel_name = "support";
    // How often the online rule is evaluated.
    absl::Duration online_check_interval = absl::Seconds(30);
    // Where the webhooks go: "<adapter>/chatlio/<account>/<secret>"; each
    // type is POSTed to "<webhook_url>/<type>". Empty: none are sent.
    std::string webhook_url;
    // The workspace's URL, for archiveUrl.
    std::string slack_url = "https://fake.slack.com";
  };

  // `slack` must outlive this object and be started.
  FakeChatlio(Options options, FakeSlack* slack);
  ~FakeChatlio();  // Calls Stop().

  // Subscribes to the workspace's changes, evaluates the online rule once
  // and starts checking it every online_check_interval.
  absl::Status Start();
  void Stop();

  void SetWebhookUrl(const std::string& url);
  // Calls `fn` after every change of what the visitor sees (a line, the
  // online state), on whatever thread made it, without the fake's lock.
  // Register before Start().
  void OnChange(std::function<void()> fn);

  // Whether the widget shows online (as of the last check).
  bool online() const;
  // Evaluates the online rule now (as the periodic check does).
  bool CheckOnline();
  // Waits until online() is `want`.
  bool WaitForOnline(bool want, absl::Duration timeout = absl::Seconds(30));

  // Visitor `visitor` (any id; its display name `name`, may be empty) types
  // `text` in the widget. Online: the first message of a conversation
  // creates the visitor's channel and sends the new-conversation webhook;
  // every message is posted in the channel by Chatlio's bot. Offline, with
  // no conversation going on: the offline-message webhook. Returns the
  // visitor's Slack channel ("" for an offline message) or an error.
  absl::StatusOr<std::string> VisitorSays(const std::string& visitor,
                                          const std::string& text,
                                          const std::string& name = "");
  // What reached visitor `visitor`: the texts of people's messages in the
  // visitor's channel, in order, as the widget shows them: Chatlio renders
  // Slack's mrkdwn, so a delivery "*Ann (teamspirit)*: hi" reads
  // "Ann (teamspirit): hi" (markers of bold, italic and strike dropped,
  // links as their label, &lt; &gt; &amp; decoded).
  std::vector<std::string> Received(const std::string& visitor) const;
  bool WaitForReceived(const std::string& visitor, size_t n,
                       absl::Duration timeout = absl::Seconds(30)) const;
  // The widget as visitor `visitor` sees it: what they typed and what reached
  // them, in order, over all their conversations.
  std::vector<FakeChatlioLine> Lines(const std::string& visitor) const;
  // The visitor's conversation: Slack channel and conversationUUID ("" when
  // none is going on).
  std::string ChannelOf(const std::string& visitor) const;
  std::string ConversationOf(const std::string& visitor) const;

  // The visitor rates the conversation (feedback webhook).
  absl::Status Feedback(const std::string& visitor, const std::string& text);
  // Nobody answered the visitor in time (not-answered webhook).
  absl::Status NotAnswered(const std::string& visitor);
  // Ends the visitor's conversation: sends the transcript webhook and
  // archives the channel. The next message starts a new conversation.
  absl::Status EndConversation(const std::string& visitor);

  // Every webhook sent, in order.
  std::vector<FakeChatlioWebhook> webhooks() const;

 private:
  struct Line {
    std::string text;
    std::string ts;
    std::string user;  // "" for the visitor
    std::string username;
    bool visitor = false;
  };
  struct Conversation {
    std::string visitor;
    std::string name;
    std::string handle;
    std::string uuid;
    std::string channel;
    std::string first_message;
    std::string started_at;
    std::vector<Line> lines;  // Both sides, for the transcript.
  };

  void OnSlackChange(const FakeSlackChange& change);
  void CheckLoop();
  // Sends one webhook; records it; OK for a 2xx answer.
  absl::Status Send(const std::string& type, const std::string& body);
  nlohmann::json VisitorJson(const Conversation& c) const;
  nlohmann::json EventJson(const Conversation& c,
                           const std::string& message) const;

  const Options options_;
  FakeSlack* const slack_;
  std::function<void()> on_change_;  // Set before Start().
  absl::Notification stop_;
  std::thread checker_;

  mutable absl::Mutex mu_;
  std::string webhook_url_ ABSL_GUARDED_BY(mu_);
  bool online_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  // By visitor id: the conversation going on.
  std::map<std::string, Conversation> conversations_ ABSL_GUARDED_BY(mu_);
  // Visitor channel -> visitor id (ended conversations' channels removed).
  std::map<std::string, std::string> by_channel_ ABSL_GUARDED_BY(mu_);
  // By visitor id: the widget's lines, over all its conversations.
  std::map<std::string, std::vector<FakeChatlioLine>> lines_
      ABSL_GUARDED_BY(mu_);
  std::vector<FakeChatlioWebhook> webhooks_ ABSL_GUARDED_BY(mu_);
  uint64_t counter_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace imbridge::fakes

#endif  // IMBRIDGE_EMULATORS_CHATLIO_FAKE_CHATLIO_H_
