#include "adapters/teamspirit/outbound.h"

#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "adapters/common/markup/markdown.h"
#include "adapters/common/presence_names.h"
#include "adapters/common/temp_file.h"
#include "adapters/teamspirit/format.h"
#include "common/file_size.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace imbridge::adapters::teamspirit {
namespace {

using Ids = std::vector<std::string>;

// What a file step of the journal records: the id of the copied file, or
// the notice that replaces a file that is not copied.
constexpr absl::string_view kFileStep = "file:";
constexpr absl::string_view kNoticeStep = "notice:";

// The journal record's target, for the operator's eyes.
std::string JournalTarget(const v1::Delivery& delivery) {
  return absl::StrCat("teamspirit/", delivery.target().account(), "/",
                      delivery.target().chat_id());
}

// A post left open by a crash is made again: with a client_token TeamSpirit
// answers with the message it created, if it did; without one (the
// incoming webhook) it may appear twice.
DeliveryJournal::Reconciler PostAgain(const v1::Delivery& delivery,
                                      bool has_client_token) {
  return [&delivery, has_client_token](size_t step,
                                       const DeliveryJournal::Step&)
             -> absl::StatusOr<std::optional<Ids>> {
    if (has_client_token) {
      LogInfo(
          "a post left open by a restart is made again with its "
          "client_token",
          {{"key", delivery.idempotency_key()},
           {"chat", delivery.target().chat_id()},
           {"step", absl::StrCat(step)}});
    } else {
      LogWarn(
          "a post left open by a restart is sent to the incoming "
          "webhook again; it may show twice",
          {{"key", delivery.idempotency_key()}, {"step", absl::StrCat(step)}});
    }
    return std::nullopt;
  };
}

bool IsNativeMentions(const v1::Delivery& delivery) {
  // Mentions carry user ids of the origin messenger; only TeamSpirit's own
  // ids can be written as TeamSpirit mentions.
  return delivery.event().channel().platform() == "teamspirit";
}

}  // namespace

std::string ExternalUserId(absl::string_view prefix, absl::string_view platform,
                           absl::string_view account,
                           absl::string_view user_id) {
  return absl::StrCat(prefix, platform, "-", account, "-", user_id);
}

std::string FileNotice(const v1::Attachment& attachment,
                       absl::string_view reason) {
  std::string name = attachment.name().empty() ? "file" : attachment.name();
  std::string text = absl::StrCat("[file: ", name);
  if (attachment.size() > 0) {
    absl::StrAppend(&text, ", ", FileSizeText(attachment.size()));
  }
  if (!reason.empty()) absl::StrAppend(&text, ": ", reason);
  absl::StrAppend(&text, "]");
  return markup::EscapeMarkdown(text);
}

TeamSpiritDeliverer::TeamSpiritDeliverer(Options options, TeamSpiritApi* api,
                                         BlobFetcher blobs,
                                         DeliveryJournal* journal,
                                         DeliveryObserver observer)
    : options_(std::move(options)),
      api_(api),
      blobs_(std::move(blobs)),
      journal_(journal),
      observer_(std::move(observer)) {}

absl::StatusOr<std::vector<std::string>> TeamSpiritDeliverer::Deliver(
    const v1::Delivery& delivery) {
  absl::StatusOr<std::vector<std::string>> result = DeliverInner(delivery);
  if (observer_) observer_(result.status());
  if (!result.ok()) {
    LogWarn("TeamSpirit delivery failed",
            {{"chat", delivery.target().chat_id()},
             {"link", delivery.link()},
             {"retryable", IsRetryable(result.status()) ? "true" : "false"},
             {"error", result.status().message()}});
  }
  return result;
}

absl::StatusOr<std::vector<std::string>> TeamSpiritDeliverer::DeliverInner(
    const v1::Delivery& delivery) {
  const v1::Event& e = delivery.event();
  switch (e.kind_case()) {
    case v1::Event::kPosted:
      return Post(delivery);
    case v1::Event::kEdited: {
      absl::Status s = Edit(delivery);
      if (!s.ok()) return s;
      return std::vector<std::string>();
    }
    case v1::Event::kDeleted: {
      absl::Status s = Delete(delivery);
      if (!s.ok()) return s;
      return std::vector<std::string>();
    }
    case v1::Event::kPresence: {
      absl::Status s = Presence(delivery);
      if (!s.ok()) return s;
      return std::vector<std::string>();
    }
    case v1::Event::kMembership:
      return Membership(delivery);
    default:
      return absl::InvalidArgumentError("delivery carries no known event kind");
  }
}

