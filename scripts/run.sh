#!/usr/bin/env bash
# The README's run command: the whole bridge on one machine, with no
# messenger account. Installs what is missing, builds, writes fresh configs
# (new tokens and secrets) into run/, and starts
#   imbridge-sandbox            emulated TeamSpirit, Slack, Telegram and Bitrix24
#                               + the page
#   imbridge-router             on its embedded SQLite store (run/data)
#   imbridge-adapter-teamspirit, -slack, -telegram, -bitrix24
#   imbridge-adapter-webhook    generic webhooks (`imbridgectl webhook create`)
# each with its log lines prefixed by its name. Prints the page's address and
# runs until Ctrl-C, which stops everything cleanly (exit status 0).
#
# Ports (override with the environment): IMBRIDGE_ROUTER_PORT (7700),
# IMBRIDGE_ROUTER_HTTP_PORT (7701), IMBRIDGE_TEAMSPIRIT_PORT (7711),
# IMBRIDGE_SLACK_PORT (7712), IMBRIDGE_TELEGRAM_PORT (7713),
# IMBRIDGE_WEBHOOK_PORT (7714), IMBRIDGE_BITRIX24_PORT (7715),
# IMBRIDGE_SANDBOX_PORT (8080). IMBRIDGE_RUN_DIR (run/) holds configs, data
# and secrets; IMBRIDGE_BUILD_DIR (build/) the binaries; IMBRIDGE_SKIP_BUILD=1
# uses the binaries as they are.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${IMBRIDGE_BUILD_DIR:-$root/build}"
run="${IMBRIDGE_RUN_DIR:-$root/run}"
router_port="${IMBRIDGE_ROUTER_PORT:-7700}"
router_http_port="${IMBRIDGE_ROUTER_HTTP_PORT:-7701}"
teamspirit_port="${IMBRIDGE_TEAMSPIRIT_PORT:-7711}"
slack_port="${IMBRIDGE_SLACK_PORT:-7712}"
telegram_port="${IMBRIDGE_TELEGRAM_PORT:-7713}"
webhook_port="${IMBRIDGE_WEBHOOK_PORT:-7714}"
bitrix24_port="${IMBRIDGE_BITRIX24_PORT:-7715}"
sandbox_port="${IMBRIDGE_SANDBOX_PORT:-8080}"

say() { printf '[run] %s\n' "$*"; }
die() { printf '[run] error: %s\n' "$*" >&2; exit 1; }

if [ "${IMBRIDGE_SKIP_BUILD:-0}" != 1 ]; then
  "$root/scripts/build.sh" imbridge-router imbridge-adapter-teamspirit \
    imbridge-adapter-slack imbridge-adapter-telegram imbridge-adapter-webhook \
    imbridge-adapter-bitrix24 imbridge-sandbox
fi
for bin in bridge/imbridge-router adapters/teamspirit/imbridge-adapter-teamspirit \
  adapters/slack/imbridge-adapter-slack adapters/telegram/imbridge-adapter-telegram \
  adapters/webhook/imbridge-adapter-webhook adapters/bitrix24/imbridge-adapter-bitrix24 \
  tools/sandbox/imbridge-sandbox; do
  [ -x "$build/$bin" ] || die "$build/$bin is missing (build it, or unset IMBRIDGE_SKIP_BUILD)"
done

# Every port must be free before anything starts.
for entry in "router:$router_port" "router HTTP:$router_http_port" \
  "TeamSpirit adapter:$teamspirit_port" "Slack adapter:$slack_port" \
  "Telegram adapter:$telegram_port" "webhook adapter:$webhook_port" \
  "Bitrix24 adapter:$bitrix24_port" "sandbox page:$sandbox_port"; do
  port="${entry##*:}"
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "port $port (${entry%:*}) is in use; stop what uses it or set another port (see the top of scripts/run.sh)"
  fi
done

