#!/usr/bin/env python3
"""The Debian package, installed on this machine with dpkg and removed.

Builds build/packages/imbridge_<version>_amd64.deb (`imbridge-deb`), checks
its control data (dependencies from dpkg-shlibdeps, conffiles, maintainer
scripts, stripped binaries), installs it with `dpkg -i`, and checks what an
operator gets: the imbridge user, /var/lib/imbridge (imbridge, 0700), the
example configs in /etc/imbridge (none enabled), generated root-only tokens,
`imbridge-router --check-config` of the shipped example as written with an
empty environment, and `systemd-analyze verify` of every installed unit.
Then `dpkg -r` keeps /var/lib/imbridge and `dpkg -P` removes it and the user.

Needs root (exit 77, which ctest counts as skipped, otherwise). Leaves
nothing installed: the package is purged at the end, also on failure.
"""

import glob
import os
import pwd
import grp
import stat
import subprocess
import sys
import tempfile
import unittest

BUILD = os.environ["IMBRIDGE_BUILD_DIR"]
UNITS = [
    "imbridge-router",
    "imbridge-adapter-teamspirit",
    "imbridge-adapter-slack",
    "imbridge-adapter-telegram",
    "imbridge-adapter-webhook",
]
BINARIES = UNITS + ["imbridgectl", "imbridge-sandbox"]
EXAMPLES = ["router", "slack", "teamspirit", "telegram", "webhook", "sandbox"]


def run(*args, env=None, check=True):
    result = subprocess.run(list(args), env=env, capture_output=True, text=True,
                            timeout=600)
    if check and result.returncode != 0:
        raise AssertionError("%s exited %d:\n%s%s" % (
            " ".join(args), result.returncode, result.stdout, result.stderr))
    return result


def package_state():
    result = run("dpkg-query", "-W", "-f=${db:Status-Status}", "imbridge",
                 check=False)
    return result.stdout.strip() if result.returncode == 0 else ""


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


