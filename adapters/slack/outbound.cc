#include "adapters/slack/outbound.h"

#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "adapters/slack/format.h"
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

}  // namespace

SlackOutbound::SlackOutbound(Options options, const SlackApi* api,
                             BlobFetcher blobs)
    : options_(std::move(options)),
      api_(api),
      blobs_(std::move(blobs)),
      limiter_(options_.messages_per_second, options_.burst) {}

void SlackOutbound::Pace(const std::string& channel) {
  absl::Duration wait = limiter_.Reserve(channel, absl::Now());
  if (wait > absl::ZeroDuration()) absl::SleepFor(wait);
}

std::vector<std::string> SlackOutbound::Progress(const std::string& key) {
  absl::MutexLock lock(&mu_);
  auto it = progress_.find(key);
  return it == progress_.end() ? std::vector<std::string>() : it->second;
}

void SlackOutbound::SaveProgress(const std::string& key,
                                 std::vector<std::string> ids) {
  if (key.empty()) return;
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = progress_.insert_or_assign(key, std::move(ids));
  if (inserted) {
    progress_order_.push_back(key);
    while (progress_order_.size() > options_.progress_capacity) {
      progress_.erase(progress_order_.front());
      progress_order_.pop_front();
    }
  }
}

absl::StatusOr<std::vector<std::string>> SlackOutbound::Deliver(
    const v1::Delivery& d) {
  const v1::Event& e = d.event();
  if (e.has_posted()) return Post(d);
  if (e.has_edited()) {
    absl::Status s = Edit(d);
    if (!s.ok()) return s;
    return std::vector<std::string>();
  }
  if (e.has_deleted()) {
    absl::Status s = Delete(d);
    if (!s.ok()) return s;
    return std::vector<std::string>();
  }
  // Presence and membership: nothing Slack can show.
  return std::vector<std::string>();
}

absl::StatusOr<std::vector<std::string>> SlackOutbound::Post(
    const v1::Delivery& d) {
  const v1::MessagePosted& p = d.event().posted();
  const std::string& channel = d.target().chat_id();
  std::string thread_ts = d.thread_root_target_id().empty()
                              ? d.reply_to_target_id()
                              : d.thread_root_target_id();
  MrkdwnOptions render;
  render.native_mentions = d.event().channel().platform() == "slack" &&
                           d.event().channel().account() == options_.account;
  std::string text = RichTextToMrkdwn(p.text(), render);
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
                    EscapeMrkdwn(a.name()), " (", FileSizeText(a.size()),
                    "): ", EscapeMrkdwn(reason), "_");
  }
  std::vector<std::string> ids = Progress(d.idempotency_key());
  size_t step = 0;
  bool post_text = !text.empty() || files.empty();
  if (post_text) {
    if (step >= ids.size()) {
      if (text.empty()) text = " ";
      Pace(channel);
      auto ts = api_->PostMessage(channel, text, d.sender_name(),
                                  p.sender().avatar_url(), thread_ts);
      if (!ts.ok()) return ts.status();
      ids.push_back(*ts);
      SaveProgress(d.idempotency_key(), ids);
    }
    ++step;
  }
  std::string comment =
      d.sender_name().empty()
          ? ""
          : absl::StrCat("*", EscapeMrkdwn(d.sender_name()), "*");
  for (const v1::Attachment* a : files) {
    if (step < ids.size()) {
      ++step;
      continue;
    }
    auto data = blobs_(a->blob_id(), options_.max_file_bytes);
    if (!data.ok()) return data.status();
    Pace(channel);
    auto file_id =
        api_->UploadFile(a->name().empty() ? "file" : a->name(), a->name(),
                         *data, channel, thread_ts, comment);
    if (!file_id.ok()) return file_id.status();
    ids.push_back(absl::StrCat(kFileIdPrefix, *file_id));
    SaveProgress(d.idempotency_key(), ids);
    ++step;
  }
  return ids;
}

absl::Status SlackOutbound::Edit(const v1::Delivery& d) {
  MrkdwnOptions render;
  render.native_mentions = d.event().channel().platform() == "slack" &&
                           d.event().channel().account() == options_.account;
  std::string text = RichTextToMrkdwn(d.event().edited().text(), render);
  if (text.empty()) text = " ";
  for (const std::string& id : d.target_message_ids()) {
    if (IsFileId(id)) continue;
    Pace(d.target().chat_id());
    absl::Status s = api_->UpdateMessage(d.target().chat_id(), id, text);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status SlackOutbound::Delete(const v1::Delivery& d) {
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