std::string TeamSpiritDeliverer::RenderText(const v1::Delivery& delivery,
                                            const v1::RichText& text,
                                            bool with_name) const {
  markup::MarkdownRenderOptions render;
  render.native_mentions = IsNativeMentions(delivery);
  std::string body = markup::RichTextToMarkdown(text, render);
  if (!with_name || delivery.sender_name().empty()) return body;
  return absl::StrCat("**", markup::EscapeMarkdown(delivery.sender_name()),
                      "**: ", body);
}

absl::StatusOr<std::optional<TsAuthor>> TeamSpiritDeliverer::AuthorFor(
    const v1::Delivery& delivery, const v1::UserRef& sender) {
  if (options_.post_as_bot || sender.id().empty()) return std::nullopt;
  const v1::ChannelRef& origin = delivery.event().channel();
  TsAuthor author;
  author.external_id =
      ExternalUserId(options_.external_user_prefix, origin.platform(),
                     origin.account(), sender.id());
  author.name = delivery.sender_name().empty() ? sender.display_name()
                                               : delivery.sender_name();
  if (author.name.empty()) author.name = sender.id();
  author.avatar_url = sender.avatar_url();
  absl::Time now = absl::Now();
  {
    absl::MutexLock lock(&mu_);
    const KnownUser* known = known_users_.Find(author.external_id);
    if (known != nullptr && known->name == author.name &&
        known->avatar_url == author.avatar_url &&
        now - known->refreshed < options_.external_user_refresh) {
      return author;
    }
  }
  absl::Status put = api_->PutExternalUser(author.external_id, author.name,
                                           author.avatar_url, std::nullopt);
  if (!put.ok()) return put;
  absl::MutexLock lock(&mu_);
  known_users_.Put(author.external_id,
                   KnownUser{author.name, author.avatar_url, now});
  return author;
}

absl::StatusOr<std::string> TeamSpiritDeliverer::CopyAttachment(
    const v1::Attachment& attachment, std::string* notice) {
  if (attachment.blob_id().empty()) {
    *notice = FileNotice(attachment, attachment.unavailable_reason().empty()
                                         ? "not available"
                                         : attachment.unavailable_reason());
    return std::string();
  }
  if (attachment.size() > options_.max_file_bytes) {
    *notice = FileNotice(attachment, "too large for TeamSpirit");
    return std::string();
  }
  TempFile temp;
  if (temp.get() == nullptr) {
    return RetryableError("cannot create a temporary file for an upload");
  }
  uint64_t size = 0;
  absl::StatusOr<v1::BlobMeta> meta = blobs_(
      attachment.blob_id(), [&](absl::string_view chunk) -> absl::Status {
        size += chunk.size();
        if (size > options_.max_file_bytes) {
          return absl::OutOfRangeError("blob larger than max_file_bytes");
        }
        if (!temp.Append(chunk)) {
          return RetryableError("cannot write a temporary file");
        }
        return absl::OkStatus();
      });
  if (!meta.ok()) {
    switch (meta.status().code()) {
      case absl::StatusCode::kNotFound:
        *notice = FileNotice(attachment, "no longer held by the bridge");
        return std::string();
      case absl::StatusCode::kOutOfRange:
        *notice = FileNotice(attachment, "too large for TeamSpirit");
        return std::string();
      default:
        return RetryableError(
            absl::StrCat("router blob store: ", meta.status().message()));
    }
  }
  if (!temp.Rewind()) {
    return RetryableError("cannot read back a temporary file");
  }
  FILE* f = temp.get();
  std::string mime = attachment.mime_type().empty() ? meta->mime_type()
                                                    : attachment.mime_type();
  std::string name =
      attachment.name().empty() ? meta->name() : attachment.name();
  absl::StatusOr<TsFile> uploaded = api_->UploadFile(
      name, mime, size,
      [f](char* buffer, size_t max) -> absl::StatusOr<size_t> {
        size_t n = std::fread(buffer, 1, max, f);
        if (n == 0 && std::ferror(f)) {
          return absl::DataLossError("cannot read a temporary file");
        }
        return n;
      });
  if (!uploaded.ok()) {
    if (IsRetryable(uploaded.status())) return uploaded.status();
    if (uploaded.status().code() == absl::StatusCode::kUnauthenticated ||
        uploaded.status().code() == absl::StatusCode::kPermissionDenied) {
      return uploaded.status();
    }
    *notice = FileNotice(
        attachment, uploaded.status().code() == absl::StatusCode::kOutOfRange
                        ? "too large for TeamSpirit"
                        : "TeamSpirit refused the upload");
    return std::string();
  }
  return uploaded->id;
}

