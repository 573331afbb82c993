"""The Debian packages `make deb` built (in $DEB_DIR): what each holds, how fived's
scripts make its account and directories, that lintian finds no error, and that
libfive-dev's pkg-config file builds a program against libfive0."""

import glob
import os
import shutil
import subprocess

import pytest

DEB_DIR = os.environ.get("DEB_DIR", os.path.join(os.path.dirname(__file__), "../../build/deb"))
VERSION = "0.1.0"
ARCH = subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                      text=True).stdout.strip()
MULTIARCH = subprocess.run(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"], capture_output=True,
                           text=True).stdout.strip()

EXPECTED = {
    "fived": ["etc/fived/fived.conf", "etc/logrotate.d/fived", "etc/pam.d/fived",
              "lib/systemd/system/fived.service", "lib/systemd/system/fived.socket",
              "usr/sbin/fived", "usr/sbin/fivectl", "usr/share/man/man5/fived.conf.5.gz",
              "usr/share/man/man8/fived.8.gz", "usr/share/man/man8/fivectl.8.gz"],
    "five": ["usr/bin/five", "usr/lib/%s/five/libfive-shim.so" % MULTIARCH,
             "usr/lib/%s/five/five-gateway" % MULTIARCH, "usr/share/man/man8/five-gateway.8.gz",
             "usr/share/man/man1/five.1.gz", "usr/lib/systemd/user/five-agent.service",
             "usr/lib/systemd/user/five-agent.socket"],
    "libfive0": ["usr/lib/%s/libfive.so.0" % MULTIARCH],
    "libfive-dev": ["usr/include/five.h", "usr/lib/%s/libfive.a" % MULTIARCH,
                    "usr/lib/%s/libfive.so" % MULTIARCH,
                    "usr/lib/%s/pkgconfig/libfive.pc" % MULTIARCH],
}


def deb(name):
    path = os.path.join(DEB_DIR, "%s_%s_%s.deb" % (name, VERSION, ARCH))
    assert os.path.exists(path), "not built: " + path
    return path


def files(name):
    out = subprocess.run(["dpkg-deb", "-c", deb(name)], capture_output=True, text=True,
                         check=True).stdout
    return {line.split()[5].lstrip("./") for line in out.splitlines()
            if not line.startswith("d")}


def control(name, field):
    return subprocess.run(["dpkg-deb", "-f", deb(name), field], capture_output=True,
                          text=True, check=True).stdout.strip()


def script(name, which, tmp_path):
    subprocess.run(["dpkg-deb", "-e", deb(name), str(tmp_path / "ctl")], check=True)
    return (tmp_path / "ctl" / which).read_text()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_contents(name):
    doc = {"usr/share/doc/%s/%s" % (name, f) for f in ("copyright", "changelog.gz")}
    assert files(name) == set(EXPECTED[name]) | doc


def test_fived_conffiles_and_depends(tmp_path):
    conffiles = script("fived", "conffiles", tmp_path).split()
    assert {"/etc/fived/fived.conf", "/etc/pam.d/fived",
            "/etc/logrotate.d/fived"} <= set(conffiles)
    depends = control("fived", "Depends")
    assert "libsystemd0" in depends and "adduser" in depends
    # The client and the library do not link libsystemd or libseccomp.
    for name in ("five", "libfive0"):
        assert "libsystemd" not in control(name, "Depends")
        assert "libseccomp" not in control(name, "Depends")


def test_postinst_makes_account_and_directories(tmp_path):
    text = script("fived", "postinst", tmp_path)
    assert "adduser --quiet --system --group --no-create-home --home /nonexistent" in text
    assert "install -d -m 0700 -o root -g root /var/lib/fived" in text
    assert "install -d -m 0750 -o root -g adm /var/log/fived" in text
    # The account exists before debhelper's part enables and starts the service.
    assert text.index("adduser") < text.index("deb-systemd-helper")
    # The socket unit is installed but enabled only by the administrator (its
    # addresses must match listen entries): upgrades keep it enabled if it was.
    assert "enable 'fived.service'" in text
    socket = text[text.index("debian-installed 'fived.socket'"):]
    assert socket.index("was-enabled 'fived.socket'") < socket.index("enable 'fived.socket'")


def test_packaged_configuration_checks(tmp_path):
    """The shipped configuration passes fived -t, the audit log moved into the test's
    directory (there is no /var/log/fived outside an installed package)."""
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", deb("fived"), str(root)], check=True)
    conf = (root / "etc/fived/fived.conf").read_text()
    assert "listen = tcp:127.0.0.1:1\n" in conf and "log = journal\n" in conf
    (tmp_path / "fived.conf").write_text(
        conf.replace("/var/log/fived/audit.log", str(tmp_path / "audit.log")))
    r = subprocess.run([str(root / "usr/sbin/fived"), "-t", "-c", str(tmp_path / "fived.conf")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_pkg_config_builds_against_the_library(tmp_path):
    root = tmp_path / "root"
    for name in ("libfive0", "libfive-dev"):
        subprocess.run(["dpkg-deb", "-x", deb(name), str(root)], check=True)
    env = dict(os.environ, PKG_CONFIG_SYSROOT_DIR=str(root),
               PKG_CONFIG_PATH=str(root / "usr/lib" / MULTIARCH / "pkgconfig"))
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libfive"], env=env,
                           capture_output=True, text=True, check=True).stdout.split()
    (tmp_path / "app.c").write_text(
        '#include <five.h>\nint main(void) { return five_connect == 0; }\n')
    subprocess.run(["cc", "-o", str(tmp_path / "app"), str(tmp_path / "app.c")] + flags,
                   check=True)
    r = subprocess.run([str(tmp_path / "app")], env=dict(
        os.environ, LD_LIBRARY_PATH=str(root / "usr/lib" / MULTIARCH)))
    assert r.returncode == 0


@pytest.mark.skipif(shutil.which("lintian") is None, reason="lintian missing")
def test_lintian_finds_no_error():
    changes = glob.glob(os.path.join(DEB_DIR, "fived_%s_%s.changes" % (VERSION, ARCH)))
    assert changes
    r = subprocess.run(["lintian", "--fail-on", "error", changes[0]], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
