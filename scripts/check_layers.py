#!/usr/bin/env python3
"""Fails when a file includes a part of the tree its part may not depend on.

Dependencies point down the layers (README.md, "Layout"):

    base  <-  kernels  <-  engine  <-  worker
      ^                      ^            |
      +------ common  <------+            v
                 ^        proto  <-  coordinator  <-  cli

`ALLOWED` below is the table: a file under a key may include files under the
listed parts (and its own). Generated protocol headers ("tessera/v1/...",
"grpc/health/...") count as proto. tests/ may include anything; bench/ and
testing/ (the shared test and benchmark harness) anything but tests/. Only
tests/ and testing/ may include GoogleTest or Google Benchmark headers.
Run by scripts/test.sh; exits 1 listing every offending include.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARTS = ["base", "kernels", "common", "engine", "proto", "worker", "coordinator", "cli",
         "bench", "testing", "tests"]
ALLOWED = {
    "base": set(),
    "kernels": {"base"},
    "common": {"base"},
    "engine": {"base", "kernels", "common"},
    "proto": {"base", "common"},
    "worker": {"base", "kernels", "common", "engine", "proto"},
    "coordinator": {"base", "common", "proto"},
    "cli": {"base", "kernels", "common", "engine", "proto", "coordinator"},
    "testing": {"base", "kernels", "common", "engine", "proto", "worker", "coordinator", "cli"},
    "bench": {"base", "kernels", "common", "engine", "proto", "worker", "coordinator", "cli",
              "testing"},
    "tests": set(PARTS),
}
INCLUDE = re.compile(r'^\s*#\s*include\s+[<"]([^">]+)[">]')
# Test frameworks: only tests/ and the harness may see them.
TEST_ONLY = ("gtest/", "gmock/", "benchmark/")
SOURCES = (".h", ".cc", ".cu", ".cuh")


def part_of_include(path):
    first = path.split("/", 1)[0]
    if first in ("tessera", "grpc"):
        return "proto"
    return first if first in ALLOWED else None


def main():
    bad = []
    for part in PARTS:
        top = os.path.join(ROOT, part)
        for dirpath, _, files in os.walk(top):
            for name in files:
                if not name.endswith(SOURCES):
                    continue
                path = os.path.join(dirpath, name)
                with open(path, encoding="utf-8", errors="replace") as f:
                    for number, line in enumerate(f, 1):
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        if m.group(1).startswith(TEST_ONLY) and part not in ("tests", "testing"):
                            bad.append("%s:%d: %s may not include the test framework (%s)" %
                                       (os.path.relpath(path, ROOT), number, part, m.group(1)))
                            continue
                        target = part_of_include(m.group(1))
                        if target is None or target == part or target in ALLOWED[part]:
                            continue
                        bad.append("%s:%d: %s may not include %s (%s)" %
                                   (os.path.relpath(path, ROOT), number, part, m.group(1), target))
    for b in bad:
        print(b)
    if bad:
        print("check_layers: %d include(s) point the wrong way; see the table in %s" %
              (len(bad), os.path.relpath(__file__, ROOT)))
        return 1
    print("check_layers: every include points down the layers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
