"""Names: lookup, mkdir/rmdir, mknod, symlinks, hard links, unlink, rename, readdir, limits."""
from __future__ import annotations

import errno
import stat as st

import pytest
from corelib import ROOT, USER, lookup, make_file, mkdir, read_file

from nexusfs.core.fs import RENAME_EXCHANGE, RENAME_NOREPLACE
from nexusfs.types import ROOT_INO, FsError


def err(excinfo) -> int:
    return excinfo.value.errno


async def nlink(fs, ino) -> int:
    return (await fs.getattr(ino)).nlink


async def names(fs, ino) -> list[bytes]:
    fh = await fs.opendir(ino, ROOT)
    try:
        return [e.name for e in await fs.readdir(fh, 0, 100000) if e.name not in (b".", b"..")]
    finally:
        await fs.releasedir(fh)


# -- lookup ---------------------------------------------------------------------------------------
async def test_lookup_counts_references(fs):
    ino = await make_file(fs, b"f")
    assert ino not in fs.lookups
    a = await fs.lookup(ROOT_INO, b"f", ROOT)
    b = await fs.lookup(ROOT_INO, b"f", ROOT)
    assert a.ino == b.ino == ino
    assert fs.lookups[ino] == 2
    fs.forget([(ino, 1)])
    assert fs.lookups[ino] == 1
    fs.forget([(ino, 1)])
    assert ino not in fs.lookups


async def test_lookup_errors(fs):
    with pytest.raises(FsError) as e:
        await fs.lookup(ROOT_INO, b"missing", ROOT)
    assert err(e) == errno.ENOENT
    f = await make_file(fs, b"f")
    with pytest.raises(FsError) as e:
        await fs.lookup(f, b"x", ROOT)
    assert err(e) == errno.ENOTDIR
    with pytest.raises(FsError) as e:
        await fs.getattr(987654)
    assert err(e) == errno.ENOENT


async def test_lookup_dot_and_dotdot(fs):
    d = await mkdir(fs, ROOT_INO, b"d")
    assert (await fs.lookup(d, b".", ROOT)).ino == d
    assert (await fs.lookup(d, b"..", ROOT)).ino == ROOT_INO
    assert (await fs.lookup(ROOT_INO, b"..", ROOT)).ino == ROOT_INO
    fs.forget([(d, 1), (ROOT_INO, 2)])


# -- mkdir / rmdir / mknod ------------------------------------------------------------------------
async def test_mkdir_rmdir_nlink(fs):
    assert await nlink(fs, ROOT_INO) == 2
    a = await fs.mkdir(ROOT_INO, b"a", 0o750, ROOT)
    assert st.S_ISDIR(a.mode) and st.S_IMODE(a.mode) == 0o750 and a.nlink == 2
    assert await nlink(fs, ROOT_INO) == 3
    b = await mkdir(fs, a.ino, b"b")
    await make_file(fs, b"file", parent=a.ino)              # files do not count
    assert await nlink(fs, a.ino) == 3
    with pytest.raises(FsError) as e:
        await fs.mkdir(ROOT_INO, b"a", 0o755, ROOT)
    assert err(e) == errno.EEXIST
    with pytest.raises(FsError) as e:
        await fs.rmdir(ROOT_INO, b"a", ROOT)
    assert err(e) == errno.ENOTEMPTY
    await fs.rmdir(a.ino, b"b", ROOT)
    assert fs.meta.get_attr(b) is None
    assert await nlink(fs, a.ino) == 2
    await fs.unlink(a.ino, b"file", ROOT)
    await fs.rmdir(ROOT_INO, b"a", ROOT)
    assert await nlink(fs, ROOT_INO) == 2
    assert (await fs.getattr(a.ino)).nlink == 0             # the kernel still holds it
    fs.forget([(a.ino, 1)])
    assert fs.meta.get_attr(a.ino) is None


