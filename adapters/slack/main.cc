// imbridge-adapter-slack: mirrors Slack channels and threads through the
// imbridge router (see docs/slack.md).

#include "adapters/common/adapter_runtime.h"
#include "adapters/slack/slack_adapter.h"
#include "common/logging.h"
#include "imbridge/v1/slack_config.pb.h"

int main(int argc, char** argv) {
  using imbridge::adapters::slack::SlackAdapter;
  imbridge::v1::SlackAdapterConfig config;
  int exit_code = 0;
  if (!imbridge::adapters::ParseAdapterCommandLine(
          argc, argv, "imbridge-adapter-slack", &config,
          [&config](absl::string_view source) {
            return imbridge::adapters::slack::ValidateSlackConfig(source,
                                                                  config);
          },
          &exit_code)) {
    return exit_code;
  }
  imbridge::InitLogging("adapter-slack", "slack",
                        imbridge::ParseLogLevel(config.log_level())
                            .value_or(imbridge::LogLevel::kInfo));
  imbridge::adapters::AdapterRuntime runtime(
      config.router(), config.http(),
      imbridge::adapters::slack::SlackIdentity(config));
  auto journal = runtime.OpenDeliveryJournal(config.state_dir());
  if (!journal.ok()) return 1;
  SlackAdapter adapter(config, &runtime, *journal);
  adapter.Start();
  return runtime.Run();
}
