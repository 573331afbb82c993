"""What libfive shows of itself: include/five.h's functions, and nothing else."""

import os
import re
import subprocess

from conftest import BUILD, HELPERS, SANITIZED, SLOW

ROOT = os.path.join(os.path.dirname(__file__), "../..")
CONFIG = """
[service:echo]
backend = builtin:echo
"""


def header_names():
    with open(os.path.join(ROOT, "include/five.h"), encoding="utf-8") as f:
        return set(re.findall(r"^FIVE_EXPORT [^(]*?\b(five_\w+)\(", f.read(), re.M))


def map_names():
    with open(os.path.join(ROOT, "src/client/libfive.map"), encoding="utf-8") as f:
        text = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
    block = text.split("global:")[1].split("local:")[0]
    return set(re.findall(r"(\w+);", block))


def defined(*nm_args):
    """Defined global names, as nm -P prints them (NAME TYPE ...), the version node left out."""
    out = subprocess.run(["nm", "-P", *nm_args], capture_output=True, text=True,
                         check=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1] not in ("U", "w", "v", "A") and not parts[0].endswith(":"):
            names.add(parts[0].split("@")[0])
    return names


def test_the_version_script_lists_what_five_h_declares():
    assert header_names() and map_names() == header_names()


def test_libfive_so_exports_exactly_the_version_script():
    assert defined("-D", "--defined-only", os.path.join(BUILD, "libfive.so")) == map_names()


def test_libfive_a_has_only_the_public_names_global():
    assert defined("-g", "--defined-only", os.path.join(BUILD, "libfive.a")) == header_names()


def test_an_application_with_names_of_libfives_own(fived):
    """libfive_collide defines buf_init, log_init and str_copy, and links libfive.a."""
    f = fived(CONFIG)
    r = subprocess.run([os.path.join(HELPERS, "libfive_collide"), "127.0.0.1", str(f.port),
                        "echo", "through libfive"], capture_output=True, timeout=10 * SLOW)
    assert r.stdout == b"42 the application's log THROUGH LIBFIVE\nthrough libfive", r.stderr


def test_a_program_linked_against_build_runs_from_it(tmp_path):
    """build/libfive.so links to build/libfive.so.0, the library under its SONAME: a program
    linked with -Lbuild -lfive runs with LD_LIBRARY_PATH=build, before make install."""
    assert os.readlink(os.path.join(BUILD, "libfive.so")) == "libfive.so.0"
    soname = subprocess.run(["readelf", "-d", os.path.join(BUILD, "libfive.so.0")],
                            capture_output=True, text=True, check=True).stdout
    assert "Library soname: [libfive.so.0]" in soname
    source = tmp_path / "app.c"
    source.write_text('#include <stdio.h>\n#include "five.h"\n'
                      'int main(void) { puts(five_step_name(FIVE_ERR_TRUST)); return 0; }\n')
    app = tmp_path / "app"
    # A sanitized libfive needs its runtime linked into the program, as the build links it.
    sanitize = ["-fsanitize=address,undefined"] if SANITIZED else []
    subprocess.run(["cc", *sanitize, "-o", str(app), str(source), "-I",
                    os.path.join(ROOT, "include"), "-L", BUILD, "-lfive"], check=True)
    r = subprocess.run([str(app)], capture_output=True, text=True,
                       env=dict(os.environ, LD_LIBRARY_PATH=BUILD))
    assert (r.returncode, r.stdout) == (0, "trust\n"), r.stderr
