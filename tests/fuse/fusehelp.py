"""Helpers of the real-mount tier (imported by conftest.py and the test modules): running
commands, skipping (or failing under CI=true), and ``Mount``, one data directory with its mount
point driven through the ``nexus`` CLI.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").strip().lower() == "true"
TEST_USER = "nexustest"

_venv_nexus = Path(sys.executable).with_name("nexus")
# NEXUS_BIN tests another build of the CLI; by default, the one of this virtualenv
NEXUS = os.environ.get("NEXUS_BIN") or (
    str(_venv_nexus) if _venv_nexus.exists() else (shutil.which("nexus") or "nexus"))

active_mounts: list["Mount"] = []


# -- skipping (or failing under CI) ---------------------------------------------------------------
def skip_or_fail(reason: str):
    """Skip the test, or fail it when CI=true (CI must run the real-mount tier)."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the real-mount tier may not be skipped)", pytrace=False)
    pytest.skip(reason)


def fuse_unavailable() -> str | None:
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing"
    if os.geteuid() != 0:
        return "the real-mount tests must run as root"
    if shutil.which("fusermount3") is None:
        return "fusermount3 is not installed"
    return None


def require_tools(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        skip_or_fail(f"missing tools: {', '.join(missing)}")


# -- running commands -----------------------------------------------------------------------------
def run(cmd, *, check: bool = True, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    """Run a command (list or shell string) capturing text output; on failure with ``check``,
    fail the test with the command's output."""
    shell = isinstance(cmd, str)
    kw.setdefault("stdin", subprocess.DEVNULL)
    try:
        r = subprocess.run(cmd, shell=shell, capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"timed out after {timeout} s: {cmd}\nstdout:\n{e.stdout}\nstderr:\n{e.stderr}",
                    pytrace=False)
    if check and r.returncode != 0:
        pytest.fail(f"command failed with exit {r.returncode}: {cmd}\n"
                    f"stdout:\n{r.stdout[-4000:]}\nstderr:\n{r.stderr[-4000:]}", pytrace=False)
    return r


def as_user(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    """Run ``cmd`` as the unprivileged test user (never checked: callers assert)."""
    return run(["runuser", "-u", TEST_USER, "--", *cmd], check=False, **kw)


def process_gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie waiting for a late reaper counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except FileNotFoundError:
        return True


def wait_gone(pid: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while not process_gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def mounted_paths() -> set[str]:
    """Mount points in this namespace (from mountinfo: no stat, so dead mounts show too)."""
    out = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4]
            out.add(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), mp))
    return out


# -- one mount ------------------------------------------------------------------------------------
class Mount:
    """A data directory and its mount point, driven through the nexus CLI."""

    def __init__(self, base: Path, name: str):
        self.base = base / name
        self.mnt = self.base / "mnt"
        self.data = self.base / "data"
        self.mnt.mkdir(parents=True)
        os.chmod(self.base, 0o755)
        os.chmod(self.mnt, 0o755)

    @property
    def log_path(self) -> Path:
        return self.data / "nexusfs.log"

    def log_tail(self, lines: int = 80) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError as e:
            return f"(no daemon log: {e})"

    def is_mounted(self) -> bool:
        return str(self.mnt) in mounted_paths()

    def mount(self) -> None:
        r = run([NEXUS, "mount", str(self.mnt), "--data-dir", str(self.data), "-o", "allow_other"],
                check=False, timeout=60)
        if r.returncode != 0 or not self.is_mounted():
            pytest.fail(f"nexus mount {self.mnt} failed (exit {r.returncode})\n"
                        f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}\n"
                        f"--- daemon log {self.log_path} ---\n{self.log_tail(200)}", pytrace=False)
        if self not in active_mounts:
            active_mounts.append(self)

    def unmount(self) -> None:
        r = run([NEXUS, "unmount", str(self.mnt)], check=False, timeout=150)
        if r.returncode != 0 or self.is_mounted():
            detail = (f"nexus unmount {self.mnt} failed (exit {r.returncode})\nstdout:\n{r.stdout}\n"
                      f"stderr:\n{r.stderr}\n--- daemon log ---\n{self.log_tail()}")
            subprocess.run(["fusermount3", "-u", "-z", str(self.mnt)], capture_output=True)
            pytest.fail(detail, pytrace=False)

    def remount(self) -> None:
        self.unmount()
        self.mount()

    def fsck(self) -> str:
        r = run([NEXUS, "fsck", "--data-dir", str(self.data)], check=False, timeout=120)
        if r.returncode != 0:
            pytest.fail(f"nexus fsck of {self.data} is not clean (exit {r.returncode})\n"
                        f"stdout:\n{r.stdout[-6000:]}\nstderr:\n{r.stderr[-2000:]}\n"
                        f"--- daemon log ---\n{self.log_tail()}", pytrace=False)
        return r.stdout

    def stats(self) -> dict:
        r = run([NEXUS, "stats", "--data-dir", str(self.data), "--json"])
        return json.loads(r.stdout)

    def pid(self) -> int:
        """The daemon's pid, as `nexus status --json` reports it."""
        r = run([NEXUS, "status", "--json"])
        for m in json.loads(r.stdout):
            if os.path.realpath(m["mountpoint"]) == os.path.realpath(self.mnt):
                return int(m["pid"])
        pytest.fail(f"nexus status does not list {self.mnt}:\n{r.stdout}", pytrace=False)

    def finish(self) -> None:
        """Teardown: unmount if mounted, then the store must be fsck-clean."""
        if self in active_mounts:
            active_mounts.remove(self)
        if self.is_mounted():
            self.unmount()
        if self.data.joinpath("meta.db").exists():
            self.fsck()