async def test_rmdir_errors(fs):
    await make_file(fs, b"f")
    await mkdir(fs, ROOT_INO, b"d")
    for name, code in [(b"f", errno.ENOTDIR), (b"missing", errno.ENOENT), (b".", errno.EINVAL),
                       (b"..", errno.ENOTEMPTY)]:
        with pytest.raises(FsError) as e:
            await fs.rmdir(ROOT_INO, name, ROOT)
        assert err(e) == code, name
    with pytest.raises(FsError) as e:
        await fs.unlink(ROOT_INO, b"d", ROOT)
    assert err(e) == errno.EISDIR
    with pytest.raises(FsError) as e:
        await fs.unlink(ROOT_INO, b"missing", ROOT)
    assert err(e) == errno.ENOENT


async def test_create_in_removed_directory(fs):
    f = await make_file(fs, b"f", b"data")
    await mkdir(fs, ROOT_INO, b"sub")
    d = await fs.mkdir(ROOT_INO, b"d", 0o755, ROOT)      # keep the kernel reference
    await fs.rmdir(ROOT_INO, b"d", ROOT)
    for call in (fs.mkdir(d.ino, b"x", 0o755, ROOT), fs.create(d.ino, b"y", 0o644, 0, ROOT),
                 fs.symlink(d.ino, b"z", b"t", ROOT), fs.mknod(d.ino, b"n", 0o644, 0, ROOT),
                 fs.link(f, d.ino, b"l", ROOT),
                 fs.rename(ROOT_INO, b"f", d.ino, b"f", 0, ROOT),
                 fs.rename(ROOT_INO, b"sub", d.ino, b"sub", 0, ROOT)):
        with pytest.raises(FsError) as e:
            await call
        assert err(e) == errno.ENOENT
    assert await names(fs, d.ino) == []
    fs.forget([(d.ino, 1)])
    assert await lookup(fs, ROOT_INO, b"f") == f
    assert await read_file(fs, f) == b"data"


async def test_mknod(fs):
    fifo = await fs.mknod(ROOT_INO, b"fifo", st.S_IFIFO | 0o600, 0, USER)
    assert st.S_ISFIFO(fifo.mode) and fifo.uid == USER.uid
    reg = await fs.mknod(ROOT_INO, b"reg", 0o600, 0, ROOT)    # no type: a regular file
    assert st.S_ISREG(reg.mode)
    dev = await fs.mknod(ROOT_INO, b"null", st.S_IFCHR | 0o666, 0x0103, ROOT)
    assert dev.rdev == 0x0103
    with pytest.raises(FsError) as e:
        await fs.mknod(ROOT_INO, b"dev2", st.S_IFBLK | 0o600, 0x0801, USER)
    assert err(e) == errno.EPERM
    with pytest.raises(FsError) as e:
        await fs.mknod(ROOT_INO, b"dir", st.S_IFDIR | 0o755, 0, ROOT)
    assert err(e) == errno.EINVAL
    fs.forget([(fifo.ino, 1), (reg.ino, 1), (dev.ino, 1)])


# -- names and limits -----------------------------------------------------------------------------
async def test_name_too_long(fs):
    long = b"n" * 256
    ok = b"n" * 255
    f = await make_file(fs, ok)
    assert await lookup(fs, ROOT_INO, ok) == f
    d = await mkdir(fs, ROOT_INO, b"d")
    calls = [
        lambda: fs.lookup(ROOT_INO, long, ROOT),
        lambda: fs.create(ROOT_INO, long, 0o644, 0, ROOT),
        lambda: fs.mkdir(ROOT_INO, long, 0o755, ROOT),
        lambda: fs.mknod(ROOT_INO, long, 0o644, 0, ROOT),
        lambda: fs.symlink(ROOT_INO, long, b"t", ROOT),
        lambda: fs.link(f, ROOT_INO, long, ROOT),
        lambda: fs.unlink(ROOT_INO, long, ROOT),
        lambda: fs.rmdir(ROOT_INO, long, ROOT),
        lambda: fs.rename(ROOT_INO, ok, d, long, 0, ROOT),
        lambda: fs.rename(ROOT_INO, long, d, b"x", 0, ROOT),
    ]
    for i, call in enumerate(calls):
        with pytest.raises(FsError) as e:
            await call()
        assert err(e) == errno.ENAMETOOLONG, i


