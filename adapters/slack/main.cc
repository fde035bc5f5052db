// imbridge-adapter-slack: mirrors Slack channels and threads through the
// imbridge router (see docs/slack.md).

#include "adapters/common/adapter_runtime.h"
#include "adapters/slack/slack_adapter.h"

int main(int argc, char** argv) {
  return imbridge::adapters::RunAdapter(
      argc, argv, imbridge::adapters::slack::SlackProgram());
}
