// imbridge-adapter-telegram: mirrors Telegram groups, forum topics and
// channels through the router (see docs/telegram.md).

#include <cstdio>
#include <cstring>

#include "adapters/common/adapter_runtime.h"
#include "adapters/telegram/telegram_adapter.h"
#include "common/logging.h"
#include "imbridge/v1/telegram_config.pb.h"

int main(int argc, char** argv) {
  using namespace imbridge;
  using namespace imbridge::adapters;

  v1::TelegramAdapterConfig config;
  int exit_code = 0;
  if (!ParseAdapterCommandLine(
          argc, argv, "imbridge-adapter-telegram", &config,
          [&config](absl::string_view source) {
            return telegram::ValidateTelegramConfig(source, config);
          },
          &exit_code)) {
    return exit_code;
  }
  InitLogging("adapter-telegram", "telegram",
              ParseLogLevel(config.log_level()).value_or(LogLevel::kInfo));

  AdapterRuntime runtime(config.router(), config.http(),
                         telegram::TelegramIdentity(config));
  auto journal = runtime.OpenDeliveryJournal(config.state_dir());
  if (!journal.ok()) return 1;
  telegram::TelegramAdapter adapter(config, &runtime, *journal);
  absl::Status status = adapter.Init();
  if (!status.ok()) {
    LogError("adapter failed to start", {{"error", status.message()}});
    return 1;
  }
  runtime.SetDeliveryHandler(adapter.delivery_handler());
  runtime.AddReadinessCheck("telegram",
                            [&adapter] { return adapter.Health(); });
  runtime.OnStop([&adapter] { adapter.Stop(); });
  // The webhook registration and the pollers start once the HTTP server
  // listens.
  runtime.OnStarted([&adapter] { return adapter.Start(); });
  return runtime.Run();
}
