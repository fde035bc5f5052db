#include "bridge/capability_fit.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/file_size.h"

namespace imbridge::bridge {
namespace {

// "📎 name (size)"; the size is left out when unknown.
std::string FileNotice(const v1::Attachment& attachment) {
  std::string line =
      absl::StrCat("\xF0\x9F\x93\x8E ",  // 📎
                   attachment.name().empty() ? "file" : attachment.name());
  if (attachment.size() > 0) {
    absl::StrAppend(&line, " (", FileSizeText(attachment.size()), ")");
  }
  return line;
}

}  // namespace

void FitToTarget(const TargetCapabilities& target, v1::Delivery* delivery) {
  if (!delivery->event().has_posted()) return;
  v1::MessagePosted* posted = delivery->mutable_event()->mutable_posted();
  if (!target.files && posted->attachments_size() > 0) {
    std::string* text = posted->mutable_text()->mutable_text();
    for (const v1::Attachment& attachment : posted->attachments()) {
      if (!text->empty()) text->push_back('\n');
      text->append(FileNotice(attachment));
    }
    posted->clear_attachments();
  }
  if (!target.threads && !delivery->thread_root_target_id().empty()) {
    if (delivery->reply_to_target_id().empty()) {
      delivery->set_reply_to_target_id(delivery->thread_root_target_id());
    }
    delivery->clear_thread_root_target_id();
  }
}

}  // namespace imbridge::bridge
