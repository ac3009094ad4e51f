"""kill -9 of the daemon under a mixed write load, 20 rounds on one store.

Each round mounts over the dead mount point the previous round left (the next mount recovers
it), runs a load process for a random fraction of a second, and kills the daemon with SIGKILL
at that moment: mid-write, mid-commit, mid-fsync or idle. The load writes small and large
files (some big enough to be stored while still being written), appends to a log file,
renames, truncates, unlinks and makes directories; after each fsync returns it records what
the file then held in a journal outside the mount (itself fsynced). After every kill the store
must pass fsck as it lies (no repair), the remount must succeed, everything fsynced in that
round must read back intact (and still be there, by size, for earlier rounds), and fsck
must pass again on the recovered store (references; chunk data too every fifth round); at the end
every fsynced byte of all rounds is compared, and the fixture's unmount and full fsck close.

(tests/fuse/test_crash.py is the single long round; this is the repeated short one.)
"""
from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from fusehelp import NEXUS, run, sha256_file, wait_gone
from opshelp import wait_for

from nexusfs import config, runtime
from nexusfs.check import check

pytestmark = pytest.mark.fuse

ROUNDS = 20

LOAD = r"""
import hashlib, os, random, sys
mnt, journal, tag, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rnd = random.Random(seed)
jfd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
def vouch(kind, path, data):
    os.write(jfd, f"{kind}\t{path}\t{len(data)}\t{hashlib.sha256(data).hexdigest()}\n".encode())
    os.fsync(jfd)
i = 0
log_path = os.path.join(mnt, f"{tag}.log")
log_data = b""
try:
    lfd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    print("started", flush=True)
    while True:
        d = os.path.join(mnt, f"d{i % 5}")
        os.makedirs(d, exist_ok=True)
        op = i % 10
        if op == 9:                                   # append to the log, fsync every other
            line = f"{tag} line {i} ".encode() * rnd.randrange(1, 200) + b"\n"
            os.write(lfd, line)
            log_data += line
            if i % 20 == 9:
                os.fsync(lfd)
                vouch("prefix", log_path, log_data)
            i += 1
            continue
        size = rnd.choice([0, 100, 4000, 20_000, 70_000, 250_000])
        if op == 4 and i % 20 == 4:
            size = 9 * 1024 * 1024 + rnd.randrange(1 << 20)     # streamed while written
        data = rnd.randbytes(size // 2) + bytes(size - size // 2)   # half random, half zeros
        path = os.path.join(d, f"{tag}-{i:04d}")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        for off in range(0, size, 131072):
            os.write(fd, data[off:off + 131072])
        if op in (0, 3, 4, 6):
            if op == 6 and size > 10:                 # shrink, then vouch for what is left
                os.ftruncate(fd, size // 3)
                data = data[:size // 3]
            os.fsync(fd)
            os.close(fd)
            vouch("file", path, data)
        else:
            os.close(fd)
            if op == 1:
                os.rename(path, path + ".moved")
            elif op == 2 and i > 12:
                old = os.path.join(mnt, f"d{(i - 10) % 5}", f"{tag}-{i - 10:04d}.moved")
                if os.path.exists(old):
                    os.unlink(old)
            elif op == 5:
                os.makedirs(os.path.join(d, f"sub{i}"), exist_ok=True)
        i += 1
except OSError as e:                                  # the daemon is gone
    print(f"stopped after {i}: {e}", flush=True)
"""


def journal(path) -> list[tuple[str, str, int, str]]:
    out = []
    with open(path) as f:
        for line in f:
            if line.endswith("\n"):
                kind, p, size, digest = line.rstrip("\n").split("\t")
                out.append((kind, p, int(size), digest))
    return out


def intact(kind: str, path: str, size: int, digest: str, full: bool) -> str | None:
    try:
        actual = os.path.getsize(path)
        if kind == "file" and actual != size or kind == "prefix" and actual < size:
            return f"{path}: {actual} bytes, {size} fsynced"
        if full:
            with open(path, "rb") as f:
                data = f.read(size)
            if hashlib.sha256(data).hexdigest() != digest:
                return f"{path}: content differs"
    except OSError as e:
        return f"{path}: {e}"
    return None


def test_kill_9_under_load_20_rounds(new_mount, tmp_path):
    m = new_mount()
    cfg = config.load(m.data)
    rnd = random.Random(2026)
    vouched: list = []
    timings = []
    for n in range(ROUNDS):
        t0 = time.monotonic()
        jpath = tmp_path / f"journal-{n}"
        jpath.touch()
        load = subprocess.Popen([sys.executable, "-c", LOAD, str(m.mnt), str(jpath), f"r{n}",
                                 str(n)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        try:
            assert load.stdout.readline().strip() == "started", load.communicate()
            time.sleep(rnd.uniform(0.15, 0.9))
            pid = runtime.read_registry(str(m.mnt))["pid"]
            os.kill(pid, signal.SIGKILL)
            assert wait_gone(pid, 20), f"daemon {pid} survived SIGKILL"
            out, err = load.communicate(timeout=30)
        finally:
            if load.poll() is None:
                load.kill()
                load.wait()
        assert load.returncode == 0 and "stopped after" in out, out + err
        entries = journal(jpath)

        # the store as the crash left it: consistent without any repair
        problems = check(cfg, verify_data=(n % 5 == 4))
        assert not problems, f"round {n}: fsck after kill -9: {problems[:10]}"

        # the next mount takes the dead mount point over
        r = run([NEXUS, "mount", str(m.mnt), "--data-dir", str(m.data), "-o", "allow_other"],
                check=False, timeout=60)
        assert r.returncode == 0 and m.is_mounted(), f"round {n}: remount: {r.stderr}\n{m.log_tail()}"
        bad = [b for e in entries if (b := intact(*e, full=True))]
        bad += [b for e in vouched if (b := intact(*e, full=False))]
        assert not bad, f"round {n}: {len(bad)} fsynced files damaged: {bad[:5]}"
        problems = check(cfg, verify_data=False)          # and as the remount recovered it
        assert not problems, f"round {n}: fsck after the remount: {problems[:10]}"
        vouched += entries              # nothing the load vouched for is touched again
        timings.append((len(entries), out.strip().split(":")[0], time.monotonic() - t0))

    # every fsynced byte of every round, and the store in use still works
    bad = [b for e in vouched if (b := intact(*e, full=True))]
    assert not bad, f"{len(bad)} fsynced files damaged: {bad[:5]}"
    assert len(vouched) >= ROUNDS * 2, f"the load vouched for too little: {timings}"
    (m.mnt / "after").write_bytes(b"alive\n" * 1000)
    problems = check(cfg, verify_data=True)
    assert not problems, problems[:10]
    print(f"{ROUNDS} rounds: {sum(t[2] for t in timings):.1f} s, "
          f"{sum(t[0] for t in timings)} fsynced records; per round: "
          + ", ".join(f"{t[2]:.1f}s/{t[0]}" for t in timings))
    wait_for(lambda: (m.mnt / "after").stat().st_size == 6000, 5, "the last write")
    assert sha256_file(m.mnt / "after") == hashlib.sha256(b"alive\n" * 1000).hexdigest()
