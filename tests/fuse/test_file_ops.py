"""File content and attributes on a real mount: sparse files, mmap (shared reads and writes),
extended attributes, chmod/chown/utimens (including UTIME_OMIT) and statfs.

Where the question is whether the daemon (not only the kernel's page cache) holds the data, the
test remounts and reads again.
"""
from __future__ import annotations

import ctypes
import errno
import hashlib
import mmap
import os
import random
import stat
import time

import pytest
from fusehelp import run

pytestmark = pytest.mark.fuse

MiB = 1024 * 1024
GiB = 1024 * MiB


def errno_of(fn, *args, **kw) -> int:
    try:
        fn(*args, **kw)
    except OSError as e:
        return e.errno
    raise AssertionError(f"{fn.__name__}{args} succeeded")


# -- sparse files ---------------------------------------------------------------------------------
def test_sparse_file_holes_take_no_space_and_read_as_zeros(work, mount):
    f = work / "sparse"
    run(["truncate", "-s", "1G", str(f)])
    s = os.stat(f)
    assert s.st_size == GiB and s.st_blocks * 512 < 64 * 1024, s
    with open(f, "rb") as fh:
        fh.seek(700 * MiB)
        assert fh.read(MiB) == bytes(MiB)
        fh.seek(GiB - 4096)
        assert fh.read(8192) == bytes(4096)      # short read at EOF
        assert fh.read(10) == b""
    # write into the middle of the hole
    fd = os.open(f, os.O_WRONLY)
    try:
        assert os.pwrite(fd, b"hello in a hole", 300 * MiB + 123) == 15
    finally:
        os.close(fd)
    s = os.stat(f)
    assert s.st_size == GiB and s.st_blocks * 512 < MiB
    fd = os.open(f, os.O_RDONLY)
    try:
        around = os.pread(fd, 4096, 300 * MiB)
        assert around == bytes(123) + b"hello in a hole" + bytes(4096 - 138)
        assert os.pread(fd, MiB, 299 * MiB) == bytes(MiB)
    finally:
        os.close(fd)
    # cmp with /dev/zero streams the hole and stops at the first (and only) difference
    assert run(f"cmp -n {512 * MiB} '{f}' /dev/zero", check=False).stdout.count("differ") == 1


def test_truncate_shrink_then_grow_reads_zeros(work, mount):
    f = work / "t"
    with open(f, "wb") as fh:
        fh.write(os.urandom(3 * MiB))
        fh.seek(100 * MiB)
        fh.write(b"far away")
    assert os.stat(f).st_size == 100 * MiB + 8
    os.truncate(f, MiB + 5)
    os.truncate(f, 200 * MiB)
    with open(f, "rb") as fh:
        fh.seek(MiB + 5)
        assert fh.read(2 * MiB) == bytes(2 * MiB)
        fh.seek(100 * MiB)
        assert fh.read(8) == bytes(8)
    head = f.read_bytes()[:MiB + 5]
    mount.remount()
    assert os.stat(f).st_size == 200 * MiB
    with open(f, "rb") as fh:
        assert fh.read(MiB + 5) == head
        assert fh.read(3 * MiB) == bytes(3 * MiB)
        fh.seek(100 * MiB)
        assert fh.read(8) == bytes(8)
    # writing past the end leaves a hole behind
    with open(f, "r+b") as fh:
        fh.seek(3 * GiB)
        fh.write(b"end")
    assert os.stat(f).st_size == 3 * GiB + 3
    assert os.stat(f).st_blocks * 512 < 8 * MiB


# -- mmap -----------------------------------------------------------------------------------------
def test_mmap_read_matches_read(work):
    f = work / "m"
    data = os.urandom(3 * MiB + 1234)
    f.write_bytes(data)
    with open(f, "rb") as fh, mmap.mmap(fh.fileno(), 0, prot=mmap.PROT_READ) as m:
        assert len(m) == len(data)
        assert m[:] == data
        assert m[MiB:MiB + 10] == data[MiB:MiB + 10]
        assert m.find(data[-100:]) == len(data) - 100


