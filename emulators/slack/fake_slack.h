#ifndef IMBRIDGE_EMULATORS_SLACK_FAKE_SLACK_H_
#define IMBRIDGE_EMULATORS_SLACK_FAKE_SLACK_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/http/http_server.h"
#include "emulators/slack/events_sender.h"
#include "emulators/slow_answers.h"
#include "nlohmann/json.hpp"

namespace imbridge::fakes {

// One message in a fake channel.
struct FakeSlackMessage {
  std::string channel;
  std::string ts;
  std::string user;      // A person's id, or the bot user for bot posts.
  std::string bot_id;    // Set for an app's posts (ours or another's).
  std::string app_id;    // The posting app's id, with bot_id.
  std::string bot_name;  // The posting app's bot name, with bot_id.
  std::string username;  // chat.postMessage `username`.
  std::string icon_url;  // chat.postMessage `icon_url`.
  std::string text;      // mrkdwn as stored.
  std::string thread_ts;
  std::vector<std::string> file_ids;
  // chat.postMessage `metadata` ({event_type, event_payload}); null if none.
  nlohmann::json metadata;
  bool deleted = false;
  int edits = 0;
};

// One file known to the fake.
struct FakeSlackFile {
  std::string id;
  std::string name;
  std::string title;
  std::string mimetype;
  std::string content;
  std::string channel;  // Where it was shared ("" while private).
  std::string thread_ts;
  std::string initial_comment;
  std::string uploaded_by;  // User id, or the bot user.
  bool uploaded = false;    // Bytes received at the upload URL.
  bool completed = false;   // files.completeUploadExternal called.
  bool deleted = false;
};

// One channel of the fake workspace.
struct FakeSlackChannel {
  std::string id;
  std::string name;
  std::string creator;  // Who created it ("" for channels set up by tests).
  bool archived = false;
  std::set<std::string> members;  // User ids (the bot user included).
};

// Another app installed in the workspace (Chatlio's bot, say): its posts
// carry its bot_id and app_id, so that the bridge and the app itself can
// tell them from people's posts.
struct FakeSlackApp {
  std::string user_id;  // Its bot user ("U...").
  std::string bot_id;   // "B...".
  std::string app_id;   // "A...".
  std::string name;     // bot_profile.name.
};

// One Web API call the fake received.
struct FakeSlackCall {
  std::string method;   // "chat.postMessage", "upload" for the upload URL.
  nlohmann::json args;  // JSON or form arguments as a JSON object.
  std::string token;    // The bearer token sent ("" if none).
};

// Something that changed in the fake's state (for subscribers).
struct FakeSlackChange {
  // "posted", "edited", "deleted", "file", "presence", "channel_created",
  // "channel_archive", "joined" (a member joined a channel).
  std::string kind;
  std::string channel;
  // Message ts, the file id for "file", the new presence ("active" or
  // "away") for "presence".
  std::string ts;
  std::string user;  // Who did it (the bot user for the app's calls).
};

// A fake Slack workspace for tests and the sandbox: the Web API the adapter
// calls (auth.test, bots.info, chat.postMessage/update/delete (with message
// metadata), conversations.history/replies/info/join, users.info,
// users.getPresence/setPresence, files.getUploadURLExternal + the upload
// URL + files.completeUploadExternal, files.delete, apps.connections.open),
// the private file host (bearer token required), the Events API sender
// (signed POSTs) and a Socket Mode WebSocket endpoint (plain ws:// on its
// own port).
//
// Tokens: the bot token acts as the bot user; each user token registered
// with AddUserToken() ("xoxp-...") acts as its person: posts, edits,
// deletes and uploads made with it are that person's (no bot_id, and
// `username`/`icon_url` are ignored, as Slack does for user tokens), and
// users.setPresence sets that person's presence ("auto" shows as "active").
//
// Channels have members. Posting (chat.postMessage, a file shared into a
// channel) in a channel the caller is not a member of answers
// `not_in_channel`, in an archived one `is_archived`, as Slack does;
// conversations.join makes the caller a member (and emits
// member_joined_channel). Channels set up with AddChannel(), or that a
// person's action names first, have the bot as a member; CreateChannel()
// makes one whose only member is its creator (as when another app creates
// a channel) and emits `channel_created`. Like Slack, message and
// membership events of a channel are sent to the app only while the bot is
// a member; channel_created and channel_archive are always sent.
//
// Simulated people post, edit, delete, upload, join and leave with the
// methods below; each emits the event callback Slack would send, to the
// events URL (HTTP mode) or over the Socket Mode connection. Like Slack, the
// app's own posts (and the posts made with user tokens) are reported back
// as message events (echo), so the adapter's loop prevention is exercised.
//
// Thread-safe. Emitting events from people's methods blocks for the
// adapter's HTTP answer (HTTP mode); echoes are sent from a background
// thread so that the Web API never blocks on the adapter.
class FakeSlack {
 public:
  struct Options {
    std::string team_id = "T0FAKE";
    std::string bot_token = "xoxb-fake-bot-token";
    std::string app_token = "xapp-fake-app-token";
    std::string signing_secret = "fake-signing-secret-0123456789";
    std::string bot_user_id = "UBOT";
    std::string bot_id = "BBOT";
    std::string app_id = "AAPP";
    // Report the app's own posts back as events, as Slack does.
    bool echo_app_posts = true;
    // Port of the Web API (and file host); 0 picks a free one.
    uint16_t port = 0;
  };

