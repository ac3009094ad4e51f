"""The mount life cycle through the ``nexus`` CLI: what ``nexus status`` records, relative
``--data-dir`` paths, commands addressed by mount point, and the errors for a missing mount
point, a data directory already in use and an unmount of something not mounted.
"""
from __future__ import annotations

import json
import os

import pytest
from fusehelp import NEXUS, run, wait_gone

pytestmark = pytest.mark.fuse


def test_status_lists_the_mount_with_absolute_paths(mount_factory):
    m = mount_factory(mount=False)
    # a relative --data-dir, given from the mount's base directory
    r = run([NEXUS, "mount", "mnt", "--data-dir", "data", "-o", "allow_other"], cwd=m.base,
            check=False)
    assert r.returncode == 0, r.stderr + m.log_tail()
    assert m.is_mounted()
    entry = [e for e in json.loads(run([NEXUS, "status", "--json"]).stdout)
             if e["mountpoint"] == str(m.mnt)]
    assert len(entry) == 1, entry
    assert entry[0]["data_dir"] == str(m.data), "the registry must hold an absolute data dir"
    assert not wait_gone(entry[0]["pid"], 0)
    # commands addressed by mount point find the store from any directory
    (m.mnt / "f").write_bytes(b"x" * 100_000)
    fd = os.open(m.mnt / "f", os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    s = json.loads(run([NEXUS, "stats", str(m.mnt), "--json"], cwd="/").stdout)
    assert s["files"] == 1 and s["logical_bytes"] == 100_000
    assert str(m.mnt) in run([NEXUS, "status"]).stdout
    m.unmount()
    assert not any(e["mountpoint"] == str(m.mnt)
                   for e in json.loads(run([NEXUS, "status", "--json"]).stdout))
    assert wait_gone(entry[0]["pid"], 30)


def test_mount_errors_are_one_line_messages(mount_factory):
    m = mount_factory()
    other = mount_factory(mount=False)
    # the data directory is in use by the first daemon
    r = run([NEXUS, "mount", str(other.mnt), "--data-dir", str(m.data)], check=False)
    assert r.returncode == 1 and r.stderr.startswith("nexus: ") and "Traceback" not in r.stderr
    assert not other.is_mounted()
    # a mount point that does not exist
    r = run([NEXUS, "mount", str(other.base / "nowhere"), "--data-dir", str(other.data)],
            check=False)
    assert r.returncode != 0 and r.stderr.startswith("nexus: ") and "Traceback" not in r.stderr
    # unmounting something that is not mounted
    r = run([NEXUS, "unmount", str(other.mnt)], check=False)
    assert r.returncode != 0 and r.stderr.startswith("nexus: ")
    # the first mount is unharmed
    (m.mnt / "still").write_text("fine\n")
    assert (m.mnt / "still").read_text() == "fine\n"
