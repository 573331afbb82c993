"""A small world of users for authentication tests: Unix users and groups
(nss_wrapper), a PAM service (pam_wrapper with pam_matrix), OpenSSH keys
made with ssh-keygen, an askpass program.  fived runs with the wrappers
preloaded, so no account of the machine is touched."""

import os
import socket
import subprocess

LIB = "/usr/lib/x86_64-linux-gnu"
PAM_WRAPPER = LIB + "/libpam_wrapper.so"
NSS_WRAPPER = LIB + "/libnss_wrapper.so"
PAM_MATRIX = LIB + "/pam_wrapper/pam_matrix.so"

USERS = {
    # name: (uid, password, groups)
    "alice": (2001, "wonderland", ["staff", "voters"]),
    "bob": (2002, "builder", ["staff"]),
    "carol": (2003, "c4rol", []),
}
GROUPS = {"staff": 3001, "voters": 3002}


class World:
    def __init__(self, root):
        self.root = root
        self.home = root / "home"
        self.keys = {}
        passwd = ["root:x:0:0:root:/root:/bin/sh",
                  "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
                  "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin"]
        group = ["root:x:0:", "daemon:x:1:", "nogroup:x:65534:"]
        for name, (uid, _, _) in USERS.items():
            home = self.home / name
            (home / ".ssh").mkdir(parents=True)
            passwd.append("%s:x:%d:%d:%s:%s:/bin/sh" % (name, uid, uid, name, home))
            group.append("%s:x:%d:" % (name, uid))
        for g, gid in GROUPS.items():
            members = [n for n, (_, _, gs) in USERS.items() if g in gs]
            group.append("%s:x:%d:%s" % (g, gid, ",".join(members)))
        (root / "passwd").write_text("\n".join(passwd) + "\n")
        (root / "group").write_text("\n".join(group) + "\n")
        (root / "passdb").write_text(
            "".join("%s:%s:fived\n" % (n, pw) for n, (_, pw, _) in USERS.items()))
        pam = root / "pam.d"
        pam.mkdir()
        (pam / "fived").write_text(
            "auth required %s passdb=%s\naccount required %s passdb=%s\n"
            % (PAM_MATRIX, root / "passdb", PAM_MATRIX, root / "passdb"))
        askpass = root / "askpass"
        askpass.write_text("#!/bin/sh\nprintf '%s\\n' \"$FIVE_TEST_PASSWORD\"\n")
        askpass.chmod(0o755)
        self.askpass = str(askpass)
        for name in USERS:
            self.keys[name] = self.make_key(name)

    def make_key(self, name):
        path = self.root / ("key-" + name)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f",
                        str(path)], check=True)
        return path

    def public(self, name):
        return (self.root / ("key-" + name + ".pub")).read_text().strip()

    def fingerprint(self, name):
        out = subprocess.run(["ssh-keygen", "-lf", str(self.keys[name]) + ".pub"],
                             capture_output=True, text=True, check=True).stdout
        return out.split()[1]

    def global_keys(self, lines):
        """Writes the global authorized_keys file; returns its path."""
        path = self.root / "authorized_keys"
        path.write_text("".join(line + "\n" for line in lines))
        path.chmod(0o644)
        return path

    def fived_env(self):
        env = dict(os.environ)
        env.update(LD_PRELOAD="%s %s" % (PAM_WRAPPER, NSS_WRAPPER), PAM_WRAPPER="1",
                   PAM_WRAPPER_SERVICE_DIR=str(self.root / "pam.d"),
                   NSS_WRAPPER_PASSWD=str(self.root / "passwd"),
                   NSS_WRAPPER_GROUP=str(self.root / "group"),
                   # fived asks for the host's name (its provider name, section 13):
                   # nss_wrapper answers it, rather than reaching libc's through a
                   # dlopen the sanitizers' runtime refuses.
                   NSS_WRAPPER_HOSTNAME=socket.gethostname(),
                   ASAN_OPTIONS="verify_asan_link_order=0")
        return env

    def client_env(self, password=None, agent=None):
        env = dict(os.environ, FIVE_ASKPASS=self.askpass, HOME=str(self.root / "nohome"))
        env.pop("SSH_AUTH_SOCK", None)
        if password is not None:
            env["FIVE_TEST_PASSWORD"] = password
        if agent is not None:
            env["SSH_AUTH_SOCK"] = agent
        return env
