#ifndef IMBRIDGE_ADAPTERS_COMMON_INBOUND_ANSWER_H_
#define IMBRIDGE_ADAPTERS_COMMON_INBOUND_ANSWER_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "adapters/common/inbound_pipeline.h"
#include "common/http/http_server.h"

namespace imbridge::adapters {

// How a messenger's webhook transport answers a request once the inbound
// pipeline is done with it, the same in every adapter: 200 with `ok_body`,
// or the HTTP status of the outcome with a JsonErrorBody whose code says
// what the sender should do: "bad_request" (400: do not retry),
// "unavailable" (503: retry later), "not_stored" (500). The message is
// `detail`. (The webhook adapter keeps its own documented error shape.)
//
// `status` is 200, 400, 500 or 503 (InboundResult::HttpStatus()); other
// values are answered as 500. Thread-safe, never blocks (as
// Responder::Respond()).
void AnswerInbound(Responder& responder, int status, absl::string_view detail,
                   std::string ok_body = "{}");

// The DoneCallback for InboundPipeline::Submit() that answers `responder`
// with AnswerInbound().
InboundPipeline::DoneCallback AnswerInboundWhenDone(
    std::shared_ptr<Responder> responder, std::string ok_body = "{}");

// Answers a request the pipeline refused to take (`refused` is what
// Submit() returned): 400 for kInvalidArgument (the input cannot be
// routed), 503 for anything else (a full lane, the adapter stopping).
void AnswerRefusedInbound(Responder& responder, const absl::Status& refused);

}  // namespace imbridge::adapters

#endif  // IMBRIDGE_ADAPTERS_COMMON_INBOUND_ANSWER_H_
