// imbridge-adapter-telegram: mirrors Telegram groups, forum topics and
// channels through the router (see docs/telegram.md).

#include <signal.h>

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
  telegram::TelegramAdapter adapter(config, &runtime);
  absl::Status status = adapter.Init();
  if (!status.ok()) {
    LogError("adapter failed to start", {{"error", status.message()}});
    return 1;
  }
  runtime.SetDeliveryHandler(adapter.delivery_handler());
  runtime.AddReadinessCheck("telegram",
                            [&adapter] { return adapter.Health(); });
  runtime.OnStop([&adapter] { adapter.Stop(); });

  // Like AdapterRuntime::Run(), with the webhook registration and pollers
  // started once the HTTP server listens.
  status = runtime.Start();
  if (status.ok()) status = adapter.Start();
  if (!status.ok()) {
    LogError("adapter failed to start", {{"error", status.message()}});
    runtime.Stop();
    return 1;
  }
  std::printf("telegram listening on port %d\n",
              static_cast<int>(runtime.port()));
  std::fflush(stdout);
  // The runtime's constructor blocked SIGTERM and SIGINT in every thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  int signal = 0;
  sigwait(&signals, &signal);
  LogInfo("signal received", {{"signal", strsignal(signal)}});
  runtime.Stop();
  return 0;
}