async def test_invalid_names(fs):
    for name in (b"", b"a/b", b"a\0b"):
        with pytest.raises(FsError) as e:
            await fs.create(ROOT_INO, name, 0o644, 0, ROOT)
        assert err(e) == errno.EINVAL, name


async def test_create_existing(fs):
    await make_file(fs, b"f")
    with pytest.raises(FsError) as e:
        await fs.create(ROOT_INO, b"f", 0o644, 0, ROOT)
    assert err(e) == errno.EEXIST


async def test_binary_names(fs):
    name = b"caf\xe9 \xff\x01"
    f = await make_file(fs, name, b"x")
    assert await lookup(fs, ROOT_INO, name) == f
    assert await names(fs, ROOT_INO) == [name]


# -- symlinks -------------------------------------------------------------------------------------
async def test_symlink_limits(fs):
    target = b"t" * 4095
    s = await fs.symlink(ROOT_INO, b"s", target, USER)
    assert st.S_ISLNK(s.mode) and s.size == 4095 and s.uid == USER.uid
    assert await fs.readlink(s.ino, ROOT) == target
    with pytest.raises(FsError) as e:
        await fs.symlink(ROOT_INO, b"s2", b"t" * 4096, ROOT)
    assert err(e) == errno.ENAMETOOLONG
    with pytest.raises(FsError) as e:
        await fs.symlink(ROOT_INO, b"s3", b"", ROOT)
    assert err(e) == errno.ENOENT
    with pytest.raises(FsError) as e:
        await fs.symlink(ROOT_INO, b"s", b"x", ROOT)
    assert err(e) == errno.EEXIST
    f = await make_file(fs, b"f")
    with pytest.raises(FsError) as e:
        await fs.readlink(f, ROOT)
    assert err(e) == errno.EINVAL
    fs.forget([(s.ino, 1)])


async def test_symlink_binary_target(fs):
    target = b"../\xff\xfe/\x01 x"
    s = await fs.symlink(ROOT_INO, b"s", target, ROOT)
    assert await fs.readlink(s.ino) == target
    fs.forget([(s.ino, 1)])


# -- hard links -----------------------------------------------------------------------------------
async def test_link_rules(fs):
    f = await make_file(fs, b"f", b"data")
    d = await mkdir(fs, ROOT_INO, b"d")
    attr = await fs.link(f, d, b"g", ROOT)
    assert attr.nlink == 2
    with pytest.raises(FsError) as e:
        await fs.link(d, ROOT_INO, b"d2", ROOT)
    assert err(e) == errno.EPERM
    with pytest.raises(FsError) as e:
        await fs.link(f, d, b"g", ROOT)
    assert err(e) == errno.EEXIST
    with pytest.raises(FsError) as e:
        await fs.link(f, f, b"x", ROOT)
    assert err(e) == errno.ENOTDIR
    s = await fs.symlink(ROOT_INO, b"s", b"f", ROOT)
    assert (await fs.link(s.ino, d, b"s-link", ROOT)).nlink == 2    # symlinks can be linked
    fs.forget([(f, 1), (s.ino, 2)])


async def test_link_to_unlinked_file(fs):
    fh, attr = await fs.create(ROOT_INO, b"f", 0o644, 0, ROOT)
    await fs.unlink(ROOT_INO, b"f", ROOT)
    with pytest.raises(FsError) as e:
        await fs.link(attr.ino, ROOT_INO, b"again", ROOT)
    assert err(e) == errno.ENOENT
    await fs.release(fh)
    fs.forget([(attr.ino, 1)])
    assert fs.meta.get_attr(attr.ino) is None


# -- rename ---------------------------------------------------------------------------------------
async def test_rename_simple_and_across_dirs(fs):
    f = await make_file(fs, b"a", b"content")
    d = await mkdir(fs, ROOT_INO, b"d")
    await fs.rename(ROOT_INO, b"a", ROOT_INO, b"b", 0, ROOT)
    assert await names(fs, ROOT_INO) == [b"d", b"b"]
    await fs.rename(ROOT_INO, b"b", d, b"c", 0, ROOT)
    assert await lookup(fs, d, b"c") == f
    assert await names(fs, ROOT_INO) == [b"d"]
    assert await read_file(fs, f) == b"content"
    assert await nlink(fs, ROOT_INO) == 3 and await nlink(fs, d) == 2


