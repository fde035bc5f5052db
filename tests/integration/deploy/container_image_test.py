#!/usr/bin/env python3
"""deploy/container/build-image.sh builds the image offline and podman runs it.

Builds the image FROM scratch with buildah into a private, temporary
container storage (vfs driver: works inside a container too), checks what it
holds and how it is configured (non-root user 10001, the volume, no shell),
then runs the router from it with podman: read-only root, as uid 10001, its
data in a volume (a host directory owned by 10001), and waits for /readyz to
answer 200. Everything is removed at the end.

Needs root for buildah and podman here (exit 77, ctest's skip, otherwise).
podman runs with runc, host networking and explicit ulimits: the defaults
fail on this kind of machine ("error setting rlimit type 7").
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

SOURCE = os.environ["IMBRIDGE_SOURCE_DIR"]
BUILD = os.environ["IMBRIDGE_BUILD_DIR"]
TAG = "localhost/imbridge-test:latest"
PODMAN_RUN = ["--runtime", "runc", "--network", "host",
              "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]


class ContainerImageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Directly under /tmp whatever TMPDIR says: podman refuses a runroot
        # path longer than 50 characters (the test removes the directory).
        cls.tmp = tempfile.mkdtemp(prefix="imbridge-image-", dir="/tmp")
        cls.storage = ["--root", os.path.join(cls.tmp, "storage"), "--runroot",
                       os.path.join(cls.tmp, "run"), "--storage-driver", "vfs"]
        env = dict(os.environ, BUILDAH_OPTS=" ".join(cls.storage))
        out = subprocess.run(
            [os.path.join(SOURCE, "deploy/container/build-image.sh"), "--build-dir",
             BUILD, "--tag", TAG, "--archive", os.path.join(cls.tmp, "image.tar")],
            env=env, capture_output=True, text=True, timeout=900)
        if out.returncode != 0:
            raise AssertionError("build-image.sh failed:\n%s%s" % (out.stdout, out.stderr))

    @classmethod
    def tearDownClass(cls):
        subprocess.run(["podman"] + cls.storage + ["rm", "--all", "--force"],
                       capture_output=True, timeout=120)
        subprocess.run(["buildah"] + cls.storage + ["rmi", "--all", "--force"],
                       capture_output=True, timeout=120)
        subprocess.run(["umount", "-R", os.path.join(cls.tmp, "storage")],
                       capture_output=True)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def podman(self, *args, check=True, timeout=120):
        out = subprocess.run(["podman"] + self.storage + list(args),
                             capture_output=True, text=True, timeout=timeout)
        if check:
            self.assertEqual(out.returncode, 0, "podman %s:\n%s%s" % (
                " ".join(args), out.stdout, out.stderr))
        return out

    def test_1_image_config_and_contents(self):
        info = json.loads(self.podman("image", "inspect", TAG).stdout)[0]
        config = info["Config"]
        self.assertEqual(config["User"], "10001:10001")
        self.assertIn("/var/lib/imbridge", config["Volumes"])
        self.assertEqual(config["Cmd"][0], "imbridge-router")
        self.assertFalse(config.get("Entrypoint"))
        # Stripped binaries plus their libraries: far below the unstripped
        # build (hundreds of MB).
        self.assertLess(info["Size"], 200 * 1024 * 1024)
        # Every process's binary answers --help inside the image (the loader
        # and the libraries are all there), and there is no shell.
        for binary in ("imbridge-router", "imbridge-adapter-teamspirit",
                       "imbridge-adapter-slack", "imbridge-adapter-telegram",
                       "imbridge-adapter-webhook", "imbridge-sandbox"):
            out = self.podman("run", "--rm", "--read-only", *PODMAN_RUN, TAG,
                              binary, "--help", check=False)
            self.assertIn("usage", (out.stdout + out.stderr).lower(), binary)
            self.assertNotIn("error while loading shared libraries",
                             out.stdout + out.stderr, binary)
        out = self.podman("run", "--rm", *PODMAN_RUN, TAG, "/bin/sh", "-c", "true",
                          check=False)
        self.assertNotEqual(out.returncode, 0)

    def test_1b_archive_loads_elsewhere(self):
        """--archive writes an OCI archive that another storage can load."""
        archive = os.path.join(self.tmp, "image.tar")
        other = ["--root", os.path.join(self.tmp, "other-storage"), "--runroot",
                 os.path.join(self.tmp, "other-run"), "--storage-driver", "vfs"]
        try:
            out = subprocess.run(["podman"] + other + ["load", "--input", archive],
                                 capture_output=True, text=True, timeout=300)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            out = subprocess.run(["podman"] + other + ["run", "--rm", "--read-only"]
                                 + PODMAN_RUN + [TAG, "imbridgectl", "--help"],
                                 capture_output=True, text=True, timeout=120)
            self.assertIn("imbridgectl", out.stdout + out.stderr)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        finally:
            subprocess.run(["podman"] + other + ["rmi", "--all", "--force"],
                           capture_output=True, timeout=120)
            subprocess.run(["umount", "-R", os.path.join(self.tmp, "other-storage")],
                           capture_output=True)

    def test_2_router_read_only_as_10001_answers_readyz(self):
        data = os.path.join(self.tmp, "data")
        os.mkdir(data, 0o700)
        os.chown(data, 10001, 10001)
        config = os.path.join(self.tmp, "router.yaml")
        with open(config, "w") as f:
            f.write("listen: 127.0.0.1:0\n"
                    "data_dir: /var/lib/imbridge\n"
                    "http: {listen: 127.0.0.1:0}\n"
                    "adapters: [{name: test, token: container-test-token-0123}]\n")
        os.chmod(config, 0o644)
        name = "imbridge-router-test"
        self.podman("run", "--detach", "--name", name, "--read-only", *PODMAN_RUN,
                    "--user", "10001:10001",
                    "--volume", "%s:/var/lib/imbridge" % data,
                    "--volume", "%s:/etc/imbridge/router.yaml:ro" % config,
                    TAG)
        try:
            port_file = os.path.join(data, "router.http.port")
            status = None
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                state = json.loads(self.podman("inspect", name).stdout)[0]["State"]
                if not state["Running"]:
                    logs = self.podman("logs", name, check=False)
                    self.fail("the router exited (%s):\n%s%s" % (
                        state.get("ExitCode"), logs.stdout, logs.stderr))
                if os.path.exists(port_file):
                    with open(port_file) as f:
                        port = f.read().strip()
                    if port:
                        try:
                            with urllib.request.urlopen(
                                    "http://127.0.0.1:%s/readyz" % port, timeout=5) as r:
                                status = r.status
                                break
                        except OSError:
                            pass
                time.sleep(0.5)
            self.assertEqual(status, 200, self.podman("logs", name, check=False).stderr)
            users = self.podman("top", name, "huser", "user").stdout
            self.assertIn("10001", users)
            # The database is in the volume, written by uid 10001.
            self.assertEqual(os.stat(os.path.join(data, "imbridge.db")).st_uid, 10001)
        finally:
            self.podman("stop", "--time", "20", name, check=False, timeout=60)
            self.podman("rm", "--force", name, check=False)


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("SKIP: buildah and podman need root here")
        sys.exit(77)
    unittest.main(verbosity=2)
