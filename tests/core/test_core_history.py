"""History without a mount: the operation log, versions, time travel, undo (with conflicts and
redo), snapshots (create/list/rename/delete/diff/restore) and rollback, through HistoryService."""
from __future__ import annotations

import errno
import os

import pytest
from corelib import ROOT, USER, lookup, make_file, mkdir, read_file, rnd

from nexusfs.history.service import HistoryService
from nexusfs.types import ROOT_INO, Caller, FsError

AGENT = Caller(uid=0, gid=0, pid=77, agent="bot-1", process="bot")


@pytest.fixture
def hs(fs):
    return HistoryService(fs)


async def rewrite(fs, ino, data, caller=ROOT):
    fh = await fs.open(ino, os.O_RDWR | os.O_TRUNC, caller)
    await fs.write(fh, 0, data)
    await fs.flush(fh)
    await fs.release(fh)


async def test_log_records_caller_and_paths(fs, hs):
    d = await mkdir(fs, ROOT_INO, b"src", caller=AGENT)
    await make_file(fs, b"a.py", b"print(1)\n", parent=d, caller=AGENT)
    await fs.rename(d, b"a.py", d, b"b.py", 0, AGENT)
    with pytest.raises(FsError):
        await fs.unlink(d, b"missing", AGENT)
    recs = await hs.log(agent="bot-1")
    ops = [(r["op"], r["path"]) for r in recs]
    assert ("mkdir", "/src") in ops and ("create", "/src/a.py") in ops
    assert ("write", "/src/a.py") in ops
    ren = [r for r in recs if r["op"] == "rename"][0]
    assert ren["path2"] == "/src/b.py" and ren["process"] == "bot" and ren["pid"] == 77
    failed = [r for r in recs if r["op"] == "unlink"][0]
    assert failed["result"] == errno.ENOENT
    assert [r["op"] for r in await hs.log(path="/src", op="rename")] == ["rename"]
    seqs = [r["seq"] for r in recs]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


async def test_versions_cut_at_close_not_per_write(fs, hs):
    ino = await make_file(fs, b"f.txt", b"one\n")
    fh = await fs.open(ino, os.O_RDWR, ROOT)
    for i in range(50):                       # many write() calls: one version
        await fs.write(fh, 4 + i, b"x")
    await fs.flush(fh)
    await fs.release(fh)
    await rewrite(fs, ino, b"three\n")
    vs = await hs.versions_list("/f.txt")
    assert len(vs) == 3
    assert [await hs.version_read("/f.txt", v["seq"]) for v in vs] == [
        b"one\n", b"one\n" + b"x" * 50, b"three\n"]
    assert vs[0]["name"] < vs[1]["name"] < vs[2]["name"]


async def test_time_travel_reads_old_tree(fs, hs):
    d = await mkdir(fs, ROOT_INO, b"d")
    ino = await make_file(fs, b"f", b"old", parent=d)
    seq = fs.meta.last_seq
    await rewrite(fs, ino, b"new content")
    await fs.unlink(d, b"f", ROOT)
    await make_file(fs, b"g", b"later", parent=d)
    assert await hs.cat_at("/d/f", seq) == b"old"
    assert [e["name"] for e in await hs.ls_at("/d", seq)] == ["f"]
    assert sorted(e["name"] for e in await hs.ls_at("/d", fs.meta.last_seq)) == ["g"]
    with pytest.raises(FsError) as e:
        await hs.cat_at("/d/g", seq)
    assert e.value.errno == errno.ENOENT
    with pytest.raises(FsError) as e:
        await hs.ls_at("/", fs.meta.last_seq + 100)
    assert e.value.errno == errno.ENOENT


async def test_undo_last_write_and_redo(fs, hs):
    ino = await make_file(fs, b"f", b"v1")
    await rewrite(fs, ino, b"version two")
    [u] = await hs.undo(ROOT)
    assert await read_file(fs, ino) == b"v1"
    assert (await fs.getattr(ino)).size == 2
    await hs.undo(ROOT, seq=u["seq"])                 # undo the undo: redo
    assert await read_file(fs, ino) == b"version two"


async def test_undo_unlink_brings_file_back(fs, hs):
    data = rnd(100_000, 5)
    await make_file(fs, b"keep", data)
    await fs.unlink(ROOT_INO, b"keep", ROOT)
    fs._purge_unlinked_all()
    await hs.undo(ROOT)
    ino = await lookup(fs, ROOT_INO, b"keep")
    assert await read_file(fs, ino) == data
    assert (await fs.getattr(ino)).nlink == 1


async def test_undo_rename_and_mkdir(fs, hs):
    d = await mkdir(fs, ROOT_INO, b"a")
    await fs.rename(ROOT_INO, b"a", ROOT_INO, b"b", 0, ROOT)
    await hs.undo(ROOT)
    assert await lookup(fs, ROOT_INO, b"a") == d
    with pytest.raises(FsError):
        await lookup(fs, ROOT_INO, b"b")
    await hs.undo(ROOT)                                # then the mkdir
    with pytest.raises(FsError):
        await lookup(fs, ROOT_INO, b"a")
    assert (await fs.getattr(ROOT_INO)).nlink == 2