absl::StatusOr<std::vector<std::string>> TeamSpiritDeliverer::CopyAttachments(
    const v1::Delivery& delivery, std::string* text) {
  const auto& attachments = delivery.event().posted().attachments();
  std::vector<std::string> file_ids;
  if (attachments.empty()) return file_ids;
  std::vector<DeliveryJournal::StepCall> copies;
  for (const v1::Attachment& a : attachments) {
    copies.push_back([this, &a]() -> absl::StatusOr<Ids> {
      std::string notice;
      IMB_ASSIGN_OR_RETURN(std::string id, CopyAttachment(a, &notice));
      if (!id.empty()) return Ids{absl::StrCat(kFileStep, id)};
      return Ids{absl::StrCat(kNoticeStep, notice)};
    });
  }
  // An upload left open by a crash is made again (no reconciler): TeamSpirit
  // cannot look files up, and an unattached file shows nowhere.
  const std::string& key = delivery.idempotency_key();
  IMB_ASSIGN_OR_RETURN(
      Ids copied, journal_->Run(key.empty() ? "" : absl::StrCat(key, "#files"),
                                JournalTarget(delivery), copies, nullptr));
  for (absl::string_view step : copied) {
    if (absl::ConsumePrefix(&step, kFileStep)) {
      file_ids.emplace_back(step);
    } else if (absl::ConsumePrefix(&step, kNoticeStep) && !step.empty()) {
      if (!text->empty()) text->push_back('\n');
      absl::StrAppend(text, step);
    }
  }
  return file_ids;
}

absl::StatusOr<std::vector<std::string>> TeamSpiritDeliverer::Post(
    const v1::Delivery& delivery) {
  const v1::MessagePosted& posted = delivery.event().posted();
  const bool as_bot = options_.post_as_bot || posted.sender().id().empty();
  std::string text = RenderText(delivery, posted.text(), as_bot);
  IMB_ASSIGN_OR_RETURN(Ids file_ids, CopyAttachments(delivery, &text));
  if (text.empty() && file_ids.empty()) return Ids();

  // The external user is made sure of once, by the first post that needs
  // it (not when every part was posted before a restart).
  std::optional<std::optional<TsAuthor>> author;
  std::vector<std::string> pieces = SplitMessage(text, kMaxTextCharacters);
  std::vector<DeliveryJournal::StepCall> posts;
  for (size_t i = 0; i < pieces.size(); ++i) {
    posts.push_back([&, i]() -> absl::StatusOr<Ids> {
      if (!author.has_value()) {
        absl::StatusOr<std::optional<TsAuthor>> made =
            AuthorFor(delivery, posted.sender());
        if (!made.ok()) return made.status();
        author.emplace(*std::move(made));
      }
      TsNewMessage m;
      m.text = pieces[i];
      m.reply_to = delivery.reply_to_target_id();
      // The thread of the original's copy, else the thread the target
      // member is narrowed to.
      m.thread_id = delivery.thread_root_target_id().empty()
                        ? delivery.target().thread_id()
                        : delivery.thread_root_target_id();
      m.author = *author;
      m.client_token =
          i == 0 ? delivery.idempotency_key()
                 : absl::StrCat(delivery.idempotency_key(), "#", i + 1);
      if (i == 0) m.file_ids = file_ids;
      IMB_ASSIGN_OR_RETURN(std::string id,
                           api_->PostMessage(delivery.target().chat_id(), m));
      return Ids{std::move(id)};
    });
  }
  return journal_->Run(delivery.idempotency_key(), JournalTarget(delivery),
                       posts, PostAgain(delivery, true));
}