async def test_rename_missing_source(fs):
    with pytest.raises(FsError) as e:
        await fs.rename(ROOT_INO, b"nope", ROOT_INO, b"x", 0, ROOT)
    assert err(e) == errno.ENOENT
    f = await make_file(fs, b"f")
    with pytest.raises(FsError) as e:
        await fs.rename(f, b"x", ROOT_INO, b"y", 0, ROOT)
    assert err(e) == errno.ENOTDIR


async def test_rename_replaces_file(fs):
    a = await make_file(fs, b"a", b"new")
    b = await make_file(fs, b"b", b"old")
    await fs.rename(ROOT_INO, b"a", ROOT_INO, b"b", 0, ROOT)
    assert await lookup(fs, ROOT_INO, b"b") == a
    assert fs.meta.get_attr(b) is None                      # nobody holds the old file
    assert await names(fs, ROOT_INO) == [b"b"]
    assert await read_file(fs, a) == b"new"


async def test_rename_replaced_file_stays_while_open(fs):
    await make_file(fs, b"a", b"new")
    b = await make_file(fs, b"b", b"old")
    import os
    fh = await fs.open(b, os.O_RDONLY, ROOT)
    await fs.rename(ROOT_INO, b"a", ROOT_INO, b"b", 0, ROOT)
    assert await fs.read(fh, 0, 10) == b"old"
    assert (await fs.getattr(b)).nlink == 0
    await fs.release(fh)
    assert fs.meta.get_attr(b) is None


async def test_rename_replaces_hardlinked_file(fs):
    a = await make_file(fs, b"a", b"A")
    b = await make_file(fs, b"b", b"B")
    await fs.link(b, ROOT_INO, b"b2", ROOT)
    fs.forget([(b, 1)])
    await fs.rename(ROOT_INO, b"a", ROOT_INO, b"b", 0, ROOT)
    assert await nlink(fs, b) == 1
    assert await lookup(fs, ROOT_INO, b"b2") == b
    assert await lookup(fs, ROOT_INO, b"b") == a


@pytest.mark.parametrize("across", [False, True])
async def test_rename_replaces_empty_dir(fs, across):
    src_parent = await mkdir(fs, ROOT_INO, b"p1")
    dst_parent = await mkdir(fs, ROOT_INO, b"p2") if across else src_parent
    src = await mkdir(fs, src_parent, b"src")
    await mkdir(fs, src, b"inner")
    dst = await mkdir(fs, dst_parent, b"dst")
    await fs.rename(src_parent, b"src", dst_parent, b"dst", 0, ROOT)
    assert await lookup(fs, dst_parent, b"dst") == src
    assert fs.meta.get_attr(dst) is None
    assert await nlink(fs, src) == 3
    if across:
        assert await nlink(fs, src_parent) == 2
        assert await nlink(fs, dst_parent) == 3
    else:
        assert await nlink(fs, src_parent) == 3
    assert (await fs.lookup(src, b"..", ROOT)).ino == dst_parent
    fs.forget([(dst_parent, 1)])


async def test_rename_onto_nonempty_dir(fs):
    await mkdir(fs, ROOT_INO, b"a")
    b = await mkdir(fs, ROOT_INO, b"b")
    await make_file(fs, b"x", parent=b)
    with pytest.raises(FsError) as e:
        await fs.rename(ROOT_INO, b"a", ROOT_INO, b"b", 0, ROOT)
    assert err(e) == errno.ENOTEMPTY


async def test_rename_type_mismatch(fs):
    await mkdir(fs, ROOT_INO, b"d")
    await make_file(fs, b"f")
    with pytest.raises(FsError) as e:
        await fs.rename(ROOT_INO, b"f", ROOT_INO, b"d", 0, ROOT)
    assert err(e) == errno.EISDIR
    with pytest.raises(FsError) as e:
        await fs.rename(ROOT_INO, b"d", ROOT_INO, b"f", 0, ROOT)
    assert err(e) == errno.ENOTDIR


