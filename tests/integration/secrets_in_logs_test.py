#!/usr/bin/env python3
"""No token, key or secret ever appears in a log line, and every log line of
every process is one JSON object.

Starts the whole bridge with scripts/run.sh (router, the TeamSpirit, Slack,
Telegram, webhook and Chatlio adapters, the sandbox; free ports, a fresh run
directory, freshly generated distinctive secrets), makes messages flow through
every adapter (the webhook adapter's through an incoming webhook made with
imbridgectl), sends each webhook endpoint a request with a wrong secret and
the Admin API a wrong token (the refusals are logged), stops everything with
SIGINT, then searches every line every process wrote for every secret in the
run directory's configs and the incoming webhook's key.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

SOURCE_DIR = os.environ.get(
    "IMBRIDGE_SOURCE_DIR",
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BUILD_DIR = os.environ.get("IMBRIDGE_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))

# Config keys whose values are secrets.
# Block ("key: value") and flow ("{key: value, ...}") YAML alike.
SECRET_KEYS = re.compile(
    r"\b(token|api_key|webhook_secret|bot_token|signing_secret|app_token|"
    r"secret_token|admin_token|secret|user_token|service_user_token)\s*:\s*\"?([^\",}\s#]+)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(url, body=b"", headers=None, method="POST"):
    req = urllib.request.Request(url, data=body if method == "POST" else None,
                                 headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def main():
    run_dir = tempfile.mkdtemp(prefix="imbridge-secrets-")
    ports = {name: free_port() for name in
             ("ROUTER", "ROUTER_HTTP", "TEAMSPIRIT", "SLACK", "TELEGRAM", "WEBHOOK",
              "CHATLIO", "SANDBOX")}
    env = dict(os.environ, IMBRIDGE_RUN_DIR=run_dir, IMBRIDGE_SKIP_BUILD="1",
               IMBRIDGE_BUILD_DIR=BUILD_DIR)
    for name, port in ports.items():
        env[f"IMBRIDGE_{name}_PORT"] = str(port)
    child = subprocess.Popen(["bash", os.path.join(SOURCE_DIR, "scripts/run.sh")],
                             env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    lines = []
    ready = threading.Event()
    ctl = os.path.join(BUILD_DIR, "tools/imbridgectl/imbridgectl")
    webhook_key = None

    def reader():
        for line in child.stdout:
            lines.append(line.rstrip("\n"))
            if "imbridge is running" in line:
                ready.set()
    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        if not ready.wait(180):
            print("\n".join(lines[-60:]))
            raise SystemExit("run.sh did not start the stack within 180 s")
        sandbox = f"http://127.0.0.1:{ports['SANDBOX']}"
        # Messages through every adapter, both ways.
        for messenger, user in (("slack", "U0ANN"), ("teamspirit", "u-yuki")):
            status, body = request(
                f"{sandbox}/api/{messenger}/post",
                json.dumps({"user": user, "text": f"secret check from {messenger}"}).encode(),
                {"Content-Type": "application/json"})
            assert status == 200, (messenger, status, body)
        # And from an incoming webhook: its key is a secret too.
        created = subprocess.run(
            [ctl, "--router", f"127.0.0.1:{ports['ROUTER']}", "--token-file",
             os.path.join(run_dir, "admin-token"), "--json", "webhook", "create",
             "--link", "sandbox"], capture_output=True, text=True, timeout=60)
        assert created.returncode == 0, created
        created = json.loads(created.stdout)
        webhook_key = created["secret"]
        hooks = f"http://127.0.0.1:{ports['WEBHOOK']}/hooks/{created['webhook']['id']}"
        status, body = request(hooks, b'{"text": "secret check from webhook"}', {
            "Content-Type": "application/json", "Authorization": f"Bearer {webhook_key}"})
        assert status == 200, ("webhook", status, body)
        deadline = time.time() + 60
        while time.time() < deadline:
            status, body = request(f"{sandbox}/api/state", method="GET")
            if body.count(b"secret check from") >= 9:  # each in all three panes
                break
            time.sleep(0.2)
        else:
            raise SystemExit("the messages did not reach every messenger")

        # Refusals that get logged: wrong secrets at every webhook endpoint.
        wrong = {"Content-Type": "application/json"}
        status, _ = request(f"http://127.0.0.1:{ports['TEAMSPIRIT']}/teamspirit/events",
                            b'{"event_id":"x"}', dict(wrong, **{
                                "X-TeamSpirit-Signature": "v1=" + "0" * 64,
                                "X-TeamSpirit-Timestamp": str(int(time.time()))}))
        assert status == 401, status
        status, _ = request(f"http://127.0.0.1:{ports['SLACK']}/slack/sandbox/events",
                            b'{"type":"event_callback"}', dict(wrong, **{
                                "X-Slack-Signature": "v0=" + "0" * 64,
                                "X-Slack-Request-Timestamp": str(int(time.time()))}))
        assert status == 401, status
        status, _ = request(f"http://127.0.0.1:{ports['TELEGRAM']}/telegram/sandbox",
                            b'{"update_id":1}', dict(wrong, **{
                                "X-Telegram-Bot-Api-Secret-Token": "not-the-secret"}))
        assert status == 401, status
        # A wrong key, in the header and in the path (its log line must not
        # show either).
        status, _ = request(hooks, b'{"text": "x"}', dict(wrong, Authorization=(
            "Bearer imbk_" + "0" * 48)))
        assert status == 401, status
        status, _ = request(f"{hooks}/imbk_{'1' * 48}", b'{"text": "x"}', wrong)
        assert status == 401, status
        # Chatlio's webhook with a wrong path secret: 404, logged without it.
        status, _ = request(
            f"http://127.0.0.1:{ports['CHATLIO']}/chatlio/sandbox/not-the-secret-0123456789",
            b'{"conversationUUID": "x"}', wrong)
        assert status == 404, status
        if os.path.exists(ctl):
            refused = subprocess.run(
                [ctl, "--router", f"127.0.0.1:{ports['ROUTER']}", "--token",
                 "wrong-admin-token-0123456789", "stats"],
                capture_output=True, text=True, timeout=60)
            assert refused.returncode == 1, refused
            ok = subprocess.run(
                [ctl, "--router", f"127.0.0.1:{ports['ROUTER']}", "--token-file",
                 os.path.join(run_dir, "admin-token"), "link", "list"],
                capture_output=True, text=True, timeout=60)
            assert ok.returncode == 0, ok
    finally:
        child.send_signal(signal.SIGINT)
        try:
            code = child.wait(120)
        except subprocess.TimeoutExpired:
            child.kill()
            code = "killed"
        thread.join(10)

    secrets = set()
    for name in os.listdir(run_dir):
        path = os.path.join(run_dir, name)
        if not os.path.isfile(path):
            continue
        with open(path, errors="replace") as f:
            text = f.read()
        if name == "admin-token":
            secrets.add(text.strip())
        for match in SECRET_KEYS.finditer(text):
            value = match.group(2)
            if len(value) >= 12 and not value.startswith("${"):
                secrets.add(value)
    if webhook_key:
        secrets.add(webhook_key)
    assert len(secrets) >= 12, f"expected the run's secrets, found {len(secrets)}"

    failures = []
    process_lines = 0
    for line in lines:
        for secret in secrets:
            # The Telegram token's secret half alone must not show either.
            parts = [secret] + ([secret.split(":", 1)[1]] if ":" in secret else [])
            if any(p in line for p in parts):
                failures.append(f"a secret appears in: {line[:200]}")
        m = re.match(r"^\[(router|teamspirit|slack|telegram|webhook|chatlio|sandbox)\] (.*)$",
                     line)
        if m and m.group(2).startswith("{"):
            process_lines += 1
            try:
                record = json.loads(m.group(2))
                for key in ("time", "level", "component", "msg"):
                    if key not in record:
                        failures.append(f"no '{key}' in: {line[:200]}")
            except ValueError:
                failures.append(f"not one JSON object: {line[:200]}")
        elif m and not m.group(2).startswith(("teamspirit listening", "slack listening",
                                               "telegram listening", "webhook listening",
                                               "chatlio listening",
                                               "imbridge-")):
            failures.append(f"not a JSON log line: {line[:200]}")
    if code != 0:
        failures.append(f"run.sh exited {code} after SIGINT")
    if process_lines < 20:
        failures.append(f"only {process_lines} log lines were read")
    if failures:
        print("\n".join(failures[:40]))
        return 1
    print(f"ok: {process_lines} log lines from 6 processes, {len(secrets)} secrets, none leaked")
    shutil.rmtree(run_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