def test_shared_mmap_writes_reach_the_file(work, mount):
    f = work / "shared"
    f.write_bytes(b"." * (2 * MiB))
    with open(f, "r+b") as fh:
        with mmap.mmap(fh.fileno(), 0, flags=mmap.MAP_SHARED) as m:
            m[0:5] = b"first"
            m[MiB:MiB + 6] = b"middle"
            m[-4:] = b"last"
            m.flush()                                   # msync(MS_SYNC)
            fd = os.open(f, os.O_RDONLY)                # visible to read() right away
            try:
                assert os.pread(fd, 5, 0) == b"first"
                assert os.pread(fd, 6, MiB) == b"middle"
            finally:
                os.close(fd)
            m[100:103] = b"xyz"                         # written, not flushed before close
    expected = bytearray(b"." * (2 * MiB))
    expected[0:5], expected[MiB:MiB + 6], expected[-4:], expected[100:103] = (
        b"first", b"middle", b"last", b"xyz")
    assert f.read_bytes() == expected
    # a file created and written only through a mapping
    g = work / "fresh"
    fd = os.open(g, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.ftruncate(fd, 256 * 1024)
        with mmap.mmap(fd, 256 * 1024) as m:
            for i in range(0, 256 * 1024, 4096):
                m[i:i + 8] = b"%08d" % i
    finally:
        os.close(fd)
    want = bytearray(256 * 1024)
    for i in range(0, 256 * 1024, 4096):
        want[i:i + 8] = b"%08d" % i
    assert g.read_bytes() == want
    mount.remount()                                       # the daemon, not only the page cache
    assert f.read_bytes() == expected
    assert g.read_bytes() == want


# -- extended attributes --------------------------------------------------------------------------
def test_xattr_tools_set_get_list_remove(work):
    f = work / "x"
    f.write_text("x")
    run(["setfattr", "-n", "user.color", "-v", "blue", str(f)])
    run(["setfattr", "-n", "user.empty", str(f)])
    assert run(["getfattr", "-n", "user.color", "--only-values", str(f)]).stdout == "blue"
    dump = run(["getfattr", "-d", str(f)]).stdout
    assert 'user.color="blue"' in dump and "user.empty" in dump
    run(["setfattr", "-x", "user.color", str(f)])
    r = run(["getfattr", "-n", "user.color", str(f)], check=False)
    assert r.returncode != 0 and "No such attribute" in r.stderr
    assert os.listxattr(f) == ["user.empty"] and os.getxattr(f, "user.empty") == b""
    (work / "d").mkdir()
    os.setxattr(work / "d", "user.on-a-dir", b"yes")
    assert os.getxattr(work / "d", "user.on-a-dir") == b"yes"
    os.setxattr(f, "trusted.root-only", b"t")         # root may use trusted.*
    assert os.getxattr(f, "trusted.root-only") == b"t"


def test_xattr_flags_errors_and_limits(work):
    f = work / "x"
    f.write_text("x")
    os.setxattr(f, "user.a", b"1")
    assert errno_of(os.setxattr, f, "user.a", b"2", os.XATTR_CREATE) == errno.EEXIST
    assert errno_of(os.setxattr, f, "user.b", b"2", os.XATTR_REPLACE) == errno.ENODATA
    assert os.getxattr(f, "user.a") == b"1" and os.listxattr(f) == ["user.a"]
    os.setxattr(f, "user.a", b"3", os.XATTR_REPLACE)
    os.setxattr(f, "user.b", b"4", os.XATTR_CREATE)
    assert (os.getxattr(f, "user.a"), os.getxattr(f, "user.b")) == (b"3", b"4")
    assert errno_of(os.getxattr, f, "user.missing") == errno.ENODATA
    assert errno_of(os.removexattr, f, "user.missing") == errno.ENODATA
    binary = bytes(range(256)) * 4
    os.setxattr(f, "user.binary", binary)
    assert os.getxattr(f, "user.binary") == binary
    os.setxattr(f, "user.max", b"v" * 65536)            # XATTR_SIZE_MAX
    assert os.getxattr(f, "user.max") == b"v" * 65536
    assert errno_of(os.setxattr, f, "user.over", b"v" * 65537) == errno.E2BIG
    assert errno_of(os.getxattr, f, "user.over") == errno.ENODATA
    os.setxattr(f, "user." + "n" * 250, b"long name")
    assert os.getxattr(f, "user." + "n" * 250) == b"long name"
    assert errno_of(os.setxattr, f, "user." + "n" * 251, b"x") == errno.ERANGE
    assert errno_of(os.setxattr, f, "nonamespace", b"x") == errno.EOPNOTSUPP
    os.symlink("x", work / "lnk")
    assert errno_of(os.setxattr, work / "lnk", "user.x", b"1", follow_symlinks=False) == errno.EPERM
    os.removexattr(f, "user.a")
    assert sorted(os.listxattr(f)) == sorted(["user.b", "user.binary", "user.max",
                                              "user." + "n" * 250])
    os.unlink(f)                                        # the xattrs go with the inode
    f.write_text("again")
    assert os.listxattr(f) == []


# -- attributes -----------------------------------------------------------------------------------
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


_libc = ctypes.CDLL(None, use_errno=True)


def utimensat(path, atime: tuple[int, int], mtime: tuple[int, int]) -> None:
    times = (Timespec * 2)(Timespec(*atime), Timespec(*mtime))
    if _libc.utimensat(-100, os.fsencode(path), times, 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), str(path))