async def test_rename_noreplace(fs):
    a = await make_file(fs, b"a")
    b = await make_file(fs, b"b")
    with pytest.raises(FsError) as e:
        await fs.rename(ROOT_INO, b"a", ROOT_INO, b"b", RENAME_NOREPLACE, ROOT)
    assert err(e) == errno.EEXIST
    assert await lookup(fs, ROOT_INO, b"a") == a
    assert await lookup(fs, ROOT_INO, b"b") == b
    await fs.rename(ROOT_INO, b"a", ROOT_INO, b"c", RENAME_NOREPLACE, ROOT)
    assert await lookup(fs, ROOT_INO, b"c") == a


async def test_rename_exchange_files(fs):
    a = await make_file(fs, b"a", b"A")
    d = await mkdir(fs, ROOT_INO, b"d")
    b = await make_file(fs, b"b", b"B", parent=d)
    await fs.rename(ROOT_INO, b"a", d, b"b", RENAME_EXCHANGE, ROOT)
    assert await lookup(fs, ROOT_INO, b"a") == b
    assert await lookup(fs, d, b"b") == a
    assert await nlink(fs, ROOT_INO) == 3 and await nlink(fs, d) == 2


async def test_rename_exchange_dir_and_file_across_parents(fs):
    p1 = await mkdir(fs, ROOT_INO, b"p1")
    p2 = await mkdir(fs, ROOT_INO, b"p2")
    sub = await mkdir(fs, p1, b"x")
    f = await make_file(fs, b"y", b"file", parent=p2)
    assert (await nlink(fs, p1), await nlink(fs, p2)) == (3, 2)
    await fs.rename(p1, b"x", p2, b"y", RENAME_EXCHANGE, ROOT)
    assert await lookup(fs, p1, b"x") == f
    assert await lookup(fs, p2, b"y") == sub
    assert (await nlink(fs, p1), await nlink(fs, p2)) == (2, 3)
    assert (await fs.lookup(sub, b"..", ROOT)).ino == p2
    fs.forget([(p2, 1)])
    # and back the other way
    await fs.rename(p2, b"y", p1, b"x", RENAME_EXCHANGE, ROOT)
    assert (await nlink(fs, p1), await nlink(fs, p2)) == (3, 2)


async def test_rename_exchange_dirs_across_parents(fs):
    p1 = await mkdir(fs, ROOT_INO, b"p1")
    p2 = await mkdir(fs, ROOT_INO, b"p2")
    a = await mkdir(fs, p1, b"a")
    b = await mkdir(fs, p2, b"b")
    await make_file(fs, b"inside", parent=a)
    await fs.rename(p1, b"a", p2, b"b", RENAME_EXCHANGE, ROOT)
    assert await lookup(fs, p1, b"a") == b
    assert await lookup(fs, p2, b"b") == a
    assert (await nlink(fs, p1), await nlink(fs, p2)) == (3, 3)
    assert await names(fs, a) == [b"inside"]


async def test_rename_exchange_errors(fs):
    d = await mkdir(fs, ROOT_INO, b"d")
    sub = await mkdir(fs, d, b"sub")
    await make_file(fs, b"f")
    with pytest.raises(FsError) as e:
        await fs.rename(ROOT_INO, b"f", ROOT_INO, b"missing", RENAME_EXCHANGE, ROOT)
    assert err(e) == errno.ENOENT
    with pytest.raises(FsError) as e:        # a directory cannot swap into its own subtree
        await fs.rename(ROOT_INO, b"d", sub, b"x", RENAME_EXCHANGE, ROOT)
    assert err(e) in (errno.EINVAL, errno.ENOENT)
    await make_file(fs, b"x", parent=sub)
    with pytest.raises(FsError) as e:
        await fs.rename(ROOT_INO, b"d", sub, b"x", RENAME_EXCHANGE, ROOT)
    assert err(e) == errno.EINVAL
    with pytest.raises(FsError) as e:
        await fs.rename(sub, b"x", ROOT_INO, b"d", RENAME_EXCHANGE, ROOT)
    assert err(e) == errno.EINVAL
    with pytest.raises(FsError) as e:
        await fs.rename(ROOT_INO, b"f", ROOT_INO, b"d", RENAME_EXCHANGE | RENAME_NOREPLACE, ROOT)
    assert err(e) == errno.EINVAL