  explicit FakeSlack(Options options);
  ~FakeSlack();  // Calls Stop().

  // Starts the Web API (and file host) on 127.0.0.1, options.port, and the
  // WebSocket endpoint on 127.0.0.1, port 0.
  absl::Status Start();
  void Stop();

  // "http://127.0.0.1:<port>/api" for the adapter's api_base_url.
  std::string api_base_url() const;
  // "http://127.0.0.1:<port>" of the fake's HTTP server.
  std::string base_url() const;
  const Options& options() const { return options_; }

  // Where events go. HTTP mode: signed POSTs to `url`.
  void SetEventsUrl(const std::string& url);
  // Socket Mode: events go over the WebSocket the app opened instead.
  void UseSocketMode(bool on);

  // The workspace.
  void AddChannel(const std::string& id, const std::string& name);
  void AddUser(const std::string& id, const std::string& display_name,
               const std::string& avatar_url = "");
  // "active" or "away"; users.getPresence answers it.
  void SetPresence(const std::string& user, const std::string& presence);
  // "active" or "away" ("away" for an unknown user).
  std::string Presence(const std::string& user) const;
  // Registers a user token: Web API calls with it act as `user_id` (added
  // as a person named `user_id` if unknown).
  void AddUserToken(const std::string& user_id, const std::string& token);
  // Makes `user` a member of `channel` without an event (setup).
  void AddMember(const std::string& channel, const std::string& user);
  // The channel, if it exists.
  std::optional<FakeSlackChannel> Channel(const std::string& id) const;