def test_chmod_and_chown(work):
    f = work / "f"
    f.write_text("x")
    run(["chmod", "0640", str(f)])
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o640
    run(["chmod", "u+x,g+s,o+t", str(f)])
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o3740
    os.chmod(f, 0o600)
    run(["chown", "1234:5678", str(f)])
    s = os.stat(f)
    assert (s.st_uid, s.st_gid, stat.S_IMODE(s.st_mode)) == (1234, 5678, 0o600)
    os.chown(f, -1, 42)
    assert (os.stat(f).st_uid, os.stat(f).st_gid) == (1234, 42)
    os.symlink("f", work / "l")
    run(["chown", "-h", "777:888", str(work / "l")])
    assert (os.lstat(work / "l").st_uid, os.lstat(work / "l").st_gid) == (777, 888)
    assert os.stat(f).st_uid == 1234                    # the target was not touched
    (work / "d").mkdir()
    os.chmod(work / "d", 0o2775)
    os.chown(work / "d", 0, 4321)
    (work / "d/child").write_text("c")
    os.mkdir(work / "d/subdir")
    # a setgid directory passes its group (and, to subdirectories, the bit) down
    assert os.stat(work / "d/child").st_gid == 4321
    assert os.stat(work / "d/subdir").st_gid == 4321
    assert os.stat(work / "d/subdir").st_mode & stat.S_ISGID
    ctime = os.stat(f).st_ctime_ns
    time.sleep(0.05)                                    # past a coarse kernel clock tick
    os.chmod(f, 0o644)
    assert os.stat(f).st_ctime_ns > ctime


def test_utimens_touch_and_utime_omit(work):
    f = work / "f"
    f.write_text("x")
    run(["touch", "-d", "2001-02-03 04:05:06.123456789 UTC", str(f)])
    s = os.stat(f)
    want = 981173106_123456789
    assert s.st_mtime_ns == want and s.st_atime_ns == want
    run(["touch", "-m", "-d", "2002-01-01 00:00:00.5 UTC", str(f)])      # atime: UTIME_OMIT
    s = os.stat(f)
    assert s.st_mtime_ns == 1009843200_500000000 and s.st_atime_ns == want
    run(["touch", "-a", "-d", "2003-01-01 00:00:00 UTC", str(f)])        # mtime: UTIME_OMIT
    s = os.stat(f)
    assert s.st_atime_ns == 1041379200_000000000 and s.st_mtime_ns == 1009843200_500000000
    os.utime(f, ns=(111_000_000_001, 222_000_000_002))
    s = os.stat(f)
    assert (s.st_atime_ns, s.st_mtime_ns) == (111_000_000_001, 222_000_000_002)
    utimensat(f, (0, UTIME_OMIT), (333, 444))
    s = os.stat(f)
    assert (s.st_atime_ns, s.st_mtime_ns) == (111_000_000_001, 333_000_000_444)
    utimensat(f, (555, 666), (0, UTIME_OMIT))
    s = os.stat(f)
    assert (s.st_atime_ns, s.st_mtime_ns) == (555_000_000_666, 333_000_000_444)
    ctime = s.st_ctime_ns
    utimensat(f, (0, UTIME_OMIT), (0, UTIME_OMIT))       # both omitted: nothing changes
    assert os.stat(f).st_mtime_ns == 333_000_000_444
    before = time.time_ns()
    utimensat(f, (0, UTIME_NOW), (0, UTIME_OMIT))
    s = os.stat(f)
    assert s.st_atime_ns >= before - 10**9 and s.st_mtime_ns == 333_000_000_444
    assert s.st_ctime_ns >= ctime
    os.utime(f)                                         # both now
    assert os.stat(f).st_mtime_ns >= before - 10**9
    # a write moves mtime forward from a date in the past
    os.utime(f, ns=(0, 0))
    with open(f, "a") as fh:
        fh.write("more")
    assert os.stat(f).st_mtime_ns >= before - 10**9


