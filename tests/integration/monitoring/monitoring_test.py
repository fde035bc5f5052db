#!/usr/bin/env python3
"""The monitoring of deploy/ checked by a real Prometheus.

Starts the sandbox stack with scripts/run.sh (router, TeamSpirit, Slack and
Telegram adapters against the emulated messengers, and the webhook adapter;
free ports, a fresh run directory) and Debian's `prometheus` as an unprivileged user (`nobody` when
run as root) in a temporary directory, scraping the router and every adapter
each second and loading deploy/prometheus/alerts.yaml. Then:

- every target (the router and the four adapters) is `up` (Prometheus's
  /api/v1/targets);
- after a warm-up message, N messages sent through the bridge (from Slack,
  TeamSpirit and an incoming webhook made with imbridgectl) raise
  imbridge_router_link_events_total{link="sandbox",kind="message"} by exactly
  N, as Prometheus sees it (/api/v1/query);
- every metric name in deploy/grafana/imbridge.json and alerts.yaml is a
  series in the live /metrics of the process that exports it: a router metric
  in the router's, an adapter metric in every adapter's;
- every dashboard query is valid PromQL and returns data, and every alerting
  rule evaluates without error (/api/v1/rules);
- the dashboard is a well-formed Grafana model on the DS_PROMETHEUS variable.

Exits 77 (skipped) when Prometheus is not installed.
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
import urllib.parse
import urllib.request

SOURCE_DIR = os.environ.get(
    "IMBRIDGE_SOURCE_DIR",
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))))
BUILD_DIR = os.environ.get("IMBRIDGE_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
DASHBOARD = os.path.join(SOURCE_DIR, "deploy/grafana/imbridge.json")
ALERTS = os.path.join(SOURCE_DIR, "deploy/prometheus/alerts.yaml")
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
IMBRIDGECTL = os.path.join(BUILD_DIR, "tools/imbridgectl/imbridgectl")
ADAPTERS = ("teamspirit", "slack", "telegram", "webhook")
MESSAGES = 5
# Series Prometheus makes itself, not the processes.
PROMETHEUS_OWN = {"up"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, headers=headers or {},
                                 method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_for(what, condition, timeout=60, interval=0.25):
    """Polls `condition` until it returns a true value; fails after timeout."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def metric_names(text):
    """Names of the samples in Prometheus text (histograms' _bucket etc.)."""
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    return names


def names_in_expr(expr):
    """The metric names a PromQL expression selects (imbridge_* and up)."""
    found = set(re.findall(r"\bimbridge_[a-z0-9_]+\b", expr))
    if re.search(r"\bup\s*[{\[]", expr):
        found.add("up")
    return found


def dashboard_queries():
    with open(DASHBOARD) as f:
        board = json.load(f)
    exprs = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            exprs.append(target["expr"])
    variables = []
    for var in board["templating"]["list"]:
        if var["type"] == "query":
            variables.append(var["definition"])
    return exprs, variables


def dashboard_shape():
    """What Grafana needs of the JSON model: unique panel ids, every query
    on the DS_PROMETHEUS data source variable, panels inside the 24-column
    grid."""
    with open(DASHBOARD) as f:
        board = json.load(f)
    failures = []
    variables = {v["name"]: v for v in board["templating"]["list"]}
    if variables.get("DS_PROMETHEUS", {}).get("type") != "datasource":
        failures.append("dashboard: no data source variable DS_PROMETHEUS")
    ids = [p["id"] for p in board["panels"]]
    if len(ids) != len(set(ids)):
        failures.append(f"dashboard: panel ids repeat: {ids}")
    for panel in board["panels"]:
        grid = panel["gridPos"]
        if grid["x"] + grid["w"] > 24:
            failures.append(f"dashboard: {panel['title']} is outside the grid")
        for target in panel.get("targets", []):
            if target["datasource"]["uid"] != "${DS_PROMETHEUS}":
                failures.append(f"dashboard: {panel['title']} queries another data source")
    return failures


def alert_exprs():
    # The rule file is YAML; its expressions are the `expr:` values (one line,
    # or a `|` block indented under it).
    exprs = []
    lines = open(ALERTS).read().splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)expr:\s*(.*)$", line)
        if not m:
            continue
        if m.group(2).strip() != "|":
            exprs.append(m.group(2))
            continue
        block = []
        for more in lines[i + 1:]:
            if more.strip() and len(more) - len(more.lstrip()) <= len(m.group(1)):
                break
            block.append(more.strip())
        exprs.append(" ".join(block))
    return exprs