# -- trees of test data ---------------------------------------------------------------------------
FIXED_NS = 1_234_567_890_123_456_789        # 2009-02-13, with nanoseconds


def make_tree(root: Path, seed: int = 1) -> Path:
    """A small but varied tree: nested and empty directories, non-ASCII names, files from 0 bytes
    to 2 MiB (random and compressible), several modes, relative/dangling symlinks, a hard link,
    and fixed mtimes (nanosecond precision) everywhere."""
    rnd = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for d in ("a/b/c", "empty", "with space", "ünïcödé/ß", "deep/1/2/3/4/5/6"):
        (root / d).mkdir(parents=True, exist_ok=True)
    files = {
        "zero": b"",
        "one": b"x",
        "a/text.txt": b"".join(b"line %d of some text\n" % i for i in range(5000)),
        "a/b/random.bin": rnd.randbytes(300_000),
        "a/b/c/compressible.log": b"INFO all is well\n" * 120_000,
        "a/b/c/page": rnd.randbytes(4096),
        "with space/file with space.txt": b"spaces\n",
        "ünïcödé/ß/grüße.txt": "grüße\n".encode(),
        "deep/1/2/3/4/5/6/leaf": b"leaf\n",
        "big.bin": rnd.randbytes(2 * 1024 * 1024),
    }
    for rel, data in files.items():
        (root / rel).write_bytes(data)
    modes = {"zero": 0o600, "one": 0o444, "a/text.txt": 0o640, "a/b/random.bin": 0o755}
    for rel, mode in modes.items():
        os.chmod(root / rel, mode)
    os.symlink("b/random.bin", root / "a/link-to-random")
    os.symlink("../a", root / "deep/link-to-dir")
    os.symlink("does/not/exist", root / "dangling")
    os.link(root / "a/text.txt", root / "hardlink-to-text")
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames + dirnames:
            os.utime(os.path.join(dirpath, name), ns=(FIXED_NS, FIXED_NS), follow_symlinks=False)
    os.utime(root, ns=(FIXED_NS, FIXED_NS))
    return root


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def snapshot(root: Path, *, atime: bool = False) -> dict:
    """Everything stat and the content say about a tree, keyed by relative path."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            p = os.path.join(dirpath, name)
            s = os.lstat(p)
            entry = {"mode": oct(s.st_mode), "uid": s.st_uid, "gid": s.st_gid, "size": s.st_size,
                     "nlink": s.st_nlink, "ino": s.st_ino, "mtime_ns": s.st_mtime_ns,
                     "ctime_ns": s.st_ctime_ns}
            if atime:
                entry["atime_ns"] = s.st_atime_ns
            if stat.S_ISLNK(s.st_mode):
                entry["target"] = os.readlink(p)
            else:
                if stat.S_ISREG(s.st_mode):
                    entry["sha256"] = sha256_file(p)
                entry["xattrs"] = {n: os.getxattr(p, n) for n in sorted(os.listxattr(p))}
            out[os.path.relpath(p, root)] = entry
    return out


@contextmanager
def scratch_base(prefix: str):
    """A world-traversable temporary directory for stores and mount points (the unprivileged
    test user must reach into it); removed afterwards unless a mount is still live in it."""
    reason = fuse_unavailable()
    if reason:
        skip_or_fail(reason)
    base = Path(tempfile.mkdtemp(prefix=prefix, dir=os.environ.get("NEXUS_FUSE_TMP")))
    os.chmod(base, 0o755)
    try:
        yield base
    finally:
        left = [p for p in mounted_paths() if p.startswith(str(base) + "/")]
        for p in left:                  # never rmtree through a live mount
            subprocess.run(["fusermount3", "-u", "-z", p], capture_output=True)
        if not left:
            shutil.rmtree(base, ignore_errors=True)