async def test_rename_unknown_flag(fs):
    await make_file(fs, b"a")
    with pytest.raises(FsError) as e:
        await fs.rename(ROOT_INO, b"a", ROOT_INO, b"b", 4, ROOT)
    assert err(e) == errno.EINVAL


async def test_rename_dir_into_own_subtree(fs):
    a = await mkdir(fs, ROOT_INO, b"a")
    b = await mkdir(fs, a, b"b")
    c = await mkdir(fs, b, b"c")
    for parent in (a, b, c):
        with pytest.raises(FsError) as e:
            await fs.rename(ROOT_INO, b"a", parent, b"moved", 0, ROOT)
        assert err(e) == errno.EINVAL
    assert await lookup(fs, ROOT_INO, b"a") == a
    # moving a subtree upwards is fine
    await fs.rename(b, b"c", ROOT_INO, b"c", 0, ROOT)
    assert await lookup(fs, ROOT_INO, b"c") == c
    assert await nlink(fs, b) == 2 and await nlink(fs, ROOT_INO) == 4


async def test_rename_same_inode_two_names_is_noop(fs):
    a = await make_file(fs, b"a", b"x")
    await fs.link(a, ROOT_INO, b"b", ROOT)
    fs.forget([(a, 1)])
    await fs.rename(ROOT_INO, b"a", ROOT_INO, b"b", 0, ROOT)
    assert await lookup(fs, ROOT_INO, b"a") == a
    assert await lookup(fs, ROOT_INO, b"b") == a
    assert await nlink(fs, a) == 2


async def test_rename_onto_itself(fs):
    a = await make_file(fs, b"a")
    d = await mkdir(fs, ROOT_INO, b"d")
    await fs.rename(ROOT_INO, b"a", ROOT_INO, b"a", 0, ROOT)
    await fs.rename(ROOT_INO, b"d", ROOT_INO, b"d", 0, ROOT)
    assert await lookup(fs, ROOT_INO, b"a") == a
    assert await lookup(fs, ROOT_INO, b"d") == d
    assert await nlink(fs, ROOT_INO) == 3


async def test_rename_updates_ctime(fs):
    a = await make_file(fs, b"a")
    await fs.setattr(a, ROOT, ctime_ns=1)
    await fs.setattr(ROOT_INO, ROOT, ctime_ns=1, mtime_ns=1)
    await fs.rename(ROOT_INO, b"a", ROOT_INO, b"b", 0, ROOT)
    assert (await fs.getattr(a)).ctime_ns > 1
    root = await fs.getattr(ROOT_INO)
    assert root.mtime_ns > 1 and root.ctime_ns > 1


# -- readdir --------------------------------------------------------------------------------------
async def test_readdir_basics(fs):
    d = await mkdir(fs, ROOT_INO, b"d")
    for i in range(5):
        await make_file(fs, f"f{i}".encode(), bytes(i), parent=d)
    fh = await fs.opendir(d, ROOT)
    entries = await fs.readdir(fh, 0)
    assert [e.name for e in entries] == [b".", b"..", b"f0", b"f1", b"f2", b"f3", b"f4"]
    assert entries[0].attr.ino == d and entries[1].attr.ino == ROOT_INO
    assert [e.attr.size for e in entries[2:]] == [0, 1, 2, 3, 4]
    cookies = [e.next_id for e in entries]
    assert cookies == sorted(set(cookies))
    # resuming after any cookie gives exactly the rest
    for i, e in enumerate(entries):
        assert [x.name for x in await fs.readdir(fh, e.next_id)] == [x.name for x in entries[i + 1:]]
    assert not any(e.attr.ino in fs.lookups for e in entries[2:])   # readdir takes no references
    fs.entry_reported(entries[3])                          # readdirplus does
    assert fs.lookups[entries[3].attr.ino] == 1
    fs.forget([(entries[3].attr.ino, 1)])
    await fs.releasedir(fh)
    with pytest.raises(FsError) as e:
        await fs.readdir(fh, 0)
    assert err(e) == errno.EBADF
    with pytest.raises(FsError) as e:
        await fs.opendir(await lookup(fs, d, b"f0"), ROOT)
    assert err(e) == errno.ENOTDIR


