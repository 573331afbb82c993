#!/usr/bin/env python3
"""Checks the source tree's layering: folders (src/common, src/server/policy,
...) may depend on each other only in one direction.

An edge A -> B is an #include in a file of A of a header in B, or a call
from an object file of A to a function defined in B (from `nm` over the
built objects, when a build directory is given).  Any cycle among folders
is an error, and so is a folder with more than MAX_C_FILES C files.

    tools/layers.py [BUILD_DIR]
"""

import os
import re
import subprocess
import sys

MAX_C_FILES = 15
SRC = "src"
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def folder_of(path):
    return os.path.dirname(os.path.relpath(path, SRC))


def sources():
    for root, _, files in os.walk(SRC):
        for name in sorted(files):
            if name.endswith((".c", ".h")):
                yield os.path.join(root, name)


def include_edges():
    edges = {}
    for path in sources():
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for target in INCLUDE.findall(text):
            dst = os.path.dirname(target)
            src = folder_of(path)
            if dst and dst != src:
                edges.setdefault((src, dst), path + " includes " + target)
    return edges


def symbols(obj):
    out = subprocess.run(["nm", "-P", obj], capture_output=True, text=True, check=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            (undefined if parts[1] == "U" else defined).add(parts[0])
    return defined, undefined


def libc_symbols():
    """What the C library defines: a call to one of these is a call to libc, even where a
    folder of ours defines the name too (libfive-shim.so's hooks interpose connect)."""
    try:
        path = subprocess.run(["cc", "-print-file-name=libc.so.6"], capture_output=True,
                              text=True, check=True).stdout.strip()
        out = subprocess.run(["nm", "-D", "--defined-only", path], capture_output=True,
                             text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return set()
    return {line.split()[-1].split("@")[0] for line in out.splitlines() if line.split()}


def call_edges(build):
    root = os.path.join(build, "obj", SRC)
    objs = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            if name.endswith(".o") and os.path.exists(
                os.path.join(SRC, os.path.relpath(dirpath, root), name[:-2] + ".c")
            ):
                objs[os.path.join(dirpath, name)] = os.path.relpath(dirpath, root)
    owner, needs = {}, []
    for obj, folder in objs.items():
        defined, undefined = symbols(obj)
        for sym in defined:
            owner[sym] = folder
        needs.append((obj, folder, undefined))
    edges = {}
    libc = libc_symbols()
    for obj, folder, undefined in needs:
        for sym in sorted(undefined - libc):
            dst = owner.get(sym)
            if dst and dst != folder:
                edges.setdefault((folder, dst), obj + " calls " + sym)
    return edges


def find_cycle(edges):
    graph = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def main():
    errors = 0
    counts = {}
    for path in sources():
        if path.endswith(".c"):
            counts[folder_of(path)] = counts.get(folder_of(path), 0) + 1
    for folder, n in sorted(counts.items()):
        if n > MAX_C_FILES:
            print(f"layers: {SRC}/{folder} has {n} C files (at most {MAX_C_FILES})")
            errors += 1
    edges = include_edges()
    if len(sys.argv) > 1:
        edges.update({k: v for k, v in call_edges(sys.argv[1]).items() if k not in edges})
    cycle = find_cycle(edges)
    if cycle:
        print("layers: folders depend on each other in a circle: " + " -> ".join(cycle))
        for a, b in zip(cycle, cycle[1:]):
            print(f"  {a} -> {b}: {edges[(a, b)]}")
        errors += 1
    if not errors:
        print(f"layers: {len(counts)} folders, {len(edges)} dependencies, no cycle")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
