#include "adapters/common/inbound_answer.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace imbridge::adapters {
namespace {

// Records the answers it is given.
class RecordingResponder : public Responder {
 public:
  struct Answer {
    int status;
    std::string content_type;
    std::string body;
  };
  std::vector<Answer> answers;

 protected:
  bool RespondImpl(int status, absl::string_view content_type, std::string body,
                   HttpHeaderList) override {
    answers.push_back({status, std::string(content_type), std::move(body)});
    return true;
  }
};

std::string ErrorCode(const std::string& body) {
  return nlohmann::json::parse(body)["error"]["code"];
}

TEST(InboundAnswerTest, EachOutcomeHasItsStatusAndCode) {
  struct Case {
    InboundResult::Outcome outcome;
    int status;
    const char* code;
  };
  for (const Case& c :
       {Case{InboundResult::Outcome::kInvalid, 400, "bad_request"},
        Case{InboundResult::Outcome::kRetry, 503, "unavailable"},
        Case{InboundResult::Outcome::kFailed, 500, "not_stored"}}) {
    auto responder = std::make_shared<RecordingResponder>();
    InboundResult result;
    result.outcome = c.outcome;
    result.detail = "why \xFF";
    AnswerInboundWhenDone(responder)(result);
    ASSERT_EQ(responder->answers.size(), 1u);
    const RecordingResponder::Answer& a = responder->answers[0];
    EXPECT_EQ(a.status, c.status);
    EXPECT_EQ(a.content_type, "application/json");
    EXPECT_EQ(ErrorCode(a.body), c.code);
    // The detail is the message, bad UTF-8 replaced.
    EXPECT_EQ(nlohmann::json::parse(a.body)["error"]["message"],
              "why \xEF\xBF\xBD");
  }
}

TEST(InboundAnswerTest, OkAnswersTheGivenBody) {
  auto responder = std::make_shared<RecordingResponder>();
  AnswerInboundWhenDone(responder, R"({"ok":true})")(InboundResult{});
  ASSERT_EQ(responder->answers.size(), 1u);
  EXPECT_EQ(responder->answers[0].status, 200);
  EXPECT_EQ(responder->answers[0].body, R"({"ok":true})");
  RecordingResponder plain;
  AnswerInbound(plain, 200, "ignored");
  EXPECT_EQ(plain.answers[0].body, "{}");
}

TEST(InboundAnswerTest, UnknownStatusIsA500) {
  RecordingResponder responder;
  AnswerInbound(responder, 418, "teapot");
  EXPECT_EQ(responder.answers[0].status, 500);
  EXPECT_EQ(ErrorCode(responder.answers[0].body), "not_stored");
}

TEST(InboundAnswerTest, RefusedSubmissions) {
  RecordingResponder responder;
  AnswerRefusedInbound(responder, absl::InvalidArgumentError("no chat"));
  AnswerRefusedInbound(responder, absl::ResourceExhaustedError("lane full"));
  AnswerRefusedInbound(responder, absl::UnavailableError("stopping"));
  ASSERT_EQ(responder.answers.size(), 3u);
  EXPECT_EQ(responder.answers[0].status, 400);
  EXPECT_EQ(ErrorCode(responder.answers[0].body), "bad_request");
  EXPECT_EQ(responder.answers[1].status, 503);
  EXPECT_EQ(responder.answers[2].status, 503);
  EXPECT_EQ(ErrorCode(responder.answers[2].body), "unavailable");
}

}  // namespace
}  // namespace imbridge::adapters
