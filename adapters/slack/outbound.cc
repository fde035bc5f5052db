#include "adapters/slack/outbound.h"

#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "adapters/common/markup/slack_mrkdwn.h"
#include "common/file_size.h"

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

}  // namespace

SlackOutbound::SlackOutbound(Options options, const SlackApi* api,
                             BlobFetcher blobs, DeliveryJournal* journal)
    : options_(std::move(options)),
      api_(api),
      blobs_(std::move(blobs)),
      limiter_(options_.messages_per_second, options_.burst),
      journal_(journal) {}

void SlackOutbound::Pace(const std::string& channel) {
  absl::Duration wait = limiter_.Reserve(channel, absl::Now());
  if (wait > absl::ZeroDuration()) absl::SleepFor(wait);
}

absl::StatusOr<std::vector<std::string>> SlackOutbound::SendMessage(
    const v1::Delivery& d) {
  const v1::MessagePosted& p = d.event().posted();
  const std::string& channel = d.target().chat_id();
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
    steps.push_back([&]() -> absl::StatusOr<Ids> {
      Pace(channel);
      auto ts = api_->PostMessage(channel, text, d.sender_name(),
                                  p.sender().avatar_url(), thread_ts, key);
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
      Pace(channel);
      auto file_id =
          api_->UploadFile(a->name().empty() ? "file" : a->name(), a->name(),
                           *data, channel, thread_ts, comment);
      if (!file_id.ok()) return file_id.status();
      return Ids{absl::StrCat(kFileIdPrefix, *file_id)};
    });
  }
  // A step left open by a crash: the text is found by its metadata; a file
  // cannot be, so it is uploaded again.
  auto reconcile = [&](size_t step, const DeliveryJournal::Step& recorded)
      -> absl::StatusOr<std::optional<Ids>> {
    if (!post_text || step != 0) return std::nullopt;
    auto ts = api_->FindDelivery(channel, thread_ts, key,
                                 recorded.intent_at - kClockSkew);
    if (!ts.ok()) return ts.status();
    if (!ts->has_value()) return std::nullopt;
    return Ids{**ts};
  };
  return journal_->Run(key,
                       absl::StrCat("slack/", options_.account, "/", channel),
                       steps, reconcile);
}

absl::Status SlackOutbound::EditMessage(const v1::Delivery& d) {
  markup::MrkdwnOptions render;
  render.native_mentions = d.event().channel().platform() == "slack" &&
                           d.event().channel().account() == options_.account;
  std::string text =
      markup::RichTextToMrkdwn(d.event().edited().text(), render);
  if (text.empty()) text = " ";
  for (const std::string& id : d.target_message_ids()) {
    if (IsFileId(id)) continue;
    Pace(d.target().chat_id());
    absl::Status s = api_->UpdateMessage(d.target().chat_id(), id, text);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status SlackOutbound::DeleteMessage(const v1::Delivery& d) {
  for (const std::string& id : d.target_message_ids()) {
    absl::Status s;
    if (IsFileId(id)) {
      s = api_->DeleteFile(absl::string_view(id).substr(strlen(kFileIdPrefix)));
    } else {
      Pace(d.target().chat_id());
      s = api_->DeleteMessage(d.target().chat_id(), id);
    }
    if (!s.ok() && !AlreadyGone(s)) return s;
  }
  return absl::OkStatus();
}

}  // namespace imbridge::adapters::slack
