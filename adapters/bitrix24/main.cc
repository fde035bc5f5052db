// imbridge-adapter-bitrix24: mirrors Bitrix24 portal chats through the
// router with a Chatbots 2.0 bot (see docs/bitrix24.md).
//
// `--register` (with --config FILE) registers each account's bot as type
// supervisor and prints its id instead of running.

#include <cstring>
#include <memory>
#include <vector>

#include "adapters/bitrix24/bitrix24_adapter.h"
#include "adapters/common/adapter_runtime.h"
#include "common/logging.h"
#include "imbridge/v1/bitrix24_config.pb.h"

int main(int argc, char** argv) {
  using namespace imbridge;
  using namespace imbridge::adapters;

  std::vector<char*> args;
  bool registering = false;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--register") == 0) {
      registering = true;
    } else {
      args.push_back(argv[i]);
    }
  }
  if (registering) {
    v1::Bitrix24AdapterConfig config;
    int exit_code = 0;
    if (!ParseAdapterCommandLine(
            static_cast<int>(args.size()), args.data(),
            "imbridge-adapter-bitrix24", &config,
            [&config](absl::string_view source) {
              return bitrix24::ValidateBitrix24Config(source, config,
                                                      /*registering=*/true);
            },
            &exit_code)) {
      return exit_code;
    }
    InitLogging("adapter-bitrix24", "bitrix24", LogLevel::kWarn);
    return bitrix24::RegisterBots(config);
  }

  AdapterProgram<v1::Bitrix24AdapterConfig> program;
  program.binary = "imbridge-adapter-bitrix24";
  program.identity = bitrix24::Bitrix24Identity();
  program.validate = [](absl::string_view source,
                        const v1::Bitrix24AdapterConfig& config) {
    return bitrix24::ValidateBitrix24Config(source, config);
  };
  program.connect = [](const v1::Bitrix24AdapterConfig& config,
                       AdapterRuntime* runtime, DeliveryJournal* journal)
      -> absl::StatusOr<std::unique_ptr<Connector>> {
    auto connector =
        std::make_unique<bitrix24::Bitrix24Connector>(config, runtime, journal);
    absl::Status s = connector->Init();
    if (!s.ok()) return s;
    return connector;
  };
  return RunAdapter(argc, argv, program);
}