class DebPackageTest(unittest.TestCase):
    deb = None

    @classmethod
    def setUpClass(cls):
        for old in glob.glob(os.path.join(BUILD, "packages", "imbridge_*.deb")):
            os.remove(old)
        run("cmake", "--build", BUILD, "--target", "imbridge-deb")
        debs = glob.glob(os.path.join(BUILD, "packages", "imbridge_*_amd64.deb"))
        if len(debs) != 1:
            raise AssertionError("expected one imbridge_<version>_amd64.deb, got %s"
                                 % debs)
        cls.deb = debs[0]

    @classmethod
    def tearDownClass(cls):
        if package_state():
            run("dpkg", "--purge", "imbridge", check=False)

    def test_1_control_data(self):
        self.assertRegex(os.path.basename(self.deb),
                         r"^imbridge_\d+\.\d+\.\d+_amd64\.deb$")
        fields = run("dpkg-deb", "--field", self.deb).stdout
        self.assertIn("Package: imbridge", fields)
        self.assertIn("Architecture: amd64", fields)
        depends = run("dpkg-deb", "--field", self.deb, "Depends").stdout
        # From dpkg-shlibdeps: the libraries the binaries link.
        for library in ("libc6", "libgrpc++", "libprotobuf", "libsqlite3",
                        "libcurl", "libssl", "libyaml-cpp"):
            self.assertIn(library, depends)
        for package in ("passwd", "ca-certificates"):
            self.assertIn(package, depends)
        with tempfile.TemporaryDirectory() as control:
            run("dpkg-deb", "--control", self.deb, control)
            for script in ("postinst", "prerm", "postrm"):
                mode = os.stat(os.path.join(control, script)).st_mode
                self.assertTrue(mode & stat.S_IXUSR, script)
            with open(os.path.join(control, "conffiles")) as f:
                conffiles = f.read().split()
            self.assertEqual(
                sorted(conffiles),
                sorted("/etc/imbridge/%s.example.yaml" % e for e in EXAMPLES))
        contents = run("dpkg-deb", "--contents", self.deb).stdout
        for binary in BINARIES:
            self.assertIn("./usr/bin/%s\n" % binary, contents)
        for unit in UNITS:
            self.assertIn("./usr/lib/systemd/system/%s.service\n" % unit,
                          contents)
        self.assertIn("./usr/share/doc/imbridge/operations.md\n", contents)
        self.assertIn("./usr/share/imbridge/sandbox/web/index.html\n", contents)
        for example in EXAMPLES:
            self.assertIn("./etc/imbridge/%s.example.yaml\n" % example, contents)
        # Only /usr and /etc; in /etc only examples: nothing that a unit
        # would start with.
        for line in contents.splitlines():
            path = line.split()[-1]
            self.assertRegex(path, r"^\./(usr|etc)/")
            if path.startswith("./etc/") and not path.endswith("/"):
                self.assertRegex(path, r"^\./etc/imbridge/[a-z]+\.example\.yaml$")
        with tempfile.TemporaryDirectory() as root:
            run("dpkg-deb", "--extract", self.deb, root)
            for binary in BINARIES:
                sections = run("readelf", "-S", "-W",
                               os.path.join(root, "usr/bin", binary)).stdout
                self.assertNotIn(".debug_info", sections, binary)
                self.assertNotIn(".symtab", sections, binary)

    def test_2_install_remove_purge(self):
        run("dpkg", "--install", self.deb)
        self.assertEqual(package_state(), "installed")

        # The system user and its state directory.
        user = pwd.getpwnam("imbridge")
        self.assertLess(user.pw_uid, 1000)
        self.assertEqual(user.pw_shell, "/usr/sbin/nologin")
        self.assertEqual(grp.getgrgid(user.pw_gid).gr_name, "imbridge")
        st = os.stat("/var/lib/imbridge")
        self.assertEqual(st.st_uid, user.pw_uid)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o700)

        # Examples, not live configs; generated root-only tokens.
        for example in EXAMPLES:
            self.assertTrue(os.path.isfile(
                "/etc/imbridge/%s.example.yaml" % example))
            self.assertFalse(os.path.exists("/etc/imbridge/%s.yaml" % example))
        st = os.stat("/etc/imbridge/credentials")
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (0, 0o700))
        for token in ("admin-token", "adapter-token"):
            path = "/etc/imbridge/credentials/" + token
            st = os.stat(path)
            self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (0, 0o600))
            with open(path) as f:
                self.assertGreaterEqual(len(f.read().strip()), 32)

        # The shipped examples check as written, with no environment at all.
        for binary, example in (("imbridge-router", "router"),
                                ("imbridge-adapter-webhook", "webhook")):
            result = run("/usr/bin/" + binary, "--config",
                         "/etc/imbridge/%s.example.yaml" % example,
                         "--check-config", env={})
            self.assertIn("OK", result.stdout + result.stderr)

        # Every installed unit names the installed binary and passes
        # systemd-analyze verify.
        units = ["/usr/lib/systemd/system/%s.service" % u for u in UNITS]
        for unit, name in zip(units, UNITS):
            with open(unit) as f:
                text = f.read()
            self.assertIn("ExecStart=/usr/bin/%s --config /etc/imbridge/" % name,
                          text)
            settings = [l for l in text.splitlines() if not l.startswith("#")]
            self.assertNotIn("/usr/local/", "\n".join(settings))
        with open(units[0]) as f:
            self.assertIn("\nUser=imbridge\n", f.read())
        result = run("systemd-analyze", "verify", "--man=no", *units,
                     check=False)
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 0, output)
        self.assertNotIn("imbridge", output)

        # Remove: binaries gone, data, tokens and user kept.
        marker = "/var/lib/imbridge/imbridge.db"
        with open(marker, "w") as f:
            f.write("data\n")
        run("dpkg", "--remove", "imbridge")
        self.assertEqual(package_state(), "config-files")
        self.assertFalse(os.path.exists("/usr/bin/imbridge-router"))
        self.assertFalse(os.path.exists(units[0]))
        self.assertTrue(os.path.isfile(marker))
        self.assertTrue(os.path.isfile("/etc/imbridge/credentials/admin-token"))
        self.assertTrue(user_exists("imbridge"))

        # Purge: data, generated tokens, configs and the user gone.
        run("dpkg", "--purge", "imbridge")
        self.assertEqual(package_state(), "")
        self.assertFalse(os.path.exists("/var/lib/imbridge"))
        self.assertFalse(os.path.exists("/etc/imbridge"))
        self.assertFalse(user_exists("imbridge"))


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("SKIP: dpkg -i needs root")
        sys.exit(77)
    if package_state():
        print("SKIP: an imbridge package is already installed here (%s); "
              "the test does not replace it" % package_state())
        sys.exit(77)
    unittest.main(verbosity=2)
