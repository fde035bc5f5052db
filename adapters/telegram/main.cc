// imbridge-adapter-telegram: mirrors Telegram groups, forum topics and
// channels through the router (see docs/telegram.md).

#include "adapters/common/adapter_runtime.h"
#include "adapters/telegram/telegram_adapter.h"

int main(int argc, char** argv) {
  return imbridge::adapters::RunAdapter(
      argc, argv, imbridge::adapters::telegram::TelegramProgram());
}