  // What a person's action produced.
  struct Sent {
    std::string ts;        // The message's ts (or the deleted one).
    std::string event_id;  // The callback's event_id.
    int http_status = 0;   // The adapter's answer (0 in Socket Mode or
                           // when the request failed).
  };
  Sent PostMessage(const std::string& channel, const std::string& user,
                   const std::string& text, const std::string& thread_ts = "");
  Sent EditMessage(const std::string& channel, const std::string& ts,
                   const std::string& new_text);
  // Changes something other than the text (a reply count), as Slack does.
  Sent TouchMessage(const std::string& channel, const std::string& ts);
  Sent DeleteMessage(const std::string& channel, const std::string& ts);
  Sent UploadFile(const std::string& channel, const std::string& user,
                  const std::string& name, const std::string& mimetype,
                  const std::string& content, const std::string& text = "",
                  const std::string& thread_ts = "");
  // `user` joins or leaves `channel` (member_joined_channel /
  // member_left_channel).
  Sent JoinChannel(const std::string& channel, const std::string& user);
  Sent LeaveChannel(const std::string& channel, const std::string& user);
  // `creator` (a person, or another app's bot user) creates the public
  // channel `id` named `name`, with the creator as its only member;
  // emits channel_created. An existing id is left as it is (empty Sent).
  Sent CreateChannel(const std::string& id, const std::string& name,
                     const std::string& creator);
  // `user` archives `channel`; emits channel_archive. Posting and joining
  // then answer is_archived.
  Sent ArchiveChannel(const std::string& channel, const std::string& user);
  // Another app posts `text` in `channel` (it must be a member, else the
  // Sent is empty): a message carrying the app's bot_id, app_id and
  // bot_profile; with `username`, subtype bot_message as Slack sends it.
  Sent PostAsApp(const std::string& channel, const FakeSlackApp& app,
                 const std::string& text, const std::string& username = "");

  // Sends a stored callback again, as Slack's retry `retry_num` would.
  // Returns the adapter's HTTP status (0 on transport failure).
  int Redeliver(const std::string& event_id, int retry_num,
                const std::string& reason = "http_timeout");
  // The callback body of `event_id` exactly as sent.
  std::string CallbackBody(const std::string& event_id) const;
  // The event_id of the message event Slack sent (or would send) about the
  // message `ts` of `channel` being posted; "" if none.
  std::string PostedEventId(const std::string& channel,
                            const std::string& ts) const;
  // The signed-request sender (for bad-input tests).
  SlackEventsSender sender() const;

  // Downloads of files (GET of url_private_download) are answered `delay`
  // after the request came (a slow download); zero (the default) at once.
  void DelayDownloads(absl::Duration delay);

  // Files hosted elsewhere: a GET of this file's url_private_download
  // redirects (302) to `location`.
  void RedirectFile(const std::string& file_id, const std::string& location);

  // State.
  std::vector<FakeSlackMessage> Messages(const std::string& channel) const;
  std::optional<FakeSlackFile> File(const std::string& id) const;
  std::vector<FakeSlackCall> Calls(const std::string& method = "") const;
  // Waits until `method` was called at least `n` times.
  bool WaitForCalls(const std::string& method, size_t n,
                    absl::Duration timeout = absl::Seconds(30)) const;
  // Waits until `pred` holds for the messages of `channel`.
  bool WaitForMessages(
      const std::string& channel,
      const std::function<bool(const std::vector<FakeSlackMessage>&)>& pred,
      absl::Duration timeout = absl::Seconds(30)) const;
  // Called (outside the fake's lock) after every change.
  void OnChange(std::function<void(const FakeSlackChange&)> callback);

  // Failure injection: the next `n` calls of `method` answer `http_status`
  // (429 adds Retry-After: `retry_after_seconds`) with ok:false and `error`.
  void FailNext(const std::string& method, int n, int http_status,
                const std::string& error, int retry_after_seconds = 0);

  // Slowness injection: calls of `method` take effect at once but are
  // answered `delay` later (zero: at once), as when Slack is slow to answer.
  void DelayAnswers(const std::string& method, absl::Duration delay);
  // Calls answered late that have not been answered yet.
  int delayed_answers_pending() const;

  // Socket Mode observations.
  bool socket_connected() const;
  // Envelope ids the app acknowledged, in order.
  std::vector<std::string> acked_envelopes() const;
  // The event_id carried by an envelope.
  std::string EventIdOfEnvelope(const std::string& envelope_id) const;
  // Sends {"type":"disconnect"} to the app, as Slack does before rotating.
  void RequestSocketReconnect();

  class WebSocketEndpoint;

 private:
  struct Failure {
    int remaining = 0;
    int http_status = 0;
    std::string error;
    int retry_after = 0;
  };

