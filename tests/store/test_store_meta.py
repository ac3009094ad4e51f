"""db.open_store (creation, reopening, foreign and newer stores, migrations) and MetaStore."""
from __future__ import annotations

import stat as st

import apsw
import pytest

from nexusfs.meta import db
from nexusfs.meta.store import MetaStore
from nexusfs.types import ROOT_INO, ChunkLoc

NOW = 1_700_000_000_000_000_000


def open_meta(tmp_path) -> MetaStore:
    return MetaStore(db.open_store(tmp_path / "meta.db", root_uid=0, root_gid=0))


@pytest.fixture
def meta(tmp_path):
    m = open_meta(tmp_path)
    yield m
    m.close()


def info(conn) -> dict:
    return dict(conn.execute("SELECT key, value FROM store_info").fetchall())


# -- open_store -----------------------------------------------------------------------------------
def test_fresh_store(tmp_path):
    conn = db.open_store(tmp_path / "meta.db", root_uid=1234, root_gid=5678)
    try:
        facts = info(conn)
        assert facts["schema_version"] == db.SCHEMA_VERSION
        assert len(str(facts["store_id"])) == 36
        assert facts["created_ns"] > 0
        assert db.schema_version(conn) == db.SCHEMA_VERSION
        root = MetaStore(conn).get_attr(ROOT_INO)
        assert st.S_ISDIR(root.mode) and st.S_IMODE(root.mode) == 0o755
        assert (root.nlink, root.uid, root.gid, root.size) == (2, 1234, 5678, 0)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"store_info", "inodes", "dentries", "extents", "chunks", "xattrs"} <= tables
    finally:
        conn.close()


def test_reopen_keeps_identity(tmp_path):
    conn = db.open_store(tmp_path / "meta.db", root_uid=0, root_gid=0)
    first = info(conn)
    conn.execute("INSERT INTO inodes (mode, nlink, uid, gid, atime_ns, mtime_ns, ctime_ns)"
                 " VALUES (?, 1, 0, 0, 0, 0, 0)", (st.S_IFREG | 0o644,))
    conn.close()
    conn = db.open_store(tmp_path / "meta.db", root_uid=99, root_gid=99)
    try:
        assert info(conn) == first
        assert conn.execute("SELECT count(*) FROM inodes").fetchone()[0] == 2
        assert MetaStore(conn).get_attr(ROOT_INO).uid == 0     # not re-created
    finally:
        conn.close()


def test_existing_empty_file_becomes_store(tmp_path):
    (tmp_path / "meta.db").write_bytes(b"")
    conn = db.open_store(tmp_path / "meta.db", root_uid=0, root_gid=0)
    try:
        assert db.schema_version(conn) == db.SCHEMA_VERSION
    finally:
        conn.close()


