"""Attributes and ownership (setattr, setgid directories) and extended attributes."""
from __future__ import annotations

import errno
import stat as st
import struct

import pytest
from corelib import OTHER, ROOT, USER, make_file, mkdir

from nexusfs.types import ROOT_INO, Caller, FsError

CAPS = b"security.capability"


def err(excinfo) -> int:
    return excinfo.value.errno


async def owned_file(fs, name=b"f", uid=USER.uid, gid=USER.gid, mode=0o644) -> int:
    ino = await make_file(fs, name, b"x")
    await fs.setattr(ino, ROOT, uid=uid, gid=gid, mode=mode)
    return ino


# -- setattr --------------------------------------------------------------------------------------
async def test_new_inode_owner(fs):
    fh, attr = await fs.create(ROOT_INO, b"f", 0o640, 0, USER)
    assert (attr.uid, attr.gid) == (USER.uid, USER.gid)
    assert attr.mode == st.S_IFREG | 0o640
    assert attr.nlink == 1 and attr.size == 0
    await fs.release(fh)
    fs.forget([(attr.ino, 1)])


async def test_chmod_keeps_type(fs):
    ino = await make_file(fs, b"f")
    attr = await fs.setattr(ino, ROOT, mode=0o4711)
    assert attr.mode == st.S_IFREG | 0o4711
    attr = await fs.setattr(ino, ROOT, mode=st.S_IFDIR | 0o600)   # type bits are ignored
    assert attr.mode == st.S_IFREG | 0o600
    d = await mkdir(fs, ROOT_INO, b"d")
    assert (await fs.setattr(d, ROOT, mode=0o1777)).mode == st.S_IFDIR | 0o1777


async def test_chown_by_non_root(fs):
    ino = await owned_file(fs)
    with pytest.raises(FsError) as e:
        await fs.setattr(ino, USER, uid=OTHER.uid)
    assert err(e) == errno.EPERM
    with pytest.raises(FsError) as e:
        await fs.setattr(ino, OTHER, uid=OTHER.uid)
    assert err(e) == errno.EPERM
    # "changing" to the current owner is allowed
    assert (await fs.setattr(ino, USER, uid=USER.uid)).uid == USER.uid
    assert (await fs.getattr(ino)).uid == USER.uid


async def test_chgrp_rules(fs):
    ino = await owned_file(fs)
    member = Caller(uid=USER.uid, gid=USER.gid, groups=(USER.gid, 3000))
    assert (await fs.setattr(ino, member, gid=3000)).gid == 3000      # a group the owner is in
    with pytest.raises(FsError) as e:
        await fs.setattr(ino, member, gid=4000)                       # one they are not in
    assert err(e) == errno.EPERM
    with pytest.raises(FsError) as e:
        await fs.setattr(ino, OTHER, gid=OTHER.gid)                   # not the owner
    assert err(e) == errno.EPERM
    assert (await fs.setattr(ino, ROOT, gid=4000)).gid == 4000


@pytest.mark.parametrize("mode,after", [
    (0o4755, 0o0755),      # setuid always goes
    (0o6755, 0o0755),      # setgid goes with group execute
    (0o2745, 0o2745),      # ... but stays without it (the mandatory-locking marker)
    (0o0755, 0o0755),
])
async def test_chown_clears_setuid(fs, mode, after):
    ino = await owned_file(fs, mode=mode)
    assert st.S_IMODE((await fs.getattr(ino)).mode) == mode
    attr = await fs.setattr(ino, ROOT, uid=OTHER.uid)
    assert st.S_IMODE(attr.mode) == after
    assert st.S_ISREG(attr.mode)


async def test_chgrp_clears_setuid(fs):
    ino = await owned_file(fs, mode=0o4755)
    attr = await fs.setattr(ino, USER, gid=USER.gid)          # no change of group: bits stay
    assert st.S_IMODE(attr.mode) == 0o4755
    attr = await fs.setattr(ino, ROOT, gid=5)
    assert st.S_IMODE(attr.mode) == 0o755


async def test_chown_directory_keeps_bits(fs):
    d = await mkdir(fs, ROOT_INO, b"d")
    await fs.setattr(d, ROOT, mode=0o2775)
    attr = await fs.setattr(d, ROOT, uid=USER.uid, gid=USER.gid)
    assert st.S_IMODE(attr.mode) == 0o2775


