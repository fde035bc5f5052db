// imbridge-adapter-teamspirit: mirrors TeamSpirit chats through the router.
// See docs/teamspirit.md.

#include "adapters/common/adapter_runtime.h"
#include "adapters/teamspirit/teamspirit_adapter.h"

int main(int argc, char** argv) {
  return imbridge::adapters::RunAdapter(
      argc, argv, imbridge::adapters::teamspirit::TeamSpiritProgram());
}
