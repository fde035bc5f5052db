#include "adapters/common/inbound_answer.h"

#include <utility>

namespace imbridge::adapters {

void AnswerInbound(Responder& responder, int status, absl::string_view detail,
                   std::string ok_body) {
  constexpr absl::string_view kJson = "application/json";
  switch (status) {
    case 200:
      responder.Respond(200, kJson, std::move(ok_body));
      return;
    case 400:
      responder.Respond(400, kJson, JsonErrorBody("bad_request", detail));
      return;
    case 503:
      responder.Respond(503, kJson, JsonErrorBody("unavailable", detail));
      return;
    default:
      responder.Respond(500, kJson, JsonErrorBody("not_stored", detail));
      return;
  }
}

InboundPipeline::DoneCallback AnswerInboundWhenDone(
    std::shared_ptr<Responder> responder, std::string ok_body) {
  return [responder = std::move(responder),
          ok_body = std::move(ok_body)](const InboundResult& result) {
    AnswerInbound(*responder, result.HttpStatus(), result.detail, ok_body);
  };
}

void AnswerRefusedInbound(Responder& responder, const absl::Status& refused) {
  AnswerInbound(
      responder,
      refused.code() == absl::StatusCode::kInvalidArgument ? 400 : 503,
      refused.message());
}

}  // namespace imbridge::adapters