absl::Status TeamSpiritDeliverer::Edit(const v1::Delivery& delivery) {
  const v1::MessageEdited& edited = delivery.event().edited();
  std::string text = RenderText(delivery, edited.text(), options_.post_as_bot);
  std::vector<std::string> pieces = SplitMessage(text, kMaxTextCharacters);
  const auto& ids = delivery.target_message_ids();
  if (pieces.size() > static_cast<size_t>(ids.size())) {
    LogWarn("edited text is longer than the copy; the rest is dropped",
            {{"chat", delivery.target().chat_id()}});
  }
  for (int i = 0; i < ids.size() && static_cast<size_t>(i) < pieces.size();
       ++i) {
    absl::Status s =
        api_->EditMessage(delivery.target().chat_id(), ids[i], pieces[i], true);
    if (s.code() == absl::StatusCode::kNotFound) {
      LogWarn("the copy to edit no longer exists",
              {{"chat", delivery.target().chat_id()}, {"message", ids[i]}});
      continue;
    }
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status TeamSpiritDeliverer::Delete(const v1::Delivery& delivery) {
  for (const std::string& id : delivery.target_message_ids()) {
    absl::Status s = api_->DeleteMessage(delivery.target().chat_id(), id);
    if (s.code() == absl::StatusCode::kNotFound) continue;  // Already gone.
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status TeamSpiritDeliverer::Presence(const v1::Delivery& delivery) {
  const v1::PresenceChanged& p = delivery.event().presence();
  // TeamSpirit's statuses are the bridge's presence names.
  std::string status(PresenceName(p.presence()));
  if (status.empty() || p.user().id().empty()) return absl::OkStatus();
  const v1::ChannelRef& origin = delivery.event().channel();
  std::string id =
      ExternalUserId(options_.external_user_prefix, origin.platform(),
                     origin.account(), p.user().id());
  std::string name = delivery.sender_name().empty() ? p.user().display_name()
                                                    : delivery.sender_name();
  if (name.empty()) name = p.user().id();
  absl::Status put = api_->PutExternalUser(id, name, p.user().avatar_url(),
                                           TsPresence{status, p.status_text()});
  if (!put.ok()) return put;
  absl::MutexLock lock(&mu_);
  known_users_.Put(id, KnownUser{name, p.user().avatar_url(), absl::Now()});
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> TeamSpiritDeliverer::Membership(
    const v1::Delivery& delivery) {
  if (!options_.membership_notices) return std::vector<std::string>();
  const v1::MembershipChanged& m = delivery.event().membership();
  std::string name = delivery.sender_name().empty() ? m.user().display_name()
                                                    : delivery.sender_name();
  v1::RichText notice;
  notice.set_text(absl::StrCat(name, m.joined() ? " joined" : " left"));
  v1::Span* italic = notice.add_spans();
  italic->set_kind(v1::Span::ITALIC);
  italic->set_offset(0);
  italic->set_length(static_cast<uint32_t>(notice.text().size()));
  TsNewMessage message;
  message.text = markup::RichTextToMarkdown(notice);
  message.client_token = delivery.idempotency_key();
  DeliveryJournal::StepCall post = [&]() -> absl::StatusOr<Ids> {
    IMB_ASSIGN_OR_RETURN(
        std::string id,
        api_->PostMessage(delivery.target().chat_id(), message));
    return Ids{std::move(id)};
  };
  return journal_->Run(delivery.idempotency_key(), JournalTarget(delivery),
                       {post}, PostAgain(delivery, true));
}

SendOnlyDeliverer::SendOnlyDeliverer(TsIncomingWebhook* webhook,
                                     DeliveryJournal* journal,
                                     DeliveryObserver observer)
    : webhook_(webhook), journal_(journal), observer_(std::move(observer)) {}

absl::StatusOr<std::vector<std::string>> SendOnlyDeliverer::Deliver(
    const v1::Delivery& delivery) {
  const v1::Event& e = delivery.event();
  if (!e.has_posted()) return std::vector<std::string>();
  const v1::MessagePosted& posted = e.posted();
  markup::MarkdownRenderOptions render;
  render.native_mentions = IsNativeMentions(delivery);
  std::string text = markup::RichTextToMarkdown(posted.text(), render);
  for (const v1::Attachment& a : posted.attachments()) {
    if (!text.empty()) text.push_back('\n');
    text += FileNotice(a, a.unavailable_reason().empty()
                              ? "files are not relayed to this chat"
                              : a.unavailable_reason());
  }
  absl::Status status;
  if (!text.empty()) {
    std::vector<std::string> pieces = SplitMessage(text, kMaxTextCharacters);
    std::vector<DeliveryJournal::StepCall> posts;
    for (const std::string& piece : pieces) {
      posts.push_back([&]() -> absl::StatusOr<Ids> {
        IMB_RETURN_IF_ERROR(webhook_->Post(piece, delivery.sender_name(),
                                           posted.sender().avatar_url()));
        return Ids();
      });
    }
    status = journal_
                 ->Run(delivery.idempotency_key(), JournalTarget(delivery),
                       posts, PostAgain(delivery, false))
                 .status();
  }
  if (observer_) observer_(status);
  if (!status.ok()) {
    LogWarn("TeamSpirit incoming webhook delivery failed",
            {{"link", delivery.link()},
             {"retryable", IsRetryable(status) ? "true" : "false"},
             {"error", status.message()}});
    return status;
  }
  return std::vector<std::string>();
}

}  // namespace imbridge::adapters::teamspirit