class Prometheus:
    def __init__(self, targets):
        # As root it runs as nobody, who must reach the directory: /tmp, not a
        # TMPDIR of root's own.
        self.dir = tempfile.mkdtemp(prefix="imbridge-prometheus-",
                                    dir="/tmp" if os.geteuid() == 0 else None)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        shutil.copy(ALERTS, os.path.join(self.dir, "alerts.yaml"))
        jobs = []
        for job, hosts in targets.items():
            jobs.append(f"  - job_name: {job}\n    static_configs:\n"
                        f"      - targets: [{', '.join(repr(h) for h in hosts)}]\n")
        with open(os.path.join(self.dir, "prometheus.yml"), "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "  evaluation_interval: 1s\n"
                    "rule_files: [alerts.yaml]\nscrape_configs:\n" + "".join(jobs))
        os.makedirs(os.path.join(self.dir, "data"))
        command = [PROMETHEUS,
                   f"--config.file={self.dir}/prometheus.yml",
                   f"--storage.tsdb.path={self.dir}/data",
                   f"--web.listen-address=127.0.0.1:{self.port}",
                   "--log.level=warn"]
        if os.geteuid() == 0:
            # Never as root: as nobody, owning only its temporary directory.
            for root, dirs, files in os.walk(self.dir):
                for name in [root] + [os.path.join(root, n) for n in dirs + files]:
                    shutil.chown(name, "nobody", "nogroup")
            command = ["setpriv", "--reuid=nobody", "--regid=nogroup",
                       "--clear-groups", "--"] + command
        self.log = open(os.path.join(self.dir, "prometheus.log"), "w+")
        self.process = subprocess.Popen(command, cwd=self.dir, stdout=self.log,
                                        stderr=subprocess.STDOUT)

    def wait_ready(self):
        def ready():
            if self.process.poll() is not None:
                raise AssertionError(f"prometheus exited with {self.process.returncode}")
            try:
                return request(f"{self.url}/-/ready")[0] == 200
            except (urllib.error.URLError, ConnectionError):
                return False
        wait_for("Prometheus to be ready", ready, timeout=60)

    def api(self, path, **params):
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        status, body = request(url)
        answer = json.loads(body)
        if answer.get("status") != "success":
            raise AssertionError(f"{path} {params}: {status} {body[:300]!r}")
        return answer["data"]

    def value(self, query):
        """The single value of an instant query, or None when it has none."""
        result = self.api("query", query=query)["result"]
        if len(result) != 1:
            return None
        return float(result[0]["value"][1])

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.seek(0)
        output = self.log.read()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return output


