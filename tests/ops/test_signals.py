"""Signals: SIGTERM/SIGINT flush, unmount and exit 0 (even with a file still open and its
writes only in the daemon's buffers); more signals during a long flush are logged and change
nothing; SIGHUP applies nexusfs.toml live (log level, retention, cache size) and a broken
file changes nothing."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from fusehelp import NEXUS, run, sha256_file, wait_gone
from opshelp import nexus_env, wait_for

pytestmark = pytest.mark.fuse

MiB = 1 << 20

# writes SIZE bytes of random data to PATH in 1 MiB writes, pushes the kernel's cached pages to
# the daemon (sync), prints the SHA-256 and keeps the file open until its stdin closes
HOLDER = r"""
import hashlib, os, sys
path, size = sys.argv[1], int(sys.argv[2])
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
h = hashlib.sha256()
block = os.urandom(1 << 20)
for i in range(size >> 20):
    data = block[i:] + block[:i]
    os.write(fd, data)
    h.update(data)
os.sync()
print(h.hexdigest(), flush=True)
sys.stdin.read()
try:
    os.close(fd)
except OSError:
    pass
"""


def stats(m) -> dict:
    return dict(line.split(": ", 1) for line in (m.mnt / ".nexus/stats").read_text().splitlines())


def test_sigterm_flushes_buffered_writes_of_an_open_file_despite_more_signals(new_mount):
    m = new_mount(mount=False)
    # nothing is committed before the stop: sequential writes stay buffered (spilled to disk)
    env = nexus_env(NEXUS_STREAM_COMMIT="8G", NEXUS_IDLE_COMMIT="600")
    r = run([NEXUS, "mount", str(m.mnt), "--data-dir", str(m.data), "-o", "allow_other"],
            env=env, check=False)
    assert r.returncode == 0, r.stderr
    pid = m.pid()
    size = 160 * MiB
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(m.mnt / "big"), str(size)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        digest = holder.stdout.readline().strip()
        assert len(digest) == 64, digest
        s = stats(m)
        assert int(s["dirty_bytes"]) >= size - MiB and int(s["dirty_files"]) == 1, s
        os.kill(pid, signal.SIGTERM)
        # keep signalling while the daemon commits and syncs
        sent = 0
        while not wait_gone(pid, 0.03):
            try:
                os.kill(pid, (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)[sent % 3])
            except ProcessLookupError:
                break
            sent += 1
        assert wait_gone(pid, 60)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    log = m.log_path.read_text()
    assert "SIGTERM: flushing and unmounting" in log, log
    assert sent >= 2, "the flush ended before a second signal could arrive"
    assert "already stopping" in log, log[-3000:]
    assert "stopped cleanly" in log, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    assert not m.is_mounted()
    m.fsck()
    m.mount()
    assert os.path.getsize(m.mnt / "big") == size
    assert sha256_file(m.mnt / "big") == digest


def test_sigint_in_the_foreground(new_mount):
    m = new_mount(mount=False)
    p = subprocess.Popen([NEXUS, "mount", "--foreground", str(m.mnt), "--data-dir", str(m.data)],
                         env=nexus_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: m.is_mounted() or p.poll() is not None, 20, "the mount")
        (m.mnt / "f").write_bytes(b"x" * 300_000)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    assert "SIGINT: flushing and unmounting" in err and "stopped cleanly" in err, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert not m.is_mounted()
    m.mount()
    assert (m.mnt / "f").read_bytes() == b"x" * 300_000


def test_sighup_applies_retention_log_level_and_cache_size(new_mount):
    m = new_mount()
    pid = m.pid()
    for i in range(20):
        (m.mnt / f"f{i}").write_text(f"{i}\n")
    assert int(stats(m)["chunk_cache_limit_bytes"]) == 256 * MiB

    def log_records():
        r = run([NEXUS, "log", "--mount", str(m.mnt), "--json"])
        return json.loads(r.stdout)

    assert len(log_records()) >= 20
    (m.data / "nexusfs.toml").write_text(
        '# live settings\nretain_ops = 5\nlog_level = "debug"\nchunk_cache_bytes = "8 MiB"\n')
    os.kill(pid, signal.SIGHUP)
    wait_for(lambda: "SIGHUP: retain_ops" in m.log_path.read_text(), 10, "the reload")
    log = m.log_path.read_text()
    assert "SIGHUP: retain_ops 5000000 -> 5" in log and "SIGHUP: log_level INFO -> DEBUG" in log
    assert "DEBUG nexusfs: configuration now" in log
    assert int(stats(m)["chunk_cache_limit_bytes"]) == 8 * MiB
    # retention applies at the next collection
    run([NEXUS, "gc", "--mount", str(m.mnt)])
    assert len(log_records()) <= 6, log_records()

    # a broken file: an error naming the line, and nothing changes
    (m.data / "nexusfs.toml").write_text('retain_ops = 5\nchunk_cache_bytes = "lots"\n')
    os.kill(pid, signal.SIGHUP)
    wait_for(lambda: "configuration not reloaded" in m.log_path.read_text(), 10, "the error")
    log = m.log_path.read_text()
    assert "nexusfs.toml, line 2: chunk_cache_bytes must be a size in bytes" in log, log[-2000:]
    assert int(stats(m)["chunk_cache_limit_bytes"]) == 8 * MiB
    (m.data / "nexusfs.toml").unlink()
    assert (m.mnt / "f3").read_text() == "3\n"
    assert m.pid() == pid
