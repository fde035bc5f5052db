// imbridge-adapter-botsplash: reaches Botsplash customers (SMS, web chat)
// from linked chats and brings their replies back (see docs/botsplash.md).

#include "adapters/botsplash/botsplash_adapter.h"
#include "adapters/common/adapter_runtime.h"

int main(int argc, char** argv) {
  return imbridge::adapters::RunAdapter(
      argc, argv, imbridge::adapters::botsplash::BotsplashProgram());
}
