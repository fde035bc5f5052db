#include "adapters/slack/outbound.h"

#include <cstring>
#include <functional>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "adapters/common/markup/slack_mrkdwn.h"
#include "common/file_size.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace imbridge::adapters::slack {
namespace {

bool IsFileId(absl::string_view id) {
  return absl::StartsWith(id, kFileIdPrefix);
}

bool AlreadyGone(const absl::Status& s) {
  return absl::EndsWith(s.message(), "message_not_found") ||
         absl::EndsWith(s.message(), "file_not_found") ||
         absl::EndsWith(s.message(), "file_deleted");
}

// How much earlier than the recorded intent a message's ts may be (Slack's
// clock against ours).
constexpr absl::Duration kClockSkew = absl::Minutes(5);

bool NotInChannel(const absl::Status& s) {
  return absl::EndsWith(s.message(), "not_in_channel");
}

// Makes `call` (a post into `channel` by `poster`); when Slack answers that
// the poster is not in the channel, joins it and makes `call` once more.
template <typename T>
absl::StatusOr<T> PostJoining(const SlackApi* poster,
                              const std::string& channel,
                              const std::function<absl::StatusOr<T>()>& call) {
  absl::StatusOr<T> result = call();
  if (result.ok() || !NotInChannel(result.status())) return result;
  LogInfo("not in the channel; joining it", {{"channel", channel}});
  absl::Status joined = poster->JoinChannel(channel);
  if (!joined.ok()) return joined;
  return call();
}

// A person's post cannot show the sender's name as the bot's can
// (username): it leads the text.
std::string WithSenderLine(absl::string_view sender_name,
                           absl::string_view text) {
  if (sender_name.empty()) return std::string(text);
  return absl::StrCat("*", markup::EscapeMrkdwn(sender_name), "*: ", text);
}

}  // namespace

std::string JournalTarget(absl::string_view account,
                          absl::string_view channel) {
  return absl::StrCat("slack/", account, "/", channel);
}

SlackOutbound::SlackOutbound(Options options, const SlackApi* api,
                             BlobFetcher blobs, DeliveryJournal* journal,
                             ServiceUser service_user)
    : options_(std::move(options)),
      api_(api),
      service_user_(service_user),
      blobs_(std::move(blobs)),
      limiter_(options_.messages_per_second, options_.burst),
      journal_(journal) {}

absl::Status SlackOutbound::Pace(const std::string& channel) {
  return stopping_.Pause(limiter_.Reserve(channel, absl::Now()));
}

absl::StatusOr<const SlackApi*> SlackOutbound::PosterFor(
    const std::string& channel) {
  if (service_user_.api == nullptr || service_user_.channels == nullptr) {
    return api_;
  }
  absl::StatusOr<bool> as_user = service_user_.channels->PostsAsUser(channel);
  if (!as_user.ok()) return as_user.status();
  return *as_user ? service_user_.api : api_;
}

