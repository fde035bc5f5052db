// imbridge-adapter-webhook: generic webhooks. Incoming webhooks (POST
// /hooks/<id>, Slack-compatible payloads) publish messages into their link;
// outgoing webhooks receive the link's messages as signed JSON POSTs. The
// webhooks themselves are created with `imbridgectl webhook create` and kept
// by the router. See docs/webhook.md.

#include "adapters/common/adapter_runtime.h"
#include "adapters/webhook/webhook_adapter.h"

int main(int argc, char** argv) {
  return imbridge::adapters::RunAdapter(
      argc, argv, imbridge::adapters::webhook::WebhookProgram());
}