class Stack:
    """scripts/run.sh on free ports."""

    def __init__(self):
        self.run_dir = tempfile.mkdtemp(prefix="imbridge-monitoring-")
        self.ports = {name: free_port() for name in
                      ("ROUTER", "ROUTER_HTTP", "TEAMSPIRIT", "SLACK", "TELEGRAM", "WEBHOOK",
                       "CHATLIO", "SANDBOX")}
        env = dict(os.environ, IMBRIDGE_RUN_DIR=self.run_dir, IMBRIDGE_SKIP_BUILD="1",
                   IMBRIDGE_BUILD_DIR=BUILD_DIR)
        for name, port in self.ports.items():
            env[f"IMBRIDGE_{name}_PORT"] = str(port)
        self.lines = []
        self.ready = threading.Event()
        self.child = subprocess.Popen(
            ["bash", os.path.join(SOURCE_DIR, "scripts/run.sh")], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.child.stdout:
            self.lines.append(line.rstrip("\n"))
            if "imbridge is running" in line:
                self.ready.set()

    def metrics_url(self, process):
        port = self.ports["ROUTER_HTTP" if process == "router" else process.upper()]
        return f"http://127.0.0.1:{port}/metrics"

    def metrics(self, process):
        status, body = request(self.metrics_url(process))
        assert status == 200, (process, status)
        return body.decode()

    def post(self, messenger, user, text):
        status, body = request(
            f"http://127.0.0.1:{self.ports['SANDBOX']}/api/{messenger}/post",
            json.dumps({"user": user, "text": text}).encode(),
            {"Content-Type": "application/json"})
        assert status == 200, (messenger, status, body)

    def create_incoming_webhook(self):
        """`imbridgectl webhook create --link sandbox`: (id, key)."""
        out = subprocess.run(
            [IMBRIDGECTL, "--router", f"127.0.0.1:{self.ports['ROUTER']}", "--token-file",
             os.path.join(self.run_dir, "admin-token"), "--json", "webhook", "create",
             "--link", "sandbox", "--description", "monitoring test"],
            capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out
        created = json.loads(out.stdout)
        return created["webhook"]["id"], created["secret"]

    def post_webhook(self, hook, text):
        status, body = request(
            f"http://127.0.0.1:{self.ports['WEBHOOK']}/hooks/{hook[0]}",
            json.dumps({"text": text, "username": "monitor"}).encode(),
            {"Content-Type": "application/json", "Authorization": f"Bearer {hook[1]}"})
        assert status == 200, ("webhook", status, body)

    def shown(self, text):
        """How many times `text` shows in the emulated messengers."""
        _, body = request(f"http://127.0.0.1:{self.ports['SANDBOX']}/api/state")
        return body.decode().count(text)

    def stop(self):
        self.child.send_signal(signal.SIGINT)
        try:
            code = self.child.wait(120)
        except subprocess.TimeoutExpired:
            self.child.kill()
            code = "killed"
        self.reader.join(10)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        return code


def relay(stack, text, messenger, user):
    """Posts `text` (on an emulated messenger, or with messenger "webhook"
    to the incoming webhook `user`) and waits until every messenger shows
    it."""
    if messenger == "webhook":
        stack.post_webhook(user, text)
    else:
        stack.post(messenger, user, text)
    wait_for(f"'{text}' in all three messengers", lambda: stack.shown(text) >= 3)


def provoke_webhook_rejections(stack):
    """A request with a wrong secret at every adapter's webhook endpoint."""
    json_type = {"Content-Type": "application/json"}
    now = str(int(time.time()))
    refused = [
        request(f"http://127.0.0.1:{stack.ports['TEAMSPIRIT']}/teamspirit/events",
                b'{"event_id":"x"}', dict(json_type, **{
                    "X-TeamSpirit-Signature": "v1=" + "0" * 64,
                    "X-TeamSpirit-Timestamp": now})),
        request(f"http://127.0.0.1:{stack.ports['SLACK']}/slack/sandbox/events",
                b'{"type":"event_callback"}', dict(json_type, **{
                    "X-Slack-Signature": "v0=" + "0" * 64,
                    "X-Slack-Request-Timestamp": now})),
        request(f"http://127.0.0.1:{stack.ports['TELEGRAM']}/telegram/sandbox",
                b'{"update_id":1}', dict(json_type, **{
                    "X-Telegram-Bot-Api-Secret-Token": "not-the-secret"})),
        request(f"http://127.0.0.1:{stack.ports['WEBHOOK']}/hooks/wh0000000000000000",
                b'{"text":"x"}', dict(json_type, Authorization="Bearer imbk_not-the-key")),
    ]
    assert [status for status, _ in refused] == [401] * 4, refused


def check(stack, prom):
    failures = dashboard_shape()
    processes = ("router",) + ADAPTERS

    # Every target up.
    def all_up():
        active = prom.api("targets")["activeTargets"]
        healthy = [t for t in active if t["health"] == "up"]
        return len(active) == len(processes) and len(healthy) == len(active)
    wait_for("every target up in Prometheus", all_up, timeout=60)

    # Warm-up: the first message may also relay presence and roster changes;
    # then the counter holds still until the next message.
    relayed = 'imbridge_router_link_events_total{link="sandbox",kind="message"}'
    relay(stack, "monitoring warm-up", "slack", "U0ANN")

    def scraped_value():
        live = re.search(
            r'^imbridge_router_link_events_total\{kind="message",link="sandbox"\} (\S+)$',
            stack.metrics("router"), re.M)
        seen = prom.value(relayed)
        if live and seen is not None and float(live.group(1)) == seen:
            return (seen,)
        return None
    (before,) = wait_for("Prometheus to scrape the warm-up", scraped_value, timeout=30)
    assert before >= 1, before

    hook = stack.create_incoming_webhook()
    origins = (("slack", "U0ANN"), ("teamspirit", "u-yuki"), ("webhook", hook))
    for i in range(MESSAGES):
        messenger, user = origins[i % len(origins)]
        relay(stack, f"monitoring message {i}", messenger, user)
    (after,) = wait_for("Prometheus to scrape the messages",
                        lambda: scraped_value() if (prom.value(relayed) or 0) >= before + MESSAGES
                        else None, timeout=30)
    if after - before != MESSAGES:
        failures.append(f"{relayed} rose by {after - before}, not {MESSAGES}")
    rose = prom.value(f"sum(increase({relayed}[5m]))")
    if rose is None or rose < MESSAGES - 0.5:
        failures.append(f"increase() over the run is {rose}, expected at least {MESSAGES}")

    # Every metric name of the dashboard and the alerts in the right
    # process's live /metrics.
    provoke_webhook_rejections(stack)
    live = {p: metric_names(stack.metrics(p)) for p in processes}
    exprs, variables = dashboard_queries()
    rules = alert_exprs()
    assert len(exprs) >= 15 and len(rules) >= 8, (len(exprs), len(rules))
    for source, queries in (("dashboard", exprs + variables), ("alerts.yaml", rules)):
        for query in queries:
            for name in names_in_expr(query):
                if name in PROMETHEUS_OWN:
                    continue
                in_router = name in live["router"]
                in_adapters = [a for a in ADAPTERS if name in live[a]]
                if not in_router and len(in_adapters) != len(ADAPTERS):
                    failures.append(
                        f"{source}: {name} is not in the router's /metrics nor in every "
                        f"adapter's (only in {in_adapters or 'none'}): {query}")

    # Every dashboard query is valid and, after this traffic, has data.
    # Grafana's $__rate_interval and the link variable, as Grafana would
    # expand them.
    # The rejections just provoked need two scrapes for a rate.
    for expr in exprs:
        query = expr.replace("$__rate_interval", "1m").replace('"$link"', '".*"')
        try:
            wait_for(f"data from {query}",
                     lambda: prom.api("query", query=query)["result"], timeout=15)
        except AssertionError as e:
            failures.append(f"dashboard query refused or without data: {e}")
    links = prom.api("series", **{"match[]": "imbridge_router_link_events_total"})
    if "sandbox" not in {s.get("link") for s in links}:
        failures.append("the dashboard's link variable would not offer 'sandbox'")

    # Every rule loaded and evaluated without error; none fires on a healthy
    # stack (one may be pending: a scrape missed on a loaded machine makes
    # `up` 0 for a second).
    def evaluated():
        groups = prom.api("rules")["groups"]
        rules_seen = [r for g in groups for r in g["rules"]]
        if len(rules_seen) == len(rules) and all(r.get("lastEvaluation", "").startswith("2")
                                                  and not r["lastEvaluation"].startswith("0001")
                                                  for r in rules_seen):
            return rules_seen
        return None
    for rule in wait_for("every alerting rule to be evaluated", evaluated, timeout=30):
        if rule["health"] != "ok":
            failures.append(f"rule {rule['name']}: {rule['health']} {rule.get('lastError')}")
        if rule["state"] == "firing":
            failures.append(f"rule {rule['name']} is {rule['state']} on a healthy stack")
    return failures


def main():
    if not os.path.exists(PROMETHEUS):
        print("skipped: prometheus is not installed (scripts/install-deps.sh installs it)")
        return 77
    start = time.time()
    stack = Stack()
    prom = None
    failures = []
    prom_log = ""
    code = None
    try:
        if not stack.ready.wait(180):
            print("\n".join(stack.lines[-60:]))
            raise AssertionError("run.sh did not start the stack within 180 s")
        prom = Prometheus({
            "imbridge-router": [f"127.0.0.1:{stack.ports['ROUTER_HTTP']}"],
            "imbridge-adapters": [f"127.0.0.1:{stack.ports[a.upper()]}" for a in ADAPTERS],
        })
        prom.wait_ready()
        failures = check(stack, prom)
    except Exception as e:  # Reported with the logs below.
        failures.append(f"{type(e).__name__}: {e}")
    finally:
        if prom is not None:
            prom_log = prom.stop()
        code = stack.stop()
    if code != 0:
        failures.append(f"run.sh exited {code} after SIGINT")
    if failures:
        print("\n".join(failures))
        print("--- prometheus log (tail) ---\n" + "\n".join(prom_log.splitlines()[-30:]))
        print("--- run.sh (tail) ---\n" + "\n".join(stack.lines[-40:]))
        return 1
    print(f"ok: {1 + len(ADAPTERS)} targets up, {MESSAGES} messages counted, dashboard and alerts checked "
          f"against live /metrics in {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