async def test_undo_conflict_is_ebusy_unless_forced(fs, hs):
    await make_file(fs, b"f", b"A")
    written = fs.meta.last_seq                     # create, then the write that filled it
    ino = await lookup(fs, ROOT_INO, b"f")
    await rewrite(fs, ino, b"B")
    with pytest.raises(FsError) as e:
        await hs.undo(ROOT, seq=written - 1)       # the create: the file changed since
    assert e.value.errno == errno.EBUSY and f"operation {written} " in e.value.message
    await hs.undo(ROOT, seq=written - 1, force=True)
    with pytest.raises(FsError):
        await lookup(fs, ROOT_INO, b"f")


async def test_undo_errors(fs, hs):
    with pytest.raises(FsError) as e:
        await hs.undo(ROOT)
    assert e.value.errno == errno.EINVAL
    with pytest.raises(FsError) as e:
        await hs.undo(ROOT, seq=9999)
    assert e.value.errno == errno.ENOENT


async def test_undo_by_agent_and_path(fs, hs):
    await make_file(fs, b"mine", b"1", caller=USER)
    await make_file(fs, b"bots", b"2", caller=AGENT)
    await make_file(fs, b"other", b"3", caller=USER)
    await hs.undo(ROOT, agent="bot-1", count=2)       # the bot's write, then its create
    with pytest.raises(FsError):
        await lookup(fs, ROOT_INO, b"bots")
    assert await read_file(fs, await lookup(fs, ROOT_INO, b"mine")) == b"1"
    await hs.undo(ROOT, path="/mine", count=2)
    with pytest.raises(FsError):
        await lookup(fs, ROOT_INO, b"mine")
    await lookup(fs, ROOT_INO, b"other")


async def test_snapshot_create_restore_diff(fs, hs):
    src = await mkdir(fs, ROOT_INO, b"src")
    app = await make_file(fs, b"app.py", b"v1\n", parent=src)
    await make_file(fs, b"util.py", b"u\n", parent=src)
    snap = await hs.snapshot_create("before-refactor", "/", ROOT)
    assert snap["seq"] == fs.meta.last_seq - 1
    await rewrite(fs, app, b"v2 broken\n")
    await fs.unlink(src, b"util.py", ROOT)
    await make_file(fs, b"new.py", b"n\n", parent=src)
    sub = await mkdir(fs, src, b"pkg")
    await make_file(fs, b"x.py", b"x\n", parent=sub)
    changes = {(c["change"], c["path"]) for c in await hs.snapshot_diff("before-refactor", "/src")}
    assert changes == {("modified", "/src/app.py"), ("deleted", "/src/util.py"),
                       ("added", "/src/new.py"), ("added", "/src/pkg")}
    r = await hs.snapshot_restore("before-refactor", "/src", ROOT)
    assert r["changed"] >= 4
    assert await read_file(fs, app) == b"v1\n"
    assert await read_file(fs, await lookup(fs, src, b"util.py")) == b"u\n"
    for gone in (b"new.py", b"pkg"):
        with pytest.raises(FsError):
            await lookup(fs, src, gone)
    assert (await fs.getattr(src)).nlink == 2
    await hs.undo(ROOT)                                # the restore is undoable
    assert await read_file(fs, app) == b"v2 broken\n"
    assert await lookup(fs, sub, b"x.py")


async def test_snapshot_names_and_lifecycle(fs, hs):
    for bad in ("", "a/b", "x" * 129, "sp ace", ".."):
        with pytest.raises(FsError) as e:
            await hs.snapshot_create(bad, "/", ROOT)
        assert e.value.errno == errno.EINVAL
    await hs.snapshot_create("s1", "/", ROOT)
    with pytest.raises(FsError) as e:
        await hs.snapshot_create("s1", "/", ROOT)
    assert e.value.errno == errno.EEXIST
    await hs.snapshot_rename("s1", "s2", ROOT)
    assert [s["name"] for s in await hs.snapshot_list()] == ["s2"]
    await hs.snapshot_delete("s2", ROOT)
    assert await hs.snapshot_list() == []
    with pytest.raises(FsError) as e:
        await hs.snapshot_delete("s2", ROOT)
    assert e.value.errno == errno.ENOENT


async def test_rollback_version(fs, hs):
    ino = await make_file(fs, b"doc", b"first")
    await rewrite(fs, ino, b"second")
    first = (await hs.versions_list("/doc"))[0]["seq"]
    await hs.versions_rollback("/doc", first, ROOT)
    assert await read_file(fs, ino) == b"first"
    assert len(await hs.versions_list("/doc")) == 3


