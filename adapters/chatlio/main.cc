// imbridge-adapter-chatlio: Chatlio's webhooks (new conversation, offline
// message, feedback, visitor not answered, transcript) as notices in any
// linked chat. See docs/chatlio.md.

#include "adapters/chatlio/chatlio_adapter.h"
#include "adapters/common/adapter_runtime.h"

int main(int argc, char** argv) {
  return imbridge::adapters::RunAdapter(
      argc, argv, imbridge::adapters::chatlio::ChatlioProgram());
}
