// imbridge-adapter-botsplash: reaches Botsplash customers (SMS, web chat)
// from linked chats and brings their replies back (see docs/botsplash.md).

#include <memory>

#include "adapters/botsplash/botsplash_adapter.h"
#include "adapters/common/adapter_runtime.h"
#include "imbridge/v1/botsplash_config.pb.h"

int main(int argc, char** argv) {
  using namespace imbridge;
  using namespace imbridge::adapters;

  AdapterProgram<v1::BotsplashAdapterConfig> program;
  program.binary = "imbridge-adapter-botsplash";
  program.identity = botsplash::BotsplashIdentity();
  program.validate = botsplash::ValidateBotsplashConfig;
  program.connect = [](const v1::BotsplashAdapterConfig& config,
                       AdapterRuntime* runtime, DeliveryJournal* journal)
      -> absl::StatusOr<std::unique_ptr<Connector>> {
    auto connector = std::make_unique<botsplash::BotsplashConnector>(
        config, runtime, journal);
    absl::Status s = connector->Init();
    if (!s.ok()) return s;
    return connector;
  };
  return RunAdapter(argc, argv, program);
}
