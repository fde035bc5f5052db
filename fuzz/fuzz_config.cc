// Fuzzes the YAML config loader (common/config_loader: YAML -> proto by
// field name, enums by name, ${ENV} substitution, x_file secrets) with
// every config message the processes load. The first byte picks the
// message; the rest is the YAML text.
//
// Properties: loading never crashes; a failed load names the source in its
// message; a successful load of the same text is repeatable (same message).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "common/config_loader.h"
#include "fuzz/fuzz_support.h"
#include "google/protobuf/util/message_differencer.h"
#include "imbridge/v1/bitrix24_config.pb.h"
#include "imbridge/v1/botsplash_config.pb.h"
#include "imbridge/v1/chatlio_config.pb.h"
#include "imbridge/v1/config.pb.h"
#include "imbridge/v1/sandbox_config.pb.h"
#include "imbridge/v1/slack_config.pb.h"
#include "imbridge/v1/teamspirit_config.pb.h"
#include "imbridge/v1/telegram_config.pb.h"
#include "imbridge/v1/webhook_config.pb.h"

namespace {

std::unique_ptr<google::protobuf::Message> NewConfig(uint8_t which) {
  switch (which % 9) {
    case 0:
      return std::make_unique<imbridge::v1::RouterConfig>();
    case 1:
      return std::make_unique<imbridge::v1::SlackAdapterConfig>();
    case 2:
      return std::make_unique<imbridge::v1::TelegramAdapterConfig>();
    case 3:
      return std::make_unique<imbridge::v1::TeamSpiritAdapterConfig>();
    case 4:
      return std::make_unique<imbridge::v1::WebhookAdapterConfig>();
    case 5:
      return std::make_unique<imbridge::v1::Bitrix24AdapterConfig>();
    case 7:
      return std::make_unique<imbridge::v1::BotsplashAdapterConfig>();
    case 8:
      return std::make_unique<imbridge::v1::ChatlioAdapterConfig>();
    default:
      return std::make_unique<imbridge::v1::SandboxConfig>();
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // A variable that ${IMBRIDGE_FUZZ_TOKEN} in the seeds resolves to.
  setenv("IMBRIDGE_FUZZ_TOKEN", "xoxb-fuzz", 1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  absl::string_view yaml(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::unique_ptr<google::protobuf::Message> first = NewConfig(data[0]);
  absl::Status status =
      imbridge::LoadConfigYaml(yaml, "fuzz.yaml", first.get());
  if (!status.ok()) {
    imbridge::fuzz::Check(absl::StrContains(status.message(), "fuzz.yaml"),
                          "a config error names its source");
    return 0;
  }
  std::unique_ptr<google::protobuf::Message> second = NewConfig(data[0]);
  imbridge::fuzz::Check(
      imbridge::LoadConfigYaml(yaml, "fuzz.yaml", second.get()).ok() &&
          google::protobuf::util::MessageDifferencer::Equals(*first, *second),
      "loading the same text twice gives the same config");
  return 0;
}