# Fresh configs, secrets and data: the emulated messengers start empty, so
# the router's message map of an earlier run would point at nothing.
umask 077
mkdir -p "$run"
rm -rf "$run/data" "$run/telegram" "$run/bitrix24" "$run/sandbox.endpoints"
mkdir -p "$run/data" "$run/telegram" "$run/bitrix24"
secret() { head -c "${1:-24}" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
ts_router_token="$(secret)"
slack_router_token="$(secret)"
telegram_router_token="$(secret)"
webhook_router_token="$(secret)"
bitrix24_router_token="$(secret)"
admin_token="$(secret)"
ts_api_key="ts-$(secret)"
ts_webhook_secret="$(secret)"
slack_bot_token="xoxb-$(secret)"
slack_signing_secret="$(secret)"
telegram_bot_token="7$(od -An -N4 -tu4 /dev/urandom | tr -d ' '):AA$(secret 16)"
telegram_secret="$(secret)"
bitrix24_webhook_code="$(secret 16)"
bitrix24_bot_token="$(secret 16)"
printf '%s\n' "$admin_token" > "$run/admin-token"

cat > "$run/sandbox.yaml" <<EOF
# imbridge-sandbox (written by scripts/run.sh; see deploy/sandbox/sandbox.example.yaml)
listen: 127.0.0.1:$sandbox_port
endpoints_file: $run/sandbox.endpoints
teamspirit:
  api_key: "$ts_api_key"
  webhook_secret: "$ts_webhook_secret"
  webhook_url: http://127.0.0.1:$teamspirit_port/teamspirit/events
  chat_id: c-sandbox
  chat_title: Sandbox
  people:
    - {id: u-yuki, name: Yuki Tanaka}
    - {id: u-kenji, name: Kenji Sato}
slack:
  bot_token: "$slack_bot_token"
  signing_secret: "$slack_signing_secret"
  events_url: http://127.0.0.1:$slack_port/slack/sandbox/events
  channel_id: C0SANDBOX
  channel_name: sandbox
  people:
    - {id: U0ANN, name: Ann Lee}
    - {id: U0BOB, name: Bob Stone}
telegram:
  bot_token: "$telegram_bot_token"
  chat_title: Sandbox
  people:
    - {name: Carla Diaz}
    - {name: Dmitri Ivanov}
bitrix24:
  webhook_code: "$bitrix24_webhook_code"
  bot_token: "$bitrix24_bot_token"
  chat_title: Sandbox
  people:
    - {name: Elena Petrova}
    - {name: Felix Braun}
EOF

# ---- processes -------------------------------------------------------------

pids=()
names=()
stopping=0

# start NAME BINARY CONFIG: runs it with every output line prefixed "[NAME] ".
# It runs in its own session, so that Ctrl-C reaches only this script, which
# then stops the processes one by one (adapters, router, sandbox); the
# labelling sed ignores Ctrl-C and ends when the process does.
start() {
  local name="$1" bin="$2" config="$3"
  setsid "$build/$bin" --config "$config" \
    > >(trap '' INT TERM; exec sed -u "s/^/[$name] /") 2>&1 &
  pids+=("$!")
  names+=("$name")
}

# stop_one PID: SIGTERM, then up to 15 s for a clean exit, then SIGKILL.
stop_one() {
  local pid="$1" i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 150; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "process $pid did not stop within 15 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# Stops the adapters first, then the router, then the sandbox.
stop_all() {
  stopping=1
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_one "${pids[$i]}"; done
}

on_signal() {
  echo
  say "stopping everything"
  stop_all
  say "stopped"
  exit 0
}
trap on_signal INT TERM

# fail MESSAGE: stops what runs and exits 1.
fail() {
  printf '[run] error: %s\n' "$*" >&2
  stop_all
  exit 1
}

# alive INDEX: whether the INDEX-th process still runs.
alive() { kill -0 "${pids[$1]}" 2>/dev/null; }

# wait_ready NAME URL: waits up to 60 s for URL to answer 200.
wait_ready() {
  local name="$1" url="$2" index=$((${#pids[@]} - 1)) i
  for ((i = 0; i < 600; i++)); do
    if curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; then return 0; fi
    alive "$index" || fail "$name exited before it was ready (see its log above)"
    sleep 0.1
  done
  fail "$name was not ready after 60 s ($url)"
}

say "starting the sandbox (emulated TeamSpirit, Slack, Telegram and Bitrix24)"
start sandbox tools/sandbox/imbridge-sandbox "$run/sandbox.yaml"
for ((i = 0; i < 600; i++)); do
  [ -f "$run/sandbox.endpoints" ] && break
  alive 0 || fail "the sandbox exited before it was ready (see its log above)"
  sleep 0.1
done
[ -f "$run/sandbox.endpoints" ] || fail "the sandbox did not start within 60 s"
# PAGE_URL, TEAMSPIRIT_API_URL, SLACK_API_URL, TELEGRAM_API_URL,
# BITRIX24_WEBHOOK_URL, BITRIX24_BOT_ID, *_CHAT_ID...
# shellcheck disable=SC1091
. "$run/sandbox.endpoints"

cat > "$run/router.yaml" <<EOF
# imbridge-router (written by scripts/run.sh; see docs/configuration.md)
listen: 127.0.0.1:$router_port
data_dir: $run/data
admin_token_file: $run/admin-token
http:
  listen: 127.0.0.1:$router_http_port
adapters:
  - {name: teamspirit, token: "$ts_router_token", platforms: [teamspirit]}
  - {name: slack, token: "$slack_router_token", platforms: [slack]}
  - {name: telegram, token: "$telegram_router_token", platforms: [telegram]}
  - {name: webhook, token: "$webhook_router_token", platforms: [webhook]}
  - {name: bitrix24, token: "$bitrix24_router_token", platforms: [bitrix24]}
links:
  - name: sandbox
    members:
      - {platform: teamspirit, account: sandbox, chat_id: "$TEAMSPIRIT_CHAT_ID"}
      - {platform: slack, account: sandbox, chat_id: "$SLACK_CHANNEL_ID"}
      - {platform: telegram, account: sandbox, chat_id: "$TELEGRAM_CHAT_ID"}
      - {platform: bitrix24, account: sandbox, chat_id: "$BITRIX24_CHAT_ID"}
store:
  durability: normal
dispatch:
  initial_backoff_ms: 200
  max_backoff_ms: 5000
EOF

cat > "$run/teamspirit.yaml" <<EOF
# imbridge-adapter-teamspirit (written by scripts/run.sh; see docs/teamspirit.md)
router: {address: "127.0.0.1:$router_port", token: "$ts_router_token"}
http: {listen: "127.0.0.1:$teamspirit_port"}
account: sandbox
api_base_url: "$TEAMSPIRIT_API_URL"
api_key: "$ts_api_key"
webhook_secret: "$ts_webhook_secret"
EOF

cat > "$run/slack.yaml" <<EOF
# imbridge-adapter-slack (written by scripts/run.sh; see docs/slack.md)
router: {address: "127.0.0.1:$router_port", token: "$slack_router_token"}
http: {listen: "127.0.0.1:$slack_port"}
accounts:
  - name: sandbox
    bot_token: "$slack_bot_token"
    signing_secret: "$slack_signing_secret"
    api_base_url: "$SLACK_API_URL"
    presence_poll_interval_seconds: 3
    presence_calls_per_minute: 120
    messages_per_second: 5
    message_burst: 10
EOF

cat > "$run/telegram.yaml" <<EOF
# imbridge-adapter-telegram (written by scripts/run.sh; see docs/telegram.md)
router: {address: "127.0.0.1:$router_port", token: "$telegram_router_token"}
http: {listen: "127.0.0.1:$telegram_port"}
state_dir: $run/telegram
rate_limits: {per_chat_per_second: 5, per_chat_burst: 10, per_group_per_minute: 120}
accounts:
  - name: sandbox
    token: "$telegram_bot_token"
    mode: webhook
    secret_token: "$telegram_secret"
    api_base_url: "$TELEGRAM_API_URL"
    set_webhook:
      url: http://127.0.0.1:$telegram_port/telegram/sandbox
EOF

cat > "$run/bitrix24.yaml" <<EOF
# imbridge-adapter-bitrix24 (written by scripts/run.sh; see docs/bitrix24.md).
# The sandbox registered the bot (as --register would) and added it to the chat.
router: {address: "127.0.0.1:$router_port", token: "$bitrix24_router_token"}
http: {listen: "127.0.0.1:$bitrix24_port"}
state_dir: $run/bitrix24
accounts:
  - name: sandbox
    webhook_url: "$BITRIX24_WEBHOOK_URL"
    bot_id: $BITRIX24_BOT_ID
    bot_token: "$bitrix24_bot_token"
    requests_per_second: 20
    poll_idle_ms: 2000
EOF

cat > "$run/webhook.yaml" <<EOF
# imbridge-adapter-webhook (written by scripts/run.sh; see docs/webhook.md).
# Its webhooks are kept by the router: imbridgectl webhook create --link sandbox
router: {address: "127.0.0.1:$router_port", token: "$webhook_router_token"}
http: {listen: "127.0.0.1:$webhook_port"}
EOF

say "starting the router"
start router bridge/imbridge-router "$run/router.yaml"
wait_ready router "http://127.0.0.1:$router_http_port/readyz"
start teamspirit adapters/teamspirit/imbridge-adapter-teamspirit "$run/teamspirit.yaml"
wait_ready "the TeamSpirit adapter" "http://127.0.0.1:$teamspirit_port/readyz"
start slack adapters/slack/imbridge-adapter-slack "$run/slack.yaml"
wait_ready "the Slack adapter" "http://127.0.0.1:$slack_port/readyz"
start telegram adapters/telegram/imbridge-adapter-telegram "$run/telegram.yaml"
wait_ready "the Telegram adapter" "http://127.0.0.1:$telegram_port/readyz"
start webhook adapters/webhook/imbridge-adapter-webhook "$run/webhook.yaml"
wait_ready "the webhook adapter" "http://127.0.0.1:$webhook_port/readyz"
start bitrix24 adapters/bitrix24/imbridge-adapter-bitrix24 "$run/bitrix24.yaml"
wait_ready "the Bitrix24 adapter" "http://127.0.0.1:$bitrix24_port/readyz"

cat <<EOF
[run] ------------------------------------------------------------------
[run]  imbridge is running. Open the sandbox page:  $PAGE_URL
[run]  configs, secrets and data: $run   (Ctrl-C stops everything)
[run] ------------------------------------------------------------------
EOF

# Runs until Ctrl-C, or until a process stops on its own.
while true; do
  sleep 1 &
  wait $! || true
  [ "$stopping" = 1 ] && continue
  for i in "${!pids[@]}"; do
    alive "$i" || fail "${names[$i]} stopped unexpectedly (see its log above)"
  done
done
