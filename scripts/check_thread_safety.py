#!/usr/bin/env python3
"""Checks the lock annotations (ABSL_GUARDED_BY, ABSL_EXCLUSIVE_LOCKS_REQUIRED,
...) with clang's -Wthread-safety, which GCC ignores.

Reads the main build's compile_commands.json (scripts/build.sh exports it),
and runs each of our C++ files through `clang++ -fsyntax-only` with the same
include paths and definitions plus -Wthread-safety -Werror=thread-safety:
parsing only, no code is generated, so it costs a fraction of a build. CUDA
files and generated protocol code are skipped. Exits 1 on any finding.

Usage: scripts/check_thread_safety.py [BUILD_DIR]   (default: build/)
"""
import concurrent.futures
import json
import os
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLANG_FLAGS = ["-fsyntax-only", "-Wthread-safety", "-Werror=thread-safety",
               "-Wno-unknown-warning-option"]
# GCC flags clang does not take, and output flags that make no sense here.
DROP = {"-fno-tree-dse", "-fno-dse"}


def clang_command(entry):
    args = entry.get("arguments") or shlex.split(entry["command"])
    out = ["clang++"]
    skip = False
    for a in args[1:]:
        if skip:
            skip = False
            continue
        if a in ("-o", "-MF", "-MT", "-MQ"):
            skip = True
            continue
        if a in ("-c", "-MD", "-MMD") or a in DROP or a.startswith("-mno-") and "avx" not in a:
            continue
        out.append(a)
    return out + CLANG_FLAGS


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build")
    with open(os.path.join(build, "compile_commands.json")) as f:
        entries = json.load(f)
    jobs = []
    for e in entries:
        src = os.path.realpath(os.path.join(e["directory"], e["file"]))
        if not src.startswith(ROOT + os.sep) or not src.endswith(".cc"):
            continue
        if os.sep + "gen" + os.sep in src or src.startswith(build):
            continue
        jobs.append((src, e["directory"], clang_command(e)))
    failures = 0

    def run(job):
        src, cwd, cmd = job
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
        return src, r.returncode, r.stderr

    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for src, rc, err in pool.map(run, jobs):
            if rc != 0:
                failures += 1
                sys.stdout.write(err)
    print("check_thread_safety: %d of %d files with findings" % (failures, len(jobs)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
