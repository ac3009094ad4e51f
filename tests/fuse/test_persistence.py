"""What survives an unmount: a varied tree with all its metadata, a 200 MiB file, and the space
accounting of deduplicated content (``nexus stats``). Each test owns a fresh store.
"""
from __future__ import annotations

import os
import stat

import pytest
from fusehelp import make_tree, run, sha256_file, snapshot

pytestmark = pytest.mark.fuse

MiB = 1024 * 1024


def test_tree_contents_and_metadata_survive_remount(mount_factory, tmp_path):
    m = mount_factory()
    root = m.mnt / "tree"
    run(["cp", "-a", str(make_tree(tmp_path / "src")), str(root)])
    os.chown(root / "a/text.txt", 1234, 5678)
    os.chmod(root / "a/b", 0o2750)
    os.setxattr(root / "a/b/random.bin", "user.mime", b"application/octet-stream")
    os.setxattr(root / "a", "user.dir-note", b"\x00binary\xff")
    os.setxattr(root / "one", "trusted.secret", b"root only")
    os.mkfifo(root / "fifo", 0o620)
    os.symlink("x" * 4000, root / "long-link")
    with open(root / "sparse", "wb") as f:
        f.truncate(50 * MiB)
        f.seek(20 * MiB)
        f.write(b"island")
    with open(root / "appended", "ab") as f:
        for i in range(1000):
            f.write(b"appended line %d\n" % i)
    os.utime(root / "one", ns=(1_111_111_111_111_111_111, 1_222_222_222_222_222_222))
    # quick successions of truncate/write/rewrite: the times stat shows now must be the ones
    # stored (under the writeback cache the kernel, not the daemon, keeps mtime/ctime)
    (root / "patterns").mkdir()
    for i in range(30):
        p = root / "patterns" / f"p{i}"
        with open(p, "wb") as f:
            f.truncate(1000 + i)
            f.seek(500)
            f.write(b"w%d" % i)
        with open(p, "r+b") as f:
            f.seek(i)
            f.write(b"rewrite")
        if i % 3 == 0:
            with open(p, "wb") as f:               # O_TRUNC of an existing file
                f.write(b"again %d" % i)
    before = snapshot(m.mnt)
    atime_before = os.stat(root / "one").st_atime_ns
    m.remount()
    after = snapshot(m.mnt)
    changed = {k: (before.get(k), after.get(k)) for k in set(before) | set(after)
               if before.get(k) != after.get(k)}
    assert not changed, f"{len(changed)} entries differ after remount: {dict(list(changed.items())[:5])}"
    assert os.stat(root / "one").st_atime_ns == atime_before == 1_111_111_111_111_111_111
    assert stat.S_ISFIFO(os.stat(root / "fifo").st_mode)
    with open(root / "sparse", "rb") as f:
        f.seek(20 * MiB - 3)
        assert f.read(12) == b"\0\0\0island\0\0\0"
    run(["diff", "-r", "--no-dereference", str(tmp_path / "src/a"), str(root / "a")])
    # and once more after removing and renaming things
    os.rename(root / "a", root / "renamed-a")
    run(["rm", "-rf", str(root / "deep"), str(root / "big.bin")])
    before = snapshot(m.mnt)
    m.remount()
    assert snapshot(m.mnt) == before
    assert not (root / "deep").exists() and (root / "renamed-a/b/random.bin").is_file()


def test_200_mib_file_survives_remount(mount_factory, tmp_path):
    src = tmp_path / "big.bin"
    run(["dd", "if=/dev/urandom", f"of={src}", "bs=1M", "count=200", "status=none"])
    m = mount_factory()
    dst = m.mnt / "big.bin"
    run(["cp", str(src), str(dst)], timeout=180)
    assert os.stat(dst).st_size == 200 * MiB
    run(["cmp", str(src), str(dst)], timeout=180)
    m.remount()
    assert os.stat(dst).st_size == 200 * MiB
    run(["cmp", str(src), str(dst)], timeout=180)
    # an in-place edit in the middle of the big file stores little, and reads back right
    with open(dst, "r+b") as f:
        f.seek(123 * MiB + 17)
        f.write(b"EDITED" * 1000)
    with open(src, "r+b") as f:
        f.seek(123 * MiB + 17)
        f.write(b"EDITED" * 1000)
    m.remount()
    run(["cmp", str(src), str(dst)], timeout=180)
    s = m.stats()
    assert s["logical_bytes"] == 200 * MiB
    assert s["unique_bytes"] < 201 * MiB, s


def test_identical_content_is_stored_once(mount_factory, tmp_path):
    src = tmp_path / "random20"
    run(["dd", "if=/dev/urandom", f"of={src}", "bs=1M", "count=20", "status=none"])
    m = mount_factory()
    run(["cp", str(src), str(m.mnt / "first.bin")])
    (m.mnt / "dir").mkdir()
    with open(src, "rb") as fin, open(m.mnt / "dir/second copy.bin", "wb") as fout:
        while block := fin.read(1 << 16):              # a different write pattern
            fout.write(block)
        fout.flush()
        os.fsync(fout.fileno())
    fd = os.open(m.mnt / "first.bin", os.O_RDONLY)
    os.fsync(fd)                                       # commits the batch durably
    os.close(fd)
    s = m.stats()
    assert s["logical_bytes"] == 40 * MiB, s
    assert 20 * MiB <= s["unique_bytes"] <= 21 * MiB, f"stored twice? {s}"
    assert s["dedup_saved_bytes"] >= 19 * MiB, s
    assert s["stored_bytes"] <= 21 * MiB + 64 * 1024, s          # random data: no compression
    digest = sha256_file(src)
    m.remount()
    assert sha256_file(m.mnt / "first.bin") == digest == sha256_file(m.mnt / "dir/second copy.bin")
    # removing one copy keeps the shared chunks for the other
    os.unlink(m.mnt / "first.bin")
    m.remount()
    assert sha256_file(m.mnt / "dir/second copy.bin") == digest
    s = m.stats()
    assert s["logical_bytes"] == 20 * MiB and s["files"] == 1, s