async def test_chown_with_mode_uses_given_mode(fs):
    ino = await owned_file(fs, mode=0o4755)
    attr = await fs.setattr(ino, ROOT, uid=OTHER.uid, mode=0o4750)
    assert st.S_IMODE(attr.mode) == 0o4750


async def test_chown_to_the_same_owner_changes_only_ctime(fs):
    """tar and cp -a as root chown every file to the owner it already has: ctime moves (as
    POSIX asks), nothing is logged or versioned; a real change is."""
    ino = await owned_file(fs)
    before = await fs.getattr(ino, ROOT)
    ops = len(await fs.history.log())
    attr = await fs.setattr(ino, ROOT, uid=USER.uid, gid=USER.gid, ctime_ns=before.ctime_ns + 5)
    assert (attr.uid, attr.gid, attr.mode) == (before.uid, before.gid, before.mode)
    assert attr.ctime_ns == before.ctime_ns + 5
    assert len(await fs.history.log()) == ops
    await fs.setattr(ino, ROOT, uid=OTHER.uid)
    assert [r["op"] for r in await fs.history.log()][-1] == "chown"


async def test_chmod_to_the_same_mode_changes_only_ctime(fs):
    """tar restores every file's mode, mostly the one it has: ctime moves, nothing is logged
    or versioned; a real change is, and with an ACL a chmod always takes the full path (it
    moves the mask)."""
    ino = await owned_file(fs, mode=0o640)
    before = await fs.getattr(ino, ROOT)
    ops = len(await fs.history.log())
    attr = await fs.setattr(ino, USER, mode=st.S_IFREG | 0o640, ctime_ns=before.ctime_ns + 7)
    assert attr.mode == before.mode and attr.ctime_ns == before.ctime_ns + 7
    assert len(await fs.history.log()) == ops
    await fs.setattr(ino, USER, mode=0o600)
    assert [r["op"] for r in await fs.history.log()][-1] == "chmod"
    acl = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in (
        (1, 6, 0xFFFFFFFF), (2, 4, 0), (4, 0, 0xFFFFFFFF), (0x10, 4, 0xFFFFFFFF),
        (0x20, 0, 0xFFFFFFFF)))
    await fs.setxattr(ino, b"system.posix_acl_access", acl, USER)
    mode = (await fs.getattr(ino, ROOT)).mode
    ops = len(await fs.history.log())
    await fs.setattr(ino, USER, mode=mode)
    assert len(await fs.history.log()) == ops + 1


async def test_times(fs):
    ino = await make_file(fs, b"f")
    before = await fs.getattr(ino)
    attr = await fs.setattr(ino, ROOT, atime_ns=111, mtime_ns=222)
    assert (attr.atime_ns, attr.mtime_ns) == (111, 222)
    assert attr.ctime_ns >= before.ctime_ns
    attr = await fs.setattr(ino, ROOT, ctime_ns=333)
    assert attr.ctime_ns == 333


async def test_setgid_directory_inheritance(fs):
    shared = await mkdir(fs, ROOT_INO, b"shared", mode=0o2777)
    await fs.setattr(shared, ROOT, gid=50, mode=0o2777)
    f = await make_file(fs, b"f", parent=shared, caller=USER)
    fattr = await fs.getattr(f)
    assert (fattr.uid, fattr.gid) == (USER.uid, 50)
    assert not fattr.mode & st.S_ISGID
    sub = await fs.mkdir(shared, b"sub", 0o755, USER)
    assert sub.gid == 50
    assert sub.mode & st.S_ISGID                                # passed down to directories
    fs.forget([(sub.ino, 1)])
    deeper = await make_file(fs, b"g", parent=sub.ino, caller=OTHER)
    assert (await fs.getattr(deeper)).gid == 50
    node = await fs.mknod(shared, b"fifo", st.S_IFIFO | 0o644, 0, USER)
    assert node.gid == 50
    link = await fs.symlink(shared, b"s", b"f", USER)
    assert link.gid == 50
    fs.forget([(node.ino, 1), (link.ino, 1)])