def test_foreign_sqlite_file(tmp_path):
    path = tmp_path / "meta.db"
    other = apsw.Connection(str(path))
    other.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
    other.execute("INSERT INTO photos (name) VALUES ('cat.jpg')")
    other.close()
    with pytest.raises(db.StoreError, match="not a nexusfs store"):
        db.open_store(path, root_uid=0, root_gid=0)
    # untouched
    check = apsw.Connection(str(path))
    try:
        tables = {r[0] for r in check.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert tables == {"photos"}
    finally:
        check.close()


def test_newer_schema_version(tmp_path):
    conn = db.open_store(tmp_path / "meta.db", root_uid=0, root_gid=0)
    conn.execute("UPDATE store_info SET value=? WHERE key='schema_version'", (db.SCHEMA_VERSION + 1,))
    conn.close()
    with pytest.raises(db.StoreError, match="upgrade nexusfs"):
        db.open_store(tmp_path / "meta.db", root_uid=0, root_gid=0)


def test_migration_runs_and_backs_up(tmp_path, monkeypatch):
    path = tmp_path / "meta.db"
    conn = db.open_store(path, root_uid=0, root_gid=0)
    conn.close()
    monkeypatch.setattr(db, "SCHEMA_VERSION", db.SCHEMA_VERSION + 1)
    monkeypatch.setitem(db.MIGRATIONS, db.SCHEMA_VERSION,
                        "CREATE TABLE migrated_marker (x INTEGER)")
    conn = db.open_store(path, root_uid=0, root_gid=0)
    try:
        assert db.schema_version(conn) == db.SCHEMA_VERSION
        conn.execute("SELECT count(*) FROM migrated_marker").fetchone()
        assert (tmp_path / f"meta.db.bak-v{db.SCHEMA_VERSION - 1}").is_file()
    finally:
        conn.close()


# -- MetaStore: transactions ----------------------------------------------------------------------
def test_batch_transaction(tmp_path, meta):
    assert not meta.in_txn
    ino = meta.create_inode(st.S_IFREG | 0o644, 1, 2, NOW)
    assert meta.in_txn
    other = apsw.Connection(str(tmp_path / "meta.db"), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        seen = lambda: other.execute("SELECT count(*) FROM inodes WHERE ino=?", (ino,)).fetchone()[0]
        assert seen() == 0                  # not committed yet
        meta.commit()
        assert not meta.in_txn
        assert seen() == 1
        ino2 = meta.create_inode(st.S_IFREG | 0o644, 1, 2, NOW)
        meta.rollback()
        assert meta.get_attr(ino2) is None
        meta.commit()                        # nothing open: a no-op
        meta.rollback()
    finally:
        other.close()


# -- MetaStore: inodes ----------------------------------------------------------------------------
def test_inode_lifecycle(meta):
    ino = meta.create_inode(st.S_IFREG | 0o640, 10, 20, NOW)
    a = meta.get_attr(ino)
    assert (a.ino, a.mode, a.nlink, a.uid, a.gid, a.size, a.blocks) == (
        ino, st.S_IFREG | 0o640, 1, 10, 20, 0, 0)
    assert a.atime_ns == a.mtime_ns == a.ctime_ns == NOW
    meta.update_attr(ino, size=5000, mtime_ns=NOW + 1)
    meta.update_attr(ino)                    # nothing to do
    a = meta.get_attr(ino)
    assert (a.size, a.mtime_ns) == (5000, NOW + 1)
    meta.add_nlink(ino, 2, NOW + 2)
    a = meta.get_attr(ino)
    assert (a.nlink, a.ctime_ns) == (3, NOW + 2)
    meta.add_nlink(ino, -3, NOW + 3)
    assert meta.orphan_inodes() == [ino]
    meta.set_xattr(ino, b"user.a", b"1")
    meta.delete_inode(ino)
    assert meta.get_attr(ino) is None
    assert meta.list_xattrs(ino) == []
    assert meta.orphan_inodes() == []
    assert meta.get_attr(999999) is None


def test_inode_numbers_never_reused(meta):
    a = meta.create_inode(st.S_IFREG | 0o644, 0, 0, NOW)
    meta.delete_inode(a)
    b = meta.create_inode(st.S_IFREG | 0o644, 0, 0, NOW)
    assert b > a


def test_symlink_and_device(meta):
    ino = meta.create_inode(st.S_IFLNK | 0o777, 0, 0, NOW, target=b"/some/where")
    assert meta.readlink(ino) == b"/some/where"
    assert meta.get_attr(ino).size == len(b"/some/where")
    dev = meta.create_inode(st.S_IFCHR | 0o600, 0, 0, NOW, rdev=0x0103)
    assert meta.get_attr(dev).rdev == 0x0103
    assert meta.readlink(dev) is None
    assert meta.readlink(424242) is None


def test_touch_dir(meta):
    meta.touch_dir(ROOT_INO, NOW + 5, 1)
    a = meta.get_attr(ROOT_INO)
    assert (a.nlink, a.mtime_ns, a.ctime_ns) == (3, NOW + 5, NOW + 5)
    meta.touch_dir(ROOT_INO, NOW + 6)
    assert meta.get_attr(ROOT_INO).nlink == 3


def test_inode_count(meta):
    n = meta.inode_count()
    meta.create_inode(st.S_IFREG | 0o644, 0, 0, NOW)
    assert meta.inode_count() == n + 1


# -- MetaStore: directory entries -----------------------------------------------------------------
def test_dentries(meta):
    d = meta.create_inode(st.S_IFDIR | 0o755, 0, 0, NOW, nlink=2)
    f = meta.create_inode(st.S_IFREG | 0o644, 0, 0, NOW)
    g = meta.create_inode(st.S_IFREG | 0o644, 0, 0, NOW)
    meta.add_dentry(ROOT_INO, b"d", d)
    meta.add_dentry(d, b"f", f)
    assert meta.lookup(ROOT_INO, b"d") == d
    assert meta.lookup(d, b"f") == f
    assert meta.lookup(d, b"F") is None           # names are bytes, case-sensitive
    assert meta.has_children(d) and not meta.has_children(f)
    assert meta.parent_of(d) == ROOT_INO
    assert meta.name_of(f) == (d, b"f")
    assert meta.parent_of(ROOT_INO) is None
    meta.repoint_dentry(d, b"f", g)
    assert meta.lookup(d, b"f") == g
    assert meta.name_of(f) is None
    with pytest.raises(apsw.ConstraintError):
        meta.add_dentry(d, b"f", f)              # one name per directory
    meta.remove_dentry(d, b"f")
    assert meta.lookup(d, b"f") is None
    assert not meta.has_children(d)


def test_names_are_raw_bytes(meta):
    f = meta.create_inode(st.S_IFREG | 0o644, 0, 0, NOW)
    name = b"\xff\xfe latin-1 \xe9 and \x01"
    meta.add_dentry(ROOT_INO, name, f)
    assert meta.lookup(ROOT_INO, name) == f
    assert [n for _, n, _ in meta.list_dir(ROOT_INO, 0, 10)] == [name]


def test_list_dir_pages_in_id_order(meta):
    d = meta.create_inode(st.S_IFDIR | 0o755, 0, 0, NOW, nlink=2)
    names = [f"n{i:03d}".encode() for i in range(25)]
    for i, name in enumerate(reversed(names)):    # insertion order, not name order
        ino = meta.create_inode(st.S_IFREG | 0o644, i, 0, NOW)
        meta.add_dentry(d, name, ino)
    seen, after = [], 0
    while True:
        page = meta.list_dir(d, after, 7)
        if not page:
            break
        assert len(page) <= 7
        ids = [i for i, _, _ in page]
        assert ids == sorted(ids) and ids[0] > after
        for _, name, attr in page:
            assert attr.ino == meta.lookup(d, name)
        seen += [n for _, n, _ in page]
        after = page[-1][0]
    assert seen == list(reversed(names))
    assert meta.list_dir(ROOT_INO, 0, 100) == []


# -- MetaStore: content ---------------------------------------------------------------------------
def chunk(i: int, n: int = 100, pack: int | None = None) -> ChunkLoc:
    cid = bytes([i]) * 32
    if pack is None:
        return ChunkLoc(cid, n, 0, None, None, n, bytes([i]) * n)
    return ChunkLoc(cid, n, 0, pack, 1000 * i, n)


def test_chunks_in_batches(meta):
    """add_chunks / known_chunks: the batch forms the commits use."""
    meta.add_chunks([])                              # nothing: no transaction either
    assert not meta.in_txn
    locs = [chunk(i % 250 + 1, pack=1 + i % 3) for i in range(900)]    # (repeats: ignored)
    meta.add_chunks([(loc, 1 + i % 11) for i, loc in enumerate(locs)])
    assert meta.need_gen == 11
    ids = [loc.id for loc in locs] + [b"\xfe" * 32]
    many = meta.known_chunks(ids)                    # more ids than one query takes
    assert set(many) == {loc.id for loc in locs}
    assert many == {i: meta.known_chunks([i])[i] for i in ids if meta.known_chunks([i])}
    assert (many[chunk(5).id].pack, many[chunk(5).id].offset) == (2, 5000)
    assert meta.known_chunks([]) == {}


def test_chunks_and_extents(meta):
    f = meta.create_inode(st.S_IFREG | 0o644, 0, 0, NOW)
    meta.add_chunk(chunk(1), 0)
    meta.add_chunk(chunk(2, pack=1), 7)
    meta.add_chunk(chunk(3, pack=2), 5)
    assert meta.need_gen == 7
    meta.add_chunk(chunk(1), 0)                      # already known: ignored
    known = meta.known_chunks([chunk(1).id, chunk(2).id, b"\x09" * 32])
    assert set(known) == {chunk(1).id, chunk(2).id}
    assert known[chunk(1).id].data == bytes([1]) * 100 and known[chunk(1).id].pack is None
    assert (known[chunk(2).id].pack, known[chunk(2).id].offset) == (1, 2000)
    meta.replace_extents(f, [], None, [(0, 100, chunk(1).id), (100, 100, chunk(2).id),
                                       (300, 100, chunk(3).id)])
    ext = meta.extents(f)
    assert [(e.offset, e.length, e.end, e.loc.id) for e in ext] == [
        (0, 100, 100, chunk(1).id), (100, 100, 200, chunk(2).id), (300, 100, 400, chunk(3).id)]
    assert ext[1].loc.pack == 1 and ext[1].loc.data is None
    meta.update_attr(f, size=400)
    meta.update_blocks(f)
    assert meta.get_attr(f).blocks == 1              # 300 bytes -> one 512-byte block
    # replace [100, 300) and cut everything from 250 on
    meta.replace_extents(f, [(100, 300)], 250, [(100, 100, chunk(3).id)])
    assert [(e.offset, e.loc.id) for e in meta.extents(f)] == [(0, chunk(1).id), (100, chunk(3).id)]
    assert meta.unreferenced_chunks() == [(chunk(2).id, 1)]
    meta.delete_chunks([chunk(2).id])
    assert meta.known_chunks([chunk(2).id]) == {}
    meta.replace_extents(f, [], 0, [])
    assert meta.extents(f) == []
    meta.update_blocks(f)
    assert meta.get_attr(f).blocks == 0


def test_update_blocks_rounds_up(meta):
    f = meta.create_inode(st.S_IFREG | 0o644, 0, 0, NOW)
    meta.add_chunk(chunk(1, 513), 0)
    meta.add_chunk(chunk(2, 512), 0)
    meta.replace_extents(f, [], None, [(0, 513, chunk(1).id)])
    meta.update_blocks(f)
    assert meta.get_attr(f).blocks == 2
    meta.replace_extents(f, [(0, 1)], None, [(0, 512, chunk(2).id)])
    meta.update_blocks(f)
    assert meta.get_attr(f).blocks == 1


def test_delete_inode_drops_extents(meta):
    f = meta.create_inode(st.S_IFREG | 0o644, 0, 0, NOW)
    meta.add_chunk(chunk(1), 0)
    meta.replace_extents(f, [], None, [(0, 100, chunk(1).id)])
    meta.delete_inode(f)
    assert meta.extents(f) == []
    assert meta.unreferenced_chunks() == [(chunk(1).id, None)]


def test_space_stats(meta):
    base = meta.space_stats()
    a = meta.create_inode(st.S_IFREG | 0o644, 0, 0, NOW)
    b = meta.create_inode(st.S_IFREG | 0o644, 0, 0, NOW)
    d = meta.create_inode(st.S_IFDIR | 0o755, 0, 0, NOW, nlink=2)
    meta.update_attr(d, size=4096)                   # directories do not count as content
    meta.add_chunk(chunk(1), 0)
    meta.add_chunk(ChunkLoc(b"\x02" * 32, 1000, 1, 1, 0, 300), 0)
    meta.replace_extents(a, [], None, [(0, 100, chunk(1).id), (100, 1000, b"\x02" * 32)])
    meta.replace_extents(b, [], None, [(0, 100, chunk(1).id), (5000, 1000, b"\x02" * 32)])
    meta.update_attr(a, size=1100)
    meta.update_attr(b, size=6000)
    s = meta.space_stats()
    assert s["inodes"] == base["inodes"] + 3
    assert s["logical_bytes"] == 7100
    assert s["referenced_bytes"] == 2200
    assert s["unique_bytes"] == 1100
    assert s["stored_bytes"] == 400
    assert s["chunks"] == 2


# -- MetaStore: xattrs ----------------------------------------------------------------------------
def test_xattrs(meta):
    f = meta.create_inode(st.S_IFREG | 0o644, 0, 0, NOW)
    g = meta.create_inode(st.S_IFREG | 0o644, 0, 0, NOW)
    assert meta.get_xattr(f, b"user.a") is None
    meta.set_xattr(f, b"user.b", b"2")
    meta.set_xattr(f, b"user.a", b"")
    meta.set_xattr(g, b"user.a", b"x")
    assert meta.get_xattr(f, b"user.a") == b""
    meta.set_xattr(f, b"user.a", b"1")              # replace
    assert meta.get_xattr(f, b"user.a") == b"1"
    assert meta.list_xattrs(f) == [b"user.a", b"user.b"]
    assert meta.xattr_inodes(b"user.a") == {f, g}
    assert meta.remove_xattr(f, b"user.a") is True
    assert meta.remove_xattr(f, b"user.a") is False
    assert meta.list_xattrs(f) == [b"user.b"]
    assert meta.xattr_inodes(b"user.a") == {g}
    big = bytes(range(256)) * 256
    meta.set_xattr(f, b"user.big", big)
    assert meta.get_xattr(f, b"user.big") == big


def test_kept_xattrs_mirror_every_write_and_a_rollback(meta):
    """keep_xattrs: the values in memory are the table's after each write, after purging an
    inode, and after a rollback (which reloads them); other names are not kept."""
    acl = b"system.posix_acl_access"
    f = meta.create_inode(st.S_IFREG | 0o644, 0, 0, NOW)
    g = meta.create_inode(st.S_IFREG | 0o644, 0, 0, NOW)
    meta.set_xattr(f, acl, b"one")
    meta.commit()
    kept = meta.keep_xattrs([acl])[acl]

    def table() -> dict:
        return dict(meta.conn.execute("SELECT ino, value FROM xattrs WHERE name=?", (acl,)))

    assert kept == table() == {f: b"one"}
    meta.set_xattr(g, acl, b"two")
    meta.set_xattr(f, acl, b"two")
    meta.set_xattr(g, b"user.x", b"not kept")
    assert kept == table() == {f: b"two", g: b"two"}
    meta.commit()
    meta.remove_xattr(f, acl)
    assert kept == table() == {g: b"two"}
    meta.rollback()                                  # the removal is undone, in memory too
    assert kept == table() == {f: b"two", g: b"two"}
    assert meta.keep_xattrs([acl])[acl] is kept     # the same dict, still current
    meta.delete_inode(g)
    assert kept == table() == {f: b"two"}


def test_checkpoint_and_close(tmp_path):
    m = open_meta(tmp_path)
    ino = m.create_inode(st.S_IFREG | 0o644, 0, 0, NOW)
    m.checkpoint()
    assert not m.in_txn
    m.create_inode(st.S_IFREG | 0o644, 0, 0, NOW)
    m.close()                                        # commits the open batch
    m = open_meta(tmp_path)
    try:
        assert m.get_attr(ino) is not None
        assert m.get_attr(ino + 1) is not None
    finally:
        m.close()
