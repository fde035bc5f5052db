#ifndef IMBRIDGE_BRIDGE_CAPABILITY_FIT_H_
#define IMBRIDGE_BRIDGE_CAPABILITY_FIT_H_

#include "imbridge/v1/router.pb.h"

namespace imbridge::bridge {

// What a target's adapter said it can do in its Hello, as far as the shape
// of a delivery depends on it. (Kinds an adapter cannot do at all, like
// edits without "edits", are skipped by the dispatcher instead.)
struct TargetCapabilities {
  // "files": it uploads attachments.
  bool files = true;
  // "threads": it posts into threads.
  bool threads = true;
};

// Fits a resolved delivery of a posted message to `target`:
// - without files, each attachment becomes a line of the text instead,
//   "📎 report.pdf (2.1 MB)" (appended after the text, after a newline when
//   there is text), and the delivery carries no attachments;
// - without threads, a message in a thread becomes a plain reply to the
//   thread's root (unless it already replies to a message), and the
//   delivery carries no thread root.
// Spans keep their offsets (the notice is appended). Other deliveries are
// left as they are. Pure; thread-safe.
void FitToTarget(const TargetCapabilities& target, v1::Delivery* delivery);

}  // namespace imbridge::bridge

#endif  // IMBRIDGE_BRIDGE_CAPABILITY_FIT_H_