async def test_no_setgid_uses_caller_group(fs):
    d = await mkdir(fs, ROOT_INO, b"d", mode=0o777)
    await fs.setattr(d, ROOT, gid=50)
    f = await make_file(fs, b"f", parent=d, caller=USER)
    assert (await fs.getattr(f)).gid == USER.gid


async def test_statfs(fs):
    s = await fs.statfs(ROOT)
    assert s.bsize > 0 and s.namemax == 255
    assert s.files >= 1 and s.blocks > 0


# -- xattrs ---------------------------------------------------------------------------------------
async def test_xattr_roundtrip(fs):
    f = await make_file(fs, b"f")
    d = await mkdir(fs, ROOT_INO, b"d")
    for ino in (f, d):
        await fs.setxattr(ino, b"user.one", b"1", USER)
        await fs.setxattr(ino, b"user.empty", b"", USER)
        assert await fs.getxattr(ino, b"user.one", USER) == b"1"
        assert await fs.getxattr(ino, b"user.empty", USER) == b""
        await fs.setxattr(ino, b"user.one", b"uno", USER)        # replace
        assert await fs.getxattr(ino, b"user.one", USER) == b"uno"
        assert sorted(await fs.listxattr(ino, USER)) == [b"user.empty", b"user.one"]
        await fs.removexattr(ino, b"user.one", USER)
        assert await fs.listxattr(ino, USER) == [b"user.empty"]
        with pytest.raises(FsError) as e:
            await fs.getxattr(ino, b"user.one", USER)
        assert err(e) == errno.ENODATA
        with pytest.raises(FsError) as e:
            await fs.removexattr(ino, b"user.one", USER)
        assert err(e) == errno.ENODATA


async def test_xattr_binary_value(fs):
    f = await make_file(fs, b"f")
    value = bytes(range(256)) * 10
    await fs.setxattr(f, b"user.bin", value, ROOT)
    assert await fs.getxattr(f, b"user.bin", ROOT) == value


async def test_xattr_sets_ctime(fs):
    f = await make_file(fs, b"f")
    await fs.setattr(f, ROOT, ctime_ns=1)
    await fs.setxattr(f, b"user.a", b"x", ROOT)
    assert (await fs.getattr(f)).ctime_ns > 1
    await fs.setattr(f, ROOT, ctime_ns=1)
    await fs.removexattr(f, b"user.a", ROOT)
    assert (await fs.getattr(f)).ctime_ns > 1


async def test_xattr_value_size_limit(fs):
    f = await make_file(fs, b"f")
    limit = fs.cfg.xattr_value_max
    assert limit == 64 * 1024
    await fs.setxattr(f, b"user.max", b"v" * limit, ROOT)
    assert len(await fs.getxattr(f, b"user.max", ROOT)) == limit
    with pytest.raises(FsError) as e:
        await fs.setxattr(f, b"user.big", b"v" * (limit + 1), ROOT)
    assert err(e) == errno.E2BIG
    with pytest.raises(FsError) as e:
        await fs.getxattr(f, b"user.big", ROOT)
    assert err(e) == errno.ENODATA


async def test_xattr_name_limits(fs):
    f = await make_file(fs, b"f")
    ok = b"user." + b"n" * 250
    assert len(ok) == 255
    await fs.setxattr(f, ok, b"x", ROOT)
    assert await fs.getxattr(f, ok, ROOT) == b"x"
    long = b"user." + b"n" * 251
    for call in (fs.setxattr(f, long, b"x", ROOT), fs.getxattr(f, long, ROOT),
                 fs.removexattr(f, long, ROOT), fs.setxattr(f, b"", b"x", ROOT)):
        with pytest.raises(FsError) as e:
            await call
        assert err(e) == errno.ERANGE


async def test_xattr_unknown_namespace(fs):
    f = await make_file(fs, b"f")
    for name in (b"os2.name", b"user", b"system.posix_acl_access.x"):
        with pytest.raises(FsError) as e:
            await fs.setxattr(f, name, b"x", ROOT)
        assert err(e) == errno.EOPNOTSUPP, name