  void ServeApi(const HttpRequest& request,
                const std::shared_ptr<Responder>& responder);
  void ServeUpload(const HttpRequest& request,
                   const std::shared_ptr<Responder>& responder);
  void ServeFile(const HttpRequest& request,
                 const std::shared_ptr<Responder>& responder);
  // Runs a Web API method as `caller` (the bot user or a token's person);
  // returns the JSON answer. Called under mu_.
  nlohmann::json Call(const std::string& method, const nlohmann::json& args,
                      const std::string& caller,
                      std::vector<nlohmann::json>* echoes,
                      std::vector<FakeSlackChange>* changes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The channel `id`, created with the bot as a member if missing.
  FakeSlackChannel& EnsureChannel(const std::string& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // "" when `user` may post in `channel`, else Slack's error.
  std::string PostError(const std::string& channel, const std::string& user)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether the app is sent `callback` (see the class comment).
  bool AppSees(const nlohmann::json& callback) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string NextTs() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Wraps an inner event into a callback with a new event_id and stores it.
  nlohmann::json Callback(nlohmann::json event)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  nlohmann::json MessageJson(const FakeSlackMessage& m) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  nlohmann::json FileJson(const FakeSlackFile& f) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  FakeSlackMessage* FindMessage(const std::string& channel,
                                const std::string& ts)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A new message of `user` in `channel`, stamped with the next ts; with
  // `as_bot`, a post of this app's bot (bot_id, app_id, bot name).
  FakeSlackMessage NewMessage(const std::string& channel,
                              const std::string& user, bool as_bot)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A hidden `message` event of `subtype` ("message_changed",
  // "message_deleted") in `channel` about the message that was `previous`,
  // stamped with the next ts.
  nlohmann::json HiddenMessageEvent(const std::string& subtype,
                                    const std::string& channel,
                                    nlohmann::json previous)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stores `m` and returns the message event Slack sends about it (before
  // its callback wrapping).
  nlohmann::json StoreMessage(const FakeSlackMessage& m)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The end of a person's action: tells the subscribers of `changes`, then
  // delivers `callback` (Emit); returns `sent` with the callback's event_id
  // and the app's answer. Called without mu_.
  Sent Announce(Sent sent, const nlohmann::json& callback,
                const std::vector<FakeSlackChange>& changes);
  // Delivers a callback now (HTTP: blocking POST; socket: envelope).
  int Emit(const nlohmann::json& callback, int retry_num = 0,
           const std::string& reason = "");
  void Notify(const std::vector<FakeSlackChange>& changes);
  void OnSocketMessage(const std::string& text);
  void EchoLoop();

  const Options options_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<WebSocketEndpoint> ws_;

  mutable absl::Mutex mu_;
  std::string events_url_ ABSL_GUARDED_BY(mu_);
  bool socket_mode_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, FakeSlackChannel> channels_ ABSL_GUARDED_BY(mu_);
  // User token -> user id.
  std::map<std::string, std::string> user_tokens_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, nlohmann::json> users_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> presence_ ABSL_GUARDED_BY(mu_);
  std::vector<FakeSlackMessage> messages_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, FakeSlackFile> files_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> redirects_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> callbacks_ ABSL_GUARDED_BY(mu_);
  std::vector<FakeSlackCall> calls_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Failure> failures_ ABSL_GUARDED_BY(mu_);
  SlowAnswers slow_;
  std::vector<std::function<void(const FakeSlackChange&)>> subscribers_
      ABSL_GUARDED_BY(mu_);
  std::deque<nlohmann::json> echo_queue_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> acked_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> envelope_events_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Duration download_delay_ ABSL_GUARDED_BY(mu_);
  // Threads that send delayed downloads; joined by Stop().
  std::vector<std::thread> delayed_ ABSL_GUARDED_BY(mu_);
  uint64_t counter_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t last_ts_micros_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread echo_thread_;
};

}  // namespace imbridge::fakes

#endif  // IMBRIDGE_EMULATORS_SLACK_FAKE_SLACK_H_