absl::StatusOr<std::vector<std::string>> SlackOutbound::SendMessage(
    const v1::Delivery& d) {
  const v1::MessagePosted& p = d.event().posted();
  const std::string& channel = d.target().chat_id();
  absl::StatusOr<const SlackApi*> poster_or = PosterFor(channel);
  if (!poster_or.ok()) return poster_or.status();
  const SlackApi* poster = *poster_or;
  const bool as_user = AsUser(poster);
  std::string thread_ts = d.thread_root_target_id().empty()
                              ? d.reply_to_target_id()
                              : d.thread_root_target_id();
  markup::MrkdwnOptions render;
  render.native_mentions = d.event().channel().platform() == "slack" &&
                           d.event().channel().account() == options_.account;
  std::string text = markup::RichTextToMrkdwn(p.text(), render);
  std::vector<const v1::Attachment*> files;
  for (const v1::Attachment& a : p.attachments()) {
    if (!a.blob_id().empty()) {
      files.push_back(&a);
      continue;
    }
    std::string reason = a.unavailable_reason().empty()
                             ? "not available"
                             : a.unavailable_reason();
    absl::StrAppend(&text, text.empty() ? "" : "\n", "_file ",
                    markup::EscapeMrkdwn(a.name()), " (",
                    FileSizeText(a.size()), "): ", markup::EscapeMrkdwn(reason),
                    "_");
  }
  using Ids = std::vector<std::string>;
  const std::string& key = d.idempotency_key();
  std::vector<DeliveryJournal::StepCall> steps;
  const bool post_text = !text.empty() || files.empty();
  if (post_text) {
    if (text.empty()) text = " ";
    if (as_user) text = WithSenderLine(d.sender_name(), text);
    steps.push_back([&]() -> absl::StatusOr<Ids> {
      IMB_RETURN_IF_ERROR(Pace(channel));
      auto ts = PostJoining<std::string>(poster, channel, [&] {
        // A person's post shows the person: no username or icon.
        return poster->PostMessage(
            channel, text, as_user ? "" : d.sender_name(),
            as_user ? "" : p.sender().avatar_url(), thread_ts, key);
      });
      if (!ts.ok()) return ts.status();
      return Ids{*ts};
    });
  }
  std::string comment =
      d.sender_name().empty()
          ? ""
          : absl::StrCat("*", markup::EscapeMrkdwn(d.sender_name()), "*");
  for (const v1::Attachment* a : files) {
    steps.push_back([&, a]() -> absl::StatusOr<Ids> {
      auto data = blobs_(a->blob_id(), options_.max_file_bytes);
      if (!data.ok()) return data.status();
      IMB_RETURN_IF_ERROR(Pace(channel));
      auto file_id = PostJoining<std::string>(poster, channel, [&] {
        return poster->UploadFile(a->name().empty() ? "file" : a->name(),
                                  a->name(), *data, channel, thread_ts,
                                  comment);
      });
      if (!file_id.ok()) return file_id.status();
      return Ids{absl::StrCat(kFileIdPrefix, *file_id)};
    });
  }
  // A step left open by a crash: the text is found by its metadata; a file
  // cannot be, so it is uploaded again.
  auto reconcile = [&](size_t step, const DeliveryJournal::Step& recorded)
      -> absl::StatusOr<std::optional<Ids>> {
    if (!post_text || step != 0) return std::nullopt;
    auto ts = poster->FindDelivery(channel, thread_ts, key,
                                   recorded.intent_at - kClockSkew);
    if (!ts.ok()) return ts.status();
    if (!ts->has_value()) return std::nullopt;
    return Ids{**ts};
  };
  std::optional<PostsInFlight::Scope> in_flight;
  if (as_user && service_user_.in_flight != nullptr) {
    in_flight.emplace(service_user_.in_flight, channel);
  }
  return journal_->Run(key, JournalTarget(options_.account, channel), steps,
                       reconcile);
}

absl::Status SlackOutbound::EditMessage(const v1::Delivery& d) {
  absl::StatusOr<const SlackApi*> poster = PosterFor(d.target().chat_id());
  if (!poster.ok()) return poster.status();
  markup::MrkdwnOptions render;
  render.native_mentions = d.event().channel().platform() == "slack" &&
                           d.event().channel().account() == options_.account;
  std::string text =
      markup::RichTextToMrkdwn(d.event().edited().text(), render);
  if (text.empty()) text = " ";
  if (AsUser(*poster)) text = WithSenderLine(d.sender_name(), text);
  for (const std::string& id : d.target_message_ids()) {
    if (IsFileId(id)) continue;
    IMB_RETURN_IF_ERROR(Pace(d.target().chat_id()));
    absl::Status s = (*poster)->UpdateMessage(d.target().chat_id(), id, text);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status SlackOutbound::DeleteMessage(const v1::Delivery& d) {
  absl::StatusOr<const SlackApi*> poster = PosterFor(d.target().chat_id());
  if (!poster.ok()) return poster.status();
  for (const std::string& id : d.target_message_ids()) {
    absl::Status s;
    if (IsFileId(id)) {
      s = (*poster)->DeleteFile(
          absl::string_view(id).substr(strlen(kFileIdPrefix)));
    } else {
      s = Pace(d.target().chat_id());
      if (s.ok()) s = (*poster)->DeleteMessage(d.target().chat_id(), id);
    }
    if (!s.ok() && !AlreadyGone(s)) return s;
  }
  return absl::OkStatus();
}

}  // namespace imbridge::adapters::slack
