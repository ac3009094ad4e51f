"""mount(8) and fstab: `mount -t fuse.nexusfs SOURCE MOUNTPOINT -o OPTIONS` and fstab lines
(through `mount --fstab FILE`, so /etc/fstab is untouched) run daemon/mount.fuse.nexusfs,
which passes the options on, returns only once the mount answers, and on failure prints why
and exits non-zero with nothing mounted. `umount` runs daemon/umount.fuse.nexusfs, which waits
until the daemon has flushed everything and exited."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from fusehelp import Mount, require_tools, run, sha256_file, wait_gone
from opshelp import REPO

pytestmark = pytest.mark.fuse

HELPERS = ("mount.fuse.nexusfs", "umount.fuse.nexusfs")


@pytest.fixture(scope="module")
def helpers():
    """/sbin/{u,}mount.fuse.nexusfs of this checkout (tools/setup installs them; a test run
    without them installs them for the module and removes them afterwards)."""
    require_tools("mount", "umount", "findmnt")
    changed = []
    for name in HELPERS:
        link, target = Path("/sbin") / name, REPO / "daemon" / name
        if link.exists() and os.path.realpath(link) == str(target):
            continue
        backup = None
        if link.exists() or link.is_symlink():
            backup = link.with_name(name + ".nexustest")
            os.replace(link, backup)
        link.symlink_to(target)
        changed.append((link, backup))
    yield
    for link, backup in changed:
        link.unlink()
        if backup is not None:
            os.replace(backup, link)


def fstype(path) -> str:
    return run(["findmnt", "-n", "-o", "FSTYPE", "--mountpoint", str(path)], check=False).stdout.strip()


def utab_has(path) -> bool:
    from nexusfs.runtime import _utab_has
    return _utab_has(str(path))


def write_unsynced(root: Path) -> dict:
    data = os.urandom(1 << 20)
    out = {}
    for i in range(24):                                # 24 MiB, closed, never fsynced
        (root / f"f{i}").write_bytes(data[i:] + data[:i])
        out[f"f{i}"] = sha256_file(root / f"f{i}")
    return out


def test_mount_t_fuse_nexusfs_and_umount_waits_for_the_flush(helpers, new_mount):
    m = new_mount(mount=False)
    r = run(["mount", "-t", "fuse.nexusfs", str(m.data), str(m.mnt), "-o",
             "allow_other,noatime,retain_days=7"], check=False)
    assert r.returncode == 0, r.stderr + m.log_tail()
    # live when mount returns
    (m.mnt / "first").write_text("at once\n")
    assert fstype(m.mnt) == "fuse.nexusfs"
    assert "allow_other" in run(["findmnt", "-n", "-o", "OPTIONS", str(m.mnt)]).stdout
    pid = m.pid()
    assert utab_has(m.mnt), "umount(8) would not run the helper"
    digests = write_unsynced(m.mnt)
    r = run(["umount", str(m.mnt)], check=False)
    assert r.returncode == 0, r.stderr
    assert wait_gone(pid, 0), "umount returned before the daemon finished flushing"
    assert "stopped cleanly" in m.log_path.read_text()
    assert not m.is_mounted() and not utab_has(m.mnt)
    m.fsck()
    m.mount()
    for name, digest in digests.items():
        assert sha256_file(m.mnt / name) == digest
    assert (m.mnt / "first").read_text() == "at once\n"
    assert utab_has(m.mnt)                             # `nexus mount` registers it too
    m.unmount()                                        # and the daemon drops it at exit
    assert not utab_has(m.mnt)


def test_mount_failures_print_why(helpers, new_mount, tmp_path):
    m = new_mount(mount=False)
    r = run(["mount", "-t", "fuse.nexusfs", str(m.data), str(m.mnt), "-o", "allow_other,bogus"],
            check=False)
    assert r.returncode != 0 and "unknown mount option 'bogus'" in r.stderr, r.stderr
    assert not m.is_mounted() and not m.data.exists()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine\n")
    r = run(["mount", "-t", "fuse.nexusfs", str(foreign), str(m.mnt)], check=False)
    assert r.returncode != 0 and "not a nexusfs data directory" in r.stderr, r.stderr
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
    r = run(["mount", "-t", "fuse.nexusfs", str(m.data), str(m.base / "missing")], check=False)
    assert r.returncode != 0 and "missing" in r.stderr, r.stderr
    assert not m.is_mounted()


def test_fstab_line(helpers, ops_base, tmp_path):
    m = Mount(ops_base, "fstab with space")                # \040 in fstab and in utab
    fstab = tmp_path / "fstab"
    esc = lambda p: str(p).replace(" ", "\\040")           # noqa: E731
    fstab.write_text(f"# a test fstab\n{esc(m.data)}  {esc(m.mnt)}  fuse.nexusfs  "
                     f"allow_other,noauto,nofail,_netdev,x-systemd.automount,retain_days=7  0 0\n")
    try:
        r = run(["mount", "--fstab", str(fstab), str(m.mnt)], check=False)
        assert r.returncode == 0, r.stderr + m.log_tail()
        assert fstype(m.mnt) == "fuse.nexusfs"
        pid = m.pid()
        digests = write_unsynced(m.mnt)
        assert run(["umount", str(m.mnt)], check=False).returncode == 0
        assert wait_gone(pid, 0) and not m.is_mounted()
        r = run(["mount", "--fstab", str(fstab), str(m.mnt)], check=False)
        assert r.returncode == 0, r.stderr
        for name, digest in digests.items():
            assert sha256_file(m.mnt / name) == digest
    finally:
        m.finish()
        shutil.rmtree(m.base, ignore_errors=True)
