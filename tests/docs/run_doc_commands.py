#!/usr/bin/env python3
"""Runs the shell commands of the README and the guides as a reader pastes them.

Convention (for everyone who writes docs here):

- Every fenced block opened with ```sh in README.md, examples/*/README.md
  and examples/guides/*.md is run. Other fences (```cpp, ```json, a bare
  ```) are not shell and are not run.
- The ```sh blocks of one file run in order in one bash process, as if pasted
  one after the other into one terminal at the source tree's root, with
  `set -euo pipefail`: every command must succeed (a command a reader would
  see fail is a broken doc). Background servers a file starts must be stopped
  by its own last block (`kill $(jobs -p); wait`); whatever is left is killed.
- A block directly preceded by a line `<!-- doc-test: skip: REASON -->` is not
  run; REASON says why (it needs root, runs for minutes, or is a template
  whose placeholders — DIR, `...`, 10.0.0.x machines — the reader fills in).
- Lines `<!-- doc-test: expect: TEXT -->` anywhere in a file: once its blocks
  ran, their output must contain each TEXT.

The commands run with the working directory a scratch directory that holds a
symbolic link to every entry of the source tree's root and `build` (the build
tree under test), and TMPDIR inside the scratch directory, so `mktemp -d` and
`$TMPDIR` stay in it. Exit status 0 when every file passed.

usage: run_doc_commands.py SOURCE_DIR BUILD_DIR [FILE ...]
"""
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SKIP = re.compile(r"^<!-- doc-test: skip: (.+?) -->\s*$")
EXPECT = re.compile(r"^<!-- doc-test: expect: (.+?) -->\s*$")
FILE_TIMEOUT_S = 180


def blocks_of(path):
    """(runnable blocks, skipped (line, reason), expectations) of one markdown file."""
    lines = open(path, encoding="utf-8").read().split("\n")
    run, skipped, expect = [], [], []
    i = 0
    while i < len(lines):
        line = lines[i]
        m = EXPECT.match(line.strip())
        if m:
            expect.append(m.group(1))
        fence = line.strip()
        if fence.startswith("```"):
            indent = line[: len(line) - len(line.lstrip())]
            body = []
            j = i + 1
            while j < len(lines) and lines[j].strip() != "```":
                body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
                j += 1
            if fence == "```sh":
                prev = lines[i - 1].strip() if i > 0 else ""
                s = SKIP.match(prev)
                if s:
                    skipped.append((i + 1, s.group(1)))
                else:
                    run.append((i + 1, "\n".join(body)))
            i = j + 1
            continue
        i += 1
    return run, skipped, expect


def scratch_dir(source, build):
    d = tempfile.mkdtemp(prefix="raftkit-doc-")
    for name in os.listdir(source):
        if name in ("build", ".git"):
            continue
        os.symlink(os.path.join(source, name), os.path.join(d, name))
    os.symlink(build, os.path.join(d, "build"))
    os.mkdir(os.path.join(d, "tmp"))
    return d


def kill_group(proc):
    """SIGTERM to what the file left running, SIGKILL after 10 s; waits for it."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)  # polling the group's exit, bounded
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_file(path, source, build):
    rel = os.path.relpath(path, source)
    run, skipped, expect = blocks_of(path)
    for line, reason in skipped:
        print(f"{rel}:{line}: skipped: {reason}")
    if not run:
        return True
    d = scratch_dir(source, build)
    script = "set -euo pipefail\n" + "\n".join(
        f"echo '>>> {rel}:{line}'\n{body}" for line, body in run)
    env = dict(os.environ, TMPDIR=os.path.join(d, "tmp"))
    # Output to a file, not a pipe: servers left in the background keep a
    # pipe open, and the file's end is bash's end, not theirs.
    log_path = os.path.join(d, "output.log")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(["bash", "-c", script], cwd=d, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            proc.wait(timeout=FILE_TIMEOUT_S)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
        kill_group(proc)
        proc.wait()
    out = open(log_path, encoding="utf-8", errors="replace").read()
    ok = proc.returncode == 0 and not timed_out
    missing = [e for e in expect if e not in out]
    ok = ok and not missing
    print(f"{rel}: {len(run)} blocks run, {'passed' if ok else 'FAILED'}")
    if not ok:
        print(out)
        if timed_out:
            print(f"{rel}: not done within {FILE_TIMEOUT_S} s")
        else:
            print(f"{rel}: exit status {proc.returncode}")
        for e in missing:
            print(f"{rel}: expected in the output: {e}")
    shutil.rmtree(d, ignore_errors=True)
    return ok


def main():
    source, build = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    files = sys.argv[3:] or (
        [os.path.join(source, "README.md")]
        + sorted(glob.glob(os.path.join(source, "examples", "*", "README.md")))
        + sorted(glob.glob(os.path.join(source, "examples", "guides", "*.md"))))
    results = [run_file(os.path.abspath(f), source, build) for f in files]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