def test_utimens_survive_remount(work, mount):
    f = work / "f"
    f.write_text("x")
    (work / "d").mkdir()
    os.utime(f, ns=(1_000_000_007, 2_000_000_009))
    os.utime(work / "d", ns=(3_000_000_001, 4_000_000_003))
    mount.remount()
    assert (os.stat(f).st_atime_ns, os.stat(f).st_mtime_ns) == (1_000_000_007, 2_000_000_009)
    assert os.stat(work / "d").st_mtime_ns == 4_000_000_003


# -- statfs ---------------------------------------------------------------------------------------
def test_statfs_via_df_and_statvfs(mount):
    v = os.statvfs(mount.mnt)
    assert v.f_namemax == 255
    assert v.f_bsize > 0 and v.f_frsize > 0
    assert v.f_blocks > 0 and 0 <= v.f_bavail <= v.f_bfree <= v.f_blocks
    assert v.f_files >= v.f_ffree > 0
    r = run(["df", "-P", "-T", str(mount.mnt)])
    last = r.stdout.splitlines()[-1].split()
    assert last[1] == "fuse.nexusfs" and last[-1] == str(mount.mnt)
    assert int(last[2]) > 0
    r = run(["df", "-i", str(mount.mnt)])
    assert r.stdout.splitlines()[-1].split()[-1] == str(mount.mnt)
    r = run(["stat", "-f", "-c", "%l %T", str(mount.mnt)])
    assert r.stdout.split()[0] == "255"


# -- large sequential writes mixed with truncates and overwrites ----------------------------------
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_streamed_writes_truncates_and_overwrites_match_a_model(work, mount, seed):
    """Sequential writes past the streaming threshold (8 MiB), interleaved with ftruncate,
    overwrites behind and past the end, fsync and reopen; content must always match a model."""
    rnd = random.Random(seed)
    f = work / "model"
    model = bytearray()
    fd = os.open(f, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        for step in range(40):
            op = rnd.random() if len(model) < 48 * MiB else 0.6
            if op < 0.5:                               # append 1-12 MiB in 256 KiB writes
                data = rnd.randbytes(rnd.choice([1, 2, 3, 9, 12]) * MiB + rnd.randrange(4096))
                pos = len(model)
                for off in range(0, len(data), 256 * 1024):
                    os.pwrite(fd, data[off:off + 256 * 1024], pos + off)
                model += data
            elif op < 0.65:                            # truncate (mostly down)
                size = rnd.randrange(0, len(model) + MiB + 1)
                os.ftruncate(fd, size)
                model = model[:size] + bytes(max(0, size - len(model)))
            elif op < 0.85:                            # overwrite somewhere, maybe past the end
                pos = rnd.randrange(0, len(model) + 2 * MiB + 1)
                data = rnd.randbytes(rnd.randrange(1, 300_000))
                os.pwrite(fd, data, pos)
                if pos > len(model):
                    model += bytes(pos - len(model))
                model[pos:pos + len(data)] = data
            elif op < 0.93:
                os.fsync(fd)
            else:                                      # close and reopen
                os.close(fd)
                fd = os.open(f, os.O_RDWR)
            if step % 8 == 7:
                assert os.fstat(fd).st_size == len(model)
                assert f.read_bytes() == model, f"content differs after step {step}"
    finally:
        os.close(fd)
    assert f.read_bytes() == model
    digest = hashlib.sha256(model).hexdigest()
    mount.remount()
    assert os.stat(f).st_size == len(model)
    got = f.read_bytes()
    if hashlib.sha256(got).hexdigest() != digest:
        first = next(i for i in range(len(model)) if got[i:i + 1] != model[i:i + 1])
        pytest.fail(f"after remount the content differs from byte {first} "
                    f"(size {len(model)}, got size {len(got)})")