async def test_xattr_trusted_namespace(fs):
    f = await owned_file(fs)
    with pytest.raises(FsError) as e:
        await fs.setxattr(f, b"trusted.x", b"1", USER)
    assert err(e) == errno.EPERM
    await fs.setxattr(f, b"trusted.x", b"1", ROOT)
    await fs.setxattr(f, b"user.y", b"2", USER)
    assert await fs.getxattr(f, b"trusted.x", ROOT) == b"1"
    with pytest.raises(FsError) as e:
        await fs.getxattr(f, b"trusted.x", USER)            # invisible to others
    assert err(e) == errno.ENODATA
    assert await fs.listxattr(f, USER) == [b"user.y"]
    assert sorted(await fs.listxattr(f, ROOT)) == [b"trusted.x", b"user.y"]
    with pytest.raises(FsError) as e:
        await fs.removexattr(f, b"trusted.x", USER)
    assert err(e) == errno.EPERM


async def test_xattr_security_namespace(fs):
    f = await owned_file(fs)
    await fs.setxattr(f, b"security.ima", b"sig", USER)   # the owner may
    with pytest.raises(FsError) as e:
        await fs.setxattr(f, b"security.ima", b"other", OTHER)
    assert err(e) == errno.EPERM
    assert await fs.getxattr(f, b"security.ima", OTHER) == b"sig"


async def test_xattr_selinux_label_is_unsupported(fs):
    """As on NFS: EOPNOTSUPP, which ls and cp remember per file system after one ask."""
    f = await owned_file(fs)
    for call in (fs.getxattr(f, b"security.selinux", ROOT),
                 fs.setxattr(f, b"security.selinux", b"ctx", ROOT),
                 fs.removexattr(f, b"security.selinux", ROOT)):
        with pytest.raises(FsError) as e:
            await call
        assert err(e) == errno.EOPNOTSUPP
    fs.meta.set_xattr(f, b"security.selinux", b"old")     # (stored by an earlier version)
    assert b"security.selinux" not in await fs.listxattr(f, ROOT)


async def test_xattr_user_namespace_only_on_files_and_dirs(fs):
    s = await fs.symlink(ROOT_INO, b"s", b"target", ROOT)
    with pytest.raises(FsError) as e:
        await fs.setxattr(s.ino, b"user.x", b"1", ROOT)
    assert err(e) == errno.EPERM
    await fs.setxattr(s.ino, b"trusted.x", b"1", ROOT)
    fs.forget([(s.ino, 1)])


async def test_xattr_missing_inode(fs):
    with pytest.raises(FsError) as e:
        await fs.setxattr(99999, b"user.x", b"1", ROOT)
    assert err(e) == errno.ENOENT
    with pytest.raises(FsError) as e:
        await fs.listxattr(99999, ROOT)
    assert err(e) == errno.ENOENT


class NoSQL:
    """Stands in for the APSW connection: any statement fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"SQL used: conn.{name}")


async def test_security_capability_answered_from_memory(fs):
    f = await make_file(fs, b"f")
    real = fs.meta.conn
    fs.meta.conn = NoSQL()
    try:
        for _ in range(3):
            with pytest.raises(FsError) as e:
                await fs.getxattr(f, CAPS, USER)
            assert err(e) == errno.ENODATA
    finally:
        fs.meta.conn = real


async def test_security_capability_when_present(fs):
    f = await make_file(fs, b"f")
    other = await make_file(fs, b"g")
    await fs.setxattr(f, CAPS, b"\x01\x00\x00\x02", ROOT)
    assert await fs.getxattr(f, CAPS, ROOT) == b"\x01\x00\x00\x02"
    with pytest.raises(FsError) as e:
        await fs.getxattr(other, CAPS, ROOT)
    assert err(e) == errno.ENODATA
    await fs.removexattr(f, CAPS, ROOT)
    real = fs.meta.conn
    fs.meta.conn = NoSQL()
    try:
        with pytest.raises(FsError) as e:
            await fs.getxattr(f, CAPS, ROOT)
        assert err(e) == errno.ENODATA
    finally:
        fs.meta.conn = real


async def test_xattrs_go_with_the_inode(fs):
    f = await make_file(fs, b"f")
    await fs.setxattr(f, b"user.a", b"1", ROOT)
    await fs.setxattr(f, CAPS, b"cap", ROOT)
    await fs.unlink(ROOT_INO, b"f", ROOT)
    assert fs.meta.get_attr(f) is None
    assert fs.meta.list_xattrs(f) == []
    assert f not in fs.rare_xattrs[b"security.capability"]
