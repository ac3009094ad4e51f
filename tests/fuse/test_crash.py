"""Crash safety: the daemon is killed with SIGKILL in the middle of a write load.

A load process writes files on the mount (some large enough to be stored while still being
written), holds an unlinked file open, and fsyncs every third file; after each fsync returns it
records the file's path, size and SHA-256 in a journal outside the mount (itself fsynced).
Mid-load the daemon (pid from ``nexus status --json``) gets SIGKILL. The mount point is then
left dead ("Transport endpoint is not connected"); ``nexus mount`` on the same data directory,
without any manual ``fusermount3 -u``, must detach the stale mount by itself and serve again.
Afterwards ``nexus fsck`` must be clean and every fsynced file must be intact.
"""
from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time

import pytest
from fusehelp import NEXUS, run, sha256_file, wait_gone

pytestmark = pytest.mark.fuse

LOAD = r"""
import hashlib, os, random, sys
mnt, journal = sys.argv[1], sys.argv[2]
rnd = random.Random(7)
jfd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
i = 0
try:
    # an unlinked file held open across the crash: recovery must drop it
    ghost = os.open(os.path.join(mnt, "ghost"), os.O_RDWR | os.O_CREAT, 0o644)
    os.write(ghost, b"boo" * 100_000)
    os.unlink(os.path.join(mnt, "ghost"))
    while True:
        d = os.path.join(mnt, f"dir{i % 7}")
        os.makedirs(d, exist_ok=True)
        size = rnd.choice([0, 100, 5000, 70_000, 300_000, 1_500_000])
        if i % 12 == 5:
            size = 12 * 1024 * 1024 + rnd.randrange(1 << 20)   # streamed while written
        data = rnd.randbytes(size)
        path = os.path.join(d, f"file{i:05d}")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        for off in range(0, size, 65536):
            os.write(fd, data[off:off + 65536])
        synced = i % 3 == 0
        if synced:
            os.fsync(fd)
        os.close(fd)
        if synced:
            os.write(jfd, f"{path}\t{size}\t{hashlib.sha256(data).hexdigest()}\n".encode())
            os.fsync(jfd)
        elif i % 5 == 1:                       # churn on files nobody vouched for
            os.rename(path, path + ".renamed")
        elif i % 5 == 2 and i > 10:
            try:
                os.unlink(os.path.join(mnt, f"dir{(i - 10) % 7}", f"file{i - 10:05d}.renamed"))
            except FileNotFoundError:
                pass
        i += 1
except OSError as e:                           # the daemon is gone
    print(f"load stopped after {i} files: {e}", flush=True)
"""


def journal_entries(path) -> list[tuple[str, int, str]]:
    out = []
    with open(path) as f:
        for line in f:
            if line.endswith("\n"):
                p, size, digest = line.rstrip("\n").split("\t")
                out.append((p, int(size), digest))
    return out


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}", pytrace=False)
        time.sleep(0.05)


def test_sigkill_mid_load_then_remount_without_manual_unmount(mount_factory, tmp_path):
    m = mount_factory()
    journal = tmp_path / "journal"
    journal.touch()
    load = subprocess.Popen([sys.executable, "-c", LOAD, str(m.mnt), str(journal)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(journal_entries(journal)) >= 40 or load.poll() is not None, 120,
                 "40 fsynced files")
        assert load.poll() is None, f"the load died early: {load.communicate()}"
        pid = m.pid()
        os.kill(pid, signal.SIGKILL)
        assert wait_gone(pid, 30), f"daemon {pid} survived SIGKILL"
        out, err = load.communicate(timeout=60)
    finally:
        if load.poll() is None:
            load.kill()
            load.wait()
    assert load.returncode == 0, err
    assert "load stopped" in out, out + err

    # the mount point is dead now, and still mounted (stat may still be answered from the
    # kernel's attribute cache; statfs always asks the daemon)
    with pytest.raises(OSError) as e:
        os.statvfs(m.mnt)
    assert e.value.errno in (errno.ENOTCONN, errno.ECONNABORTED)
    assert m.is_mounted()
    entries = journal_entries(journal)
    assert len(entries) >= 40

    # the store on disk is consistent even before anyone recovers it
    m.fsck()

    # remount with no manual unmount: the CLI must detach the stale mount itself
    r = run([NEXUS, "mount", str(m.mnt), "--data-dir", str(m.data), "-o", "allow_other"],
            check=False, timeout=60)
    assert r.returncode == 0, f"remount over the stale mount failed:\n{r.stderr}\n{m.log_tail()}"
    assert os.path.isdir(m.mnt) and m.is_mounted()
    m.pid()                                            # registered again
    m.fsck()                                           # clean while served, too

    bad = []
    for path, size, digest in entries:
        try:
            if os.path.getsize(path) != size or sha256_file(path) != digest:
                bad.append(f"{path}: content differs")
        except OSError as e:
            bad.append(f"{path}: {e}")
    assert not bad, f"{len(bad)} of {len(entries)} fsynced files damaged: {bad[:5]}"

    # the recovered store keeps working: write, unmount cleanly (fixture), fsck
    (m.mnt / "after-crash").write_bytes(b"alive\n" * 1000)
    m.remount()
    assert (m.mnt / "after-crash").read_bytes() == b"alive\n" * 1000
    for path, size, digest in entries[-5:]:
        assert sha256_file(path) == digest


def test_remount_after_sigkill_of_an_idle_daemon(mount_factory):
    m = mount_factory()
    (m.mnt / "kept").write_text("fsynced before the kill\n")
    fd = os.open(m.mnt / "kept", os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    pid = m.pid()
    os.kill(pid, signal.SIGKILL)
    assert wait_gone(pid, 30)
    m.mount()                                          # fails the test if recovery does not work
    assert (m.mnt / "kept").read_text() == "fsynced before the kill\n"
    r = run([NEXUS, "status", "--json"])
    assert r.stdout.count(str(m.mnt) + '"') == 1, r.stdout
