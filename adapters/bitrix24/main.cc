// imbridge-adapter-bitrix24: mirrors Bitrix24 portal chats through the
// router with a Chatbots 2.0 bot (see docs/bitrix24.md).
//
// `--register` (with --config FILE) registers each account's bot as type
// supervisor and prints its id instead of running.

#include "adapters/bitrix24/bitrix24_adapter.h"
#include "adapters/common/adapter_runtime.h"

int main(int argc, char** argv) {
  return imbridge::adapters::RunAdapter(
      argc, argv, imbridge::adapters::bitrix24::Bitrix24Program());
}
