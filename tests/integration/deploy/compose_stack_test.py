#!/usr/bin/env python3
"""deploy/compose.yaml: valid, its configs valid, and the stack comes up.

Validates the file with `docker-compose config` (Debian's docker-compose
1.29; podman-compose 1.0 has no `config`), checks what every service must
have (the one image, non-root, read-only root, the router's named volume),
runs every config in deploy/compose/ through its binary's --check-config,
then builds the image (deploy/container/build-image.sh, private vfs storage)
and runs the file as it is with docker-compose against podman's
Docker-compatible API (podman-compose 1.0.3 adds a network to
network_mode: host services, which podman refuses): the router, the five
adapters and the sandbox page must all answer (each adapter's /readyz means
attached to the router and its emulated messenger reachable), a message
posted on the emulated TeamSpirit must appear on Slack and Telegram, and one
posted to an incoming webhook (made with this build's imbridgectl and the
compose router's admin token) on all three.
Everything is removed at the end, volumes included.

The stack uses fixed ports on 127.0.0.1 (those of scripts/run.sh: 7700-7701,
7711-7715, 8080; plus 7721-7724); if one is taken, that part is skipped and says so. Needs root
(exit 77 otherwise).
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import yaml

SOURCE = os.environ["IMBRIDGE_SOURCE_DIR"]
BUILD = os.environ["IMBRIDGE_BUILD_DIR"]
COMPOSE = os.path.join(SOURCE, "deploy/compose.yaml")
TAG = "localhost/imbridge-compose-test:latest"
BINARY = {
    "sandbox": "tools/sandbox/imbridge-sandbox",
    "router": "bridge/imbridge-router",
    "teamspirit": "adapters/teamspirit/imbridge-adapter-teamspirit",
    "slack": "adapters/slack/imbridge-adapter-slack",
    "telegram": "adapters/telegram/imbridge-adapter-telegram",
    "webhook": "adapters/webhook/imbridge-adapter-webhook",
    "bitrix24": "adapters/bitrix24/imbridge-adapter-bitrix24",
}
PORTS = [7700, 7701, 7711, 7712, 7713, 7714, 7715, 7721, 7722, 7723, 7724,
         8080]
READY = {
    "router": "http://127.0.0.1:7701/readyz",
    "teamspirit": "http://127.0.0.1:7711/readyz",
    "slack": "http://127.0.0.1:7712/readyz",
    "telegram": "http://127.0.0.1:7713/readyz",
    "webhook": "http://127.0.0.1:7714/readyz",
    "bitrix24": "http://127.0.0.1:7715/readyz",
    "sandbox": "http://127.0.0.1:8080/",
}


def port_in_use(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def http_status(url):
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


class ComposeStackTest(unittest.TestCase):
    def test_1_compose_file_is_valid(self):
        out = subprocess.run(["docker-compose", "-f", COMPOSE, "config", "--quiet"],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        out = subprocess.run(["docker-compose", "-f", COMPOSE, "config"],
                             capture_output=True, text=True, timeout=60, check=True)
        config = yaml.safe_load(out.stdout)
        self.assertEqual(sorted(config["services"]), sorted(BINARY))
        for name, service in config["services"].items():
            self.assertEqual(service["image"], "localhost/imbridge:latest", name)
            self.assertEqual(service["user"], "10001:10001", name)
            self.assertTrue(service["read_only"], name)
            self.assertEqual(service["command"][0],
                             os.path.basename(BINARY[name]), name)
        self.assertIn("imbridge-data:/var/lib/imbridge:rw",
                      config["services"]["router"]["volumes"])
        self.assertIn("imbridge-data", config["volumes"])

    def test_2_configs_pass_check_config(self):
        for name, binary in BINARY.items():
            path = os.path.join(SOURCE, "deploy/compose", name + ".yaml")
            out = subprocess.run([os.path.join(BUILD, binary), "--config", path,
                                  "--check-config"], capture_output=True, text=True,
                                 timeout=60)
            self.assertEqual(out.returncode, 0, "%s: %s%s" % (name, out.stdout, out.stderr))

    def test_3_stack_relays_a_message(self):
        taken = [p for p in PORTS if port_in_use(p)]
        if taken:
            self.skipTest("ports in use on 127.0.0.1: %s" % taken)
        # Directly under /tmp whatever TMPDIR says: podman refuses a runroot
        # path longer than 50 characters (the test removes the directory).
        tmp = tempfile.mkdtemp(prefix="imbridge-compose-", dir="/tmp")
        storage = ["--root", os.path.join(tmp, "storage"), "--runroot",
                   os.path.join(tmp, "run"), "--storage-driver", "vfs"]
        socket_path = os.path.join(tmp, "podman.sock")
        # docker-compose drives podman through its Docker-compatible API
        # (podman-compose 1.0.3 cannot run network_mode: host services).
        env = dict(os.environ, IMBRIDGE_IMAGE=TAG, BUILDAH_OPTS=" ".join(storage),
                   DOCKER_HOST="unix://" + socket_path)
        compose = ["docker-compose", "-p", "imbridge-test", "-f", COMPOSE]
        service = None
        try:
            out = subprocess.run(
                [os.path.join(SOURCE, "deploy/container/build-image.sh"),
                 "--build-dir", BUILD, "--tag", TAG], env=env, capture_output=True,
                text=True, timeout=600)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            service = subprocess.Popen(
                ["podman"] + storage + ["--runtime", "runc", "system", "service",
                                        "--time=0", "unix://" + socket_path],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 30
            while not os.path.exists(socket_path) and time.monotonic() < deadline:
                time.sleep(0.2)
            out = subprocess.run(compose + ["up", "-d"], env=env, capture_output=True,
                                 text=True, timeout=300)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

            def logs():
                out = subprocess.run(compose + ["logs", "--no-color"], env=env,
                                     capture_output=True, text=True, timeout=120)
                return out.stdout[-6000:] + out.stderr[-2000:]

            pending = dict(READY)
            deadline = time.monotonic() + 120
            while pending and time.monotonic() < deadline:
                for name, url in list(pending.items()):
                    if http_status(url) == 200:
                        del pending[name]
                time.sleep(0.5)
            if pending:
                self.fail("not ready after 120 s: %s\n%s" % (sorted(pending), logs()))

            # A TeamSpirit message reaches Slack and Telegram.
            request = urllib.request.Request(
                "http://127.0.0.1:8080/api/teamspirit/post",
                data=json.dumps({"user": "u-yuki", "text": "hello via compose"}).encode(),
                headers={"Content-Type": "application/json"}, method="POST")
            with urllib.request.urlopen(request, timeout=10) as r:
                self.assertEqual(r.status, 200)

            def wait_relayed(text, messengers):
                deadline = time.monotonic() + 60
                texts = {}
                while time.monotonic() < deadline:
                    with urllib.request.urlopen("http://127.0.0.1:8080/api/state",
                                                timeout=10) as r:
                        state = json.load(r)
                    texts = {m: " ".join(x.get("text", "") for x in v["messages"])
                             for m, v in state["messengers"].items()}
                    if all(text in texts.get(m, "") for m in messengers):
                        return
                    time.sleep(0.5)
                self.fail("%r not relayed: %s\n%s" % (text, texts, logs()))
            wait_relayed("hello via compose", ("slack", "telegram"))

            # An incoming webhook: created with imbridgectl (the compose
            # router's admin token), posted to the webhook adapter.
            out = subprocess.run(
                [os.path.join(BUILD, "tools/imbridgectl/imbridgectl"), "--router",
                 "127.0.0.1:7700", "--token", "compose-sandbox-admin-token", "--json",
                 "webhook", "create", "--link", "sandbox"],
                capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            created = json.loads(out.stdout)
            request = urllib.request.Request(
                "http://127.0.0.1:7714/hooks/" + created["webhook"]["id"],
                data=json.dumps({"text": "hook via compose"}).encode(),
                headers={"Content-Type": "application/json",
                         "Authorization": "Bearer " + created["secret"]}, method="POST")
            with urllib.request.urlopen(request, timeout=20) as r:
                self.assertEqual(r.status, 200)
            wait_relayed("hook via compose", ("teamspirit", "slack", "telegram"))
        finally:
            if service is not None:
                subprocess.run(compose + ["down", "--volumes", "--timeout", "20"],
                               env=env, capture_output=True, timeout=300)
                service.terminate()
                service.wait(timeout=30)
            subprocess.run(["podman"] + storage + ["rm", "--all", "--force"],
                           capture_output=True, timeout=120)
            subprocess.run(["podman"] + storage + ["volume", "prune", "--force"],
                           capture_output=True, timeout=120)
            subprocess.run(["buildah"] + storage + ["rmi", "--all", "--force"],
                           capture_output=True, timeout=120)
            subprocess.run(["umount", "-R", os.path.join(tmp, "storage")],
                           capture_output=True)
            shutil.rmtree(tmp, ignore_errors=True)

if __name__ == "__main__":
    if os.geteuid() != 0:
        print("SKIP: podman needs root here")
        sys.exit(77)
    unittest.main(verbosity=2)