async def test_readdir_shows_dirty_size(fs):
    import os
    fh, attr = await fs.create(ROOT_INO, b"f", 0o644, os.O_WRONLY, ROOT)
    await fs.write(fh, 0, b"12345")
    dh = await fs.opendir(ROOT_INO, ROOT)
    (entry,) = [e for e in await fs.readdir(dh, 0) if e.name == b"f"]
    assert entry.attr.size == 5
    await fs.releasedir(dh)
    await fs.release(fh)
    fs.forget([(attr.ino, 1)])


async def test_readdir_with_concurrent_changes(fs):
    """List 3,000 entries in pages of 100 while deleting entries already returned and adding
    new ones: nothing twice, no stable entry skipped, nothing deleted shows up."""
    d = await mkdir(fs, ROOT_INO, b"big")
    originals = [f"orig-{i:05d}".encode() for i in range(3000)]
    for name in originals:
        attr = await fs.mknod(d, name, st.S_IFREG | 0o644, 0, ROOT)
        fs.forget([(attr.ino, 1)])
    fs.meta.commit()
    fh = await fs.opendir(d, ROOT)
    seen: list[bytes] = []
    deleted: set[bytes] = set()
    added: list[bytes] = []
    cookie = 0
    page_no = 0
    while True:
        page = await fs.readdir(fh, cookie, limit=100)
        if not page:
            break
        assert [e.next_id for e in page] == sorted(e.next_id for e in page)
        assert page[0].next_id > cookie
        for e in page:
            assert e.name not in deleted, e.name
        seen += [e.name for e in page if e.name not in (b".", b"..")]
        cookie = page[-1].next_id
        page_no += 1
        # delete every third name returned so far that is still there
        for name in seen[::3]:
            if name not in deleted:
                await fs.unlink(d, name, ROOT)
                deleted.add(name)
        # delete a few originals not reached yet: they must never show up
        for name in originals[page_no * 100 + 500: page_no * 100 + 503]:
            if name not in deleted:
                await fs.unlink(d, name, ROOT)
                deleted.add(name)
        for k in range(5 if page_no <= 25 else 0):      # (adding forever, the listing never ends)
            name = f"new-{page_no:03d}-{k}".encode()
            attr = await fs.mknod(d, name, st.S_IFREG | 0o644, 0, ROOT)
            fs.forget([(attr.ino, 1)])
            added.append(name)
        if page_no % 7 == 0:
            fs.meta.commit()
    await fs.releasedir(fh)
    assert len(seen) == len(set(seen)), "an entry was returned twice"
    stable = [n for n in originals if n not in deleted]
    missing = set(stable) - set(seen)
    assert not missing, f"{len(missing)} stable entries skipped"
    assert set(seen) <= set(originals) | set(added)
    assert page_no >= 30
    assert set(added) & set(seen)                       # some new entries showed up
    # the directory is consistent afterwards
    assert set(await names(fs, d)) == (set(originals) | set(added)) - deleted
    assert await nlink(fs, d) == 2


async def test_readdir_of_removed_directory(fs):
    d = await fs.mkdir(ROOT_INO, b"d", 0o755, ROOT)
    fh = await fs.opendir(d.ino, ROOT)
    await fs.rmdir(ROOT_INO, b"d", ROOT)
    entries = await fs.readdir(fh, 0)
    assert [e.name for e in entries] == [b".", b".."]
    await fs.releasedir(fh)
    fs.forget([(d.ino, 1)])
