"""Several processes on one mount at once: rename-over atomicity seen by a concurrent reader,
readdir during concurrent creates and unlinks,
concurrent O_APPEND writers (no lost or torn lines), and parallel writers of distinct files.

All workers are separate Python processes (no GIL in common with the test); results are checked
both through the page cache and, after a remount, from the daemon's store.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time

import pytest
from fusehelp import run

pytestmark = pytest.mark.fuse

READER = r"""
import json, os, sys
target, stop = sys.argv[1], sys.argv[2]
stats = {"reads": 0, "missing": 0, "bad": [], "versions": set(), "backwards": 0}
last = -1
while True:
    done = os.path.exists(stop)          # one last read after the writer finished
    try:
        with open(target, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        stats["missing"] += 1
        data = None
    if data is not None:
        stats["reads"] += 1
        lines = data.split(b"\n")
        head = lines[0]
        ok = (head.startswith(b"version ") and data == (head + b"\n") * (len(lines) - 1)
              and len(lines) - 1 == 100 + int(head.split()[1]) % 50)
        if ok:
            v = int(head.split()[1])
            stats["versions"].add(v)
            stats["backwards"] += v < last      # an older version after a newer one
            last = max(last, v)
        elif len(stats["bad"]) < 5:
            stats["bad"].append(data[:80].decode(errors="replace") + f"... ({len(data)} bytes)")
    if done:
        break
stats["versions"] = sorted(stats["versions"])
print(json.dumps(stats))
"""

RENAMER = r"""
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(1, n + 1):
    tmp = os.path.join(d, f".target.tmp{i}")
    with open(tmp, "wb") as f:
        f.write(b"version %d\n" % i * (100 + i % 50))
    os.rename(tmp, os.path.join(d, "target"))
"""


def test_rename_over_is_atomic_for_a_concurrent_reader(work, tmp_path):
    (work / "target").write_bytes(b"version 0\n" * 100)
    stop = tmp_path / "stop"
    readers = [subprocess.Popen([sys.executable, "-c", READER, str(work / "target"), str(stop)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    try:
        w = run([sys.executable, "-c", RENAMER, str(work), "200"], timeout=120)
        assert w.returncode == 0
    finally:
        stop.touch()
        outs = [r.communicate(timeout=60) for r in readers]
    for (out, err), r in zip(outs, readers):
        assert r.returncode == 0, err
        stats = json.loads(out)
        assert stats["missing"] == 0, f"the target vanished {stats['missing']} times"
        assert stats["bad"] == [], f"torn or mixed content: {stats['bad']}"
        assert stats["reads"] > 0 and stats["versions"][-1] == 200, stats["versions"][-5:]
        assert stats["backwards"] == 0, "a reader saw an older version after a newer one"
        print(f"reader: {stats['reads']} reads, {len(stats['versions'])} versions seen")
    assert sorted(p.name for p in work.iterdir()) == ["target"]
    assert (work / "target").read_bytes() == b"version 200\n" * 100


APPENDER = r"""
import os, sys
path, w, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
for i in range(n):
    line = b"w%d:%05d:%s\n" % (w, i, b"abcdefghij"[w % 10:w % 10 + 1] * (1 + (i * 7 + w) % 150))
    assert os.write(fd, line) == len(line)
os.close(fd)
"""


def expected_line(w: int, i: int) -> bytes:
    return b"w%d:%05d:%s\n" % (w, i, b"abcdefghij"[w % 10:w % 10 + 1] * (1 + (i * 7 + w) % 150))


def check_appended(data: bytes, writers: int, lines: int) -> None:
    got = data.split(b"\n")
    assert got[-1] == b"", "the file does not end with a newline"
    seen = set()
    pattern = re.compile(rb"w(\d+):(\d{5}):([a-j]+)")
    for n, line in enumerate(got[:-1]):
        m = pattern.fullmatch(line)
        assert m, f"torn line {n}: {line[:100]!r}"
        w, i = int(m.group(1)), int(m.group(2))
        assert line + b"\n" == expected_line(w, i), f"corrupted line {n}: {line[:100]!r}"
        assert (w, i) not in seen, f"line {w}:{i} appears twice"
        seen.add((w, i))
    assert len(seen) == writers * lines, f"{writers * lines - len(seen)} lines missing"
    assert len(data) == sum(len(expected_line(w, i)) for w in range(writers) for i in range(lines))


def test_concurrent_o_append_writers_lose_and_tear_nothing(work, mount):
    log = work / "shared.log"
    procs = [subprocess.Popen([sys.executable, "-c", APPENDER, str(log), str(w), "2000"],
                              stderr=subprocess.PIPE, text=True) for w in range(4)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    check_appended(log.read_bytes(), 4, 2000)
    # each writer's own lines stay in its order
    data = log.read_bytes()
    for w in range(4):
        mine = [int(x) for x in re.findall(rb"^w%d:(\d{5}):" % w, data, re.M)]
        assert mine == list(range(2000))
    digest = hashlib.sha256(data).hexdigest()
    mount.remount()                                       # what the daemon stored, not the cache
    assert hashlib.sha256(log.read_bytes()).hexdigest() == digest


WRITER = r"""
import hashlib, os, sys, random
d, w = sys.argv[1], int(sys.argv[2])
rnd = random.Random(w)
out = {}
for i in range(40):
    data = rnd.randbytes(rnd.choice([10, 5000, 70_000, 400_000]))
    p = os.path.join(d, f"w{w}-{i}")
    with open(p, "wb") as f:
        for off in range(0, len(data), 8192):
            f.write(data[off:off + 8192])
    out[p] = hashlib.sha256(data).hexdigest()
print(repr(out))
"""


def test_parallel_writers_of_distinct_files(work, mount):
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(work), str(w)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for w in range(4)]
    expected = {}
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        expected.update(eval(out))
    assert len(expected) == 160

    def check():
        for path, digest in expected.items():
            with open(path, "rb") as f:
                assert hashlib.sha256(f.read()).hexdigest() == digest, path
    check()
    mount.remount()
    check()


CHURN = r"""
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    os.unlink(os.path.join(d, f"churn{i:05d}"))
    open(os.path.join(d, f"new{i:05d}"), "w").close()
"""


def test_listing_a_directory_while_others_change_it(work):
    """readdir during concurrent unlinks and creates: an entry that exists throughout is listed
    exactly once in every listing, and no name is ever listed twice."""
    d = work / "big"
    d.mkdir()
    for i in range(800):
        (d / f"keep{i:05d}").touch()
        (d / f"churn{i:05d}").touch()
    churn = subprocess.Popen([sys.executable, "-c", CHURN, str(d), "800"],
                             stderr=subprocess.PIPE, text=True)
    listings = 0
    try:
        while churn.poll() is None or listings == 0:
            names = [e.name for e in os.scandir(d)]
            assert len(names) == len(set(names)), "a name was listed twice"
            assert sum(n.startswith("keep") for n in names) == 800, "a stable entry was missed"
            listings += 1
            time.sleep(0.02)                    # leave the churner room to work
    finally:
        _, err = churn.communicate(timeout=120)
    assert churn.returncode == 0, err
    names = sorted(os.listdir(d))
    assert names == sorted([f"keep{i:05d}" for i in range(800)] +
                           [f"new{i:05d}" for i in range(800)])
    assert listings > 1