async def test_a_path_keeps_its_history_across_atomic_saves(fs, hs):
    """An editor's save writes a new file and renames it over the old one; a file deleted and
    made again is a new inode too. The path's versions go on across them, each readable, and
    rolling back to a version of an earlier file gives the live file that content (undoable)."""
    await make_file(fs, b"doc.txt", b"v1\n")
    for text in (b"v2\n", b"v3\n"):
        await make_file(fs, b".doc.txt.tmp", text)
        await fs.rename(ROOT_INO, b".doc.txt.tmp", ROOT_INO, b"doc.txt", 0, ROOT)
    vs = await hs.versions_list("/doc.txt")
    contents = [await hs.version_read("/doc.txt", v["seq"]) for v in vs]
    assert contents[0] == b"v1\n" and contents[-1] == b"v3\n" and b"v2\n" in contents
    first = vs[0]["seq"]
    await hs.versions_rollback("/doc.txt", first, ROOT)
    live = await lookup(fs, ROOT_INO, b"doc.txt")
    assert await read_file(fs, live) == b"v1\n"
    assert (await fs.getattr(live, ROOT)).size == 3
    assert len(await hs.versions_list("/doc.txt")) == len(vs) + 1
    await hs.undo(ROOT)
    assert await read_file(fs, live) == b"v3\n"
    await fs.unlink(ROOT_INO, b"doc.txt", ROOT)          # deleted, then made again
    await make_file(fs, b"doc.txt", b"v4\n")
    vs2 = await hs.versions_list("/doc.txt")
    assert [v["seq"] for v in vs2][:len(vs)] == [v["seq"] for v in vs]
    assert await hs.version_read("/doc.txt", vs2[-1]["seq"]) == b"v4\n"


async def test_history_survives_restart(stores, cfg):
    fs = stores.start(cfg)
    ino = await make_file(fs, b"f", b"old")
    seq = fs.meta.last_seq
    await rewrite(fs, ino, b"new")
    await stores.close(fs)
    fs = stores.start(cfg)
    hs = HistoryService(fs)
    assert await hs.cat_at("/f", seq) == b"old"
    assert fs.meta.last_seq > seq
    await hs.undo(ROOT)
    assert await read_file(fs, ino) == b"old"


async def test_retention_forgets_old_history_but_not_snapshots(stores, tmp_path, small_store):
    from nexusfs import config
    from nexusfs.core.gc import collect
    cfg = config.load(tmp_path / "ret", retain_ops=3, **small_store)
    fs = stores.start(cfg)
    hs = HistoryService(fs)
    ino = await make_file(fs, b"f", rnd(50_000, 1))
    await hs.snapshot_create("keep", "/", ROOT)
    first = fs.meta.last_seq
    for i in range(6):
        await rewrite(fs, ino, rnd(50_000, 10 + i))
    fs.garbage_hint = 1
    r = await collect(fs)
    assert r.pruned["log"] > 0 and r.chunks_freed > 0
    with pytest.raises(FsError) as e:
        await hs.cat_at("/f", first)          # past retention: the log is gone
    assert e.value.errno in (errno.ENOENT,)
    assert fs.tt.oldest_seq() > first
    # the snapshot still reads the old content, and the current content is intact
    snap_seq = (await hs.snapshot_list())[0]["seq"]
    assert await fs.read_at(ino, snap_seq) == rnd(50_000, 1)
    assert await read_file(fs, ino) == rnd(50_000, 15)
    with pytest.raises(FsError) as e:
        await hs.undo(ROOT, seq=2)
    assert e.value.errno == errno.EINVAL and "retention" in e.value.message


async def test_gc_keeps_every_retained_version_and_snapshot(stores, cfg):
    """After deletes, overwrites and GC with compaction: fsck is clean and every version the
    history still lists reads back byte for byte."""
    from nexusfs.check import check
    from nexusfs.core.gc import collect
    fs = stores.start(cfg)
    hs = HistoryService(fs)
    contents = {}
    for i in range(4):
        ino = await make_file(fs, f"f{i}".encode(), rnd(40_000, i))
        for k in range(3):
            await rewrite(fs, ino, rnd(30_000 + k, 100 * i + k))
    await hs.snapshot_create("mid", "/", ROOT)
    await fs.unlink(ROOT_INO, b"f0", ROOT)
    await rewrite(fs, await lookup(fs, ROOT_INO, b"f1"), b"short")
    fs._purge_unlinked_all()
    for i in range(4):
        for v in await hs.versions_list(f"/f{i}"):
            contents[(i, v["seq"])] = await hs.version_read(f"/f{i}", v["seq"])
    await fs.sync()
    fs.garbage_hint = 1
    await collect(fs, compact_below=1.01)           # compact every pack
    await fs.sync()
    assert check(cfg) == []
    for (i, seq), data in contents.items():
        assert await hs.version_read(f"/f{i}", seq) == data
    snap = (await hs.snapshot_list())[0]
    assert await hs.cat_at("/f0", snap["seq"]) == rnd(30_002, 2)
