"""Faults at the mount: a full disk under the data directory (ENOSPC to writers, a consistent
store, and everything works again once space is freed, here by deleting files on the mount),
and data directories that cannot be used (foreign, read-only, missing parent): a one-line
message at mount and a non-zero exit."""
from __future__ import annotations

import errno
import os
import subprocess
import time

import pytest
from fusehelp import NEXUS, Mount, run

pytestmark = pytest.mark.fuse


@pytest.fixture
def small_disk(fuse_base):
    """A 48 MiB tmpfs to hold a data directory."""
    path = fuse_base / "small-disk"
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs: {r.stderr}", pytrace=False)
    yield path
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(path, mib: int) -> int:
    """Write up to ``mib`` MiB of random data; the errno that stopped it, or 0."""
    try:
        with open(path, "wb") as f:
            for _ in range(mib):
                f.write(os.urandom(1 << 20))      # distinct blocks: nothing to deduplicate
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        return e.errno
    return 0


def test_full_disk_gives_enospc_and_recovers(small_disk, fuse_base):
    m = Mount(fuse_base, "full-disk")
    m.data = small_disk / "data"
    m.mount()
    try:
        (m.mnt / "small.txt").write_text("kept\n")
        assert fill(m.mnt / "big1", 100) == errno.ENOSPC
        # the mount still answers, what was there is intact
        assert (m.mnt / "small.txt").read_text() == "kept\n"
        assert fill(m.mnt / "big2", 20) == errno.ENOSPC
        # free space on the mount; the daemon collects the garbage and writes work again
        for name in ("big1", "big2"):          # big2 may not even have been created
            if (m.mnt / name).exists():
                os.unlink(m.mnt / name)
        err = errno.ENOSPC
        for _ in range(50):
            err = fill(m.mnt / "again", 10)
            if err == 0:
                break
            if (m.mnt / "again").exists():
                os.unlink(m.mnt / "again")
            time.sleep(0.2)
        assert err == 0, f"{os.strerror(err)}\n{m.log_tail()}"
        assert (m.mnt / "small.txt").read_text() == "kept\n"
        m.unmount()
        m.fsck()
        m.mount()
        assert os.path.getsize(m.mnt / "again") == 10 << 20
    finally:
        m.finish()


def test_unusable_data_directories_are_refused_in_one_line(fuse_base, tmp_path):
    m = Mount(fuse_base, "bad-data")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("not a store\n")
    r = run([NEXUS, "mount", str(m.mnt), "--data-dir", str(foreign)], check=False)
    assert r.returncode == 1 and r.stderr.startswith("nexus: ") and "not a nexusfs" in r.stderr
    assert (foreign / "thesis.tex").read_text() == "not a store\n"
    assert sorted(p.name for p in foreign.iterdir()) == ["thesis.tex"]
    r = run([NEXUS, "mount", str(m.mnt), "--data-dir", str(tmp_path / "no/such/parent")],
            check=False)
    assert r.returncode == 1 and r.stderr.startswith("nexus: ") and "does not exist" in r.stderr
    ro = fuse_base / "ro-disk"
    ro.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,ro", "tmpfs", str(ro)], check=True)
    try:
        r = run([NEXUS, "mount", str(m.mnt), "--data-dir", str(ro / "data")], check=False)
        assert r.returncode == 1 and r.stderr.startswith("nexus: ")
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    finally:
        subprocess.run(["umount", "-l", str(ro)], capture_output=True)
    assert not m.is_mounted()
