"""Persistence across restarts, crash recovery, corruption detection, the store lock, and a
property test of writes and truncates against a bytearray model."""
from __future__ import annotations

import errno
import os
import shutil
import stat as st
import tempfile
from pathlib import Path

import pytest
import trio
from corelib import (ROOT, USER, create, extents, fsck, lookup, make_file, mkdir,
                     read_fh, read_file, rnd, start_fs, text, write_all)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hst

from nexusfs import config
from nexusfs.meta import db
from nexusfs.types import ROOT_INO, FsError


def err(excinfo) -> int:
    return excinfo.value.errno


# -- persistence ----------------------------------------------------------------------------------
async def test_persistence_across_restart(stores, cfg):
    fs = stores.start(cfg)
    big = rnd(400_000, 1)
    small = b"small file"
    d = await mkdir(fs, ROOT_INO, b"dir")
    sub = await mkdir(fs, d, b"sub")
    f_big = await make_file(fs, b"big", big, parent=d)
    f_small = await make_file(fs, b"small", small, parent=sub)
    f_sparse = await make_file(fs, b"sparse")
    fh = await fs.open(f_sparse, os.O_WRONLY, ROOT)
    await fs.write(fh, 5_000_000, b"end")
    await fs.release(fh)
    await fs.link(f_small, ROOT_INO, b"hard", ROOT)
    fs.forget([(f_small, 1)])
    s = await fs.symlink(d, b"link", b"../small", ROOT)
    fs.forget([(s.ino, 1)])
    await fs.setxattr(f_big, b"user.tag", b"important", ROOT)
    await fs.setattr(f_big, ROOT, mode=0o600, uid=USER.uid, gid=USER.gid, mtime_ns=123456789)
    # an open file with unflushed data at close time is committed by close()
    fh, f_open = await create(fs, b"open-at-close")
    await fs.write(fh, 0, b"pending")
    before = {ino: await fs.getattr(ino) for ino in (d, sub, f_big, f_small, f_sparse, ROOT_INO)}
    await stores.close(fs)

    fs = stores.start(cfg)
    assert await lookup(fs, ROOT_INO, b"dir") == d
    assert await lookup(fs, d, b"sub") == sub
    assert await lookup(fs, d, b"big") == f_big
    assert await lookup(fs, ROOT_INO, b"hard") == f_small
    assert await read_file(fs, f_big) == big
    assert await read_file(fs, f_small) == small
    data = await read_file(fs, f_sparse)
    assert len(data) == 5_000_003 and data.endswith(b"end") and not data[:-3].strip(b"\0")
    assert await read_file(fs, f_open) == b"pending"
    assert await fs.readlink(await lookup(fs, d, b"link"), ROOT) == b"../small"
    assert await fs.getxattr(f_big, b"user.tag", ROOT) == b"important"
    for ino, a in before.items():
        b = await fs.getattr(ino)
        assert (b.mode, b.nlink, b.uid, b.gid, b.size) == (a.mode, a.nlink, a.uid, a.gid, a.size)
    attr = await fs.getattr(f_big)
    assert attr.mtime_ns == 123456789 and attr.mode == st.S_IFREG | 0o600
    assert (await fs.getattr(f_small)).nlink == 2
    # new inode numbers continue after the old ones
    n = await make_file(fs, b"new")
    assert n > max(before)


async def test_unlinked_open_file_gone_after_restart(stores, cfg):
    fs = stores.start(cfg)
    fh, ino = await create(fs, b"tmp")
    await fs.write(fh, 0, rnd(50_000, 2))
    await fs.unlink(ROOT_INO, b"tmp", ROOT)
    await stores.close(fs)                  # still open and looked up: close() purges it
    fs = stores.start(cfg)
    assert fs.meta.get_attr(ino) is None
    assert fs.meta.orphan_inodes() == []


async def test_store_lock(stores, cfg):
    stores.start(cfg)
    with pytest.raises(db.StoreError, match="in use"):
        start_fs(cfg)


async def test_lock_released_after_close(stores, cfg):
    fs = stores.start(cfg)
    await stores.close(fs)
    stores.start(cfg)


async def test_foreign_database_refused(tmp_path, small_store):
    import apsw
    data = tmp_path / "data"
    data.mkdir()
    conn = apsw.Connection(str(data / "meta.db"))
    conn.execute("CREATE TABLE notes (t TEXT)")
    conn.close()
    cfg = config.load(data, **small_store)
    with pytest.raises(db.StoreError):
        start_fs(cfg)
    # and the lock is not left held
    fd = os.open(cfg.lock_path, os.O_RDWR)
    try:
        import fcntl
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)


async def test_garbage_database_refused(tmp_path, small_store):
    data = tmp_path / "data"
    data.mkdir()
    (data / "meta.db").write_bytes(b"this is not an SQLite database at all " * 200)
    with pytest.raises(db.StoreError):
        start_fs(config.load(data, **small_store))


async def test_newer_store_refused(stores, cfg):
    fs = stores.start(cfg)
    await stores.close(fs)
    import apsw
    conn = apsw.Connection(str(cfg.db_path))
    conn.execute("UPDATE store_info SET value=value+1 WHERE key='schema_version'")
    conn.close()
    with pytest.raises(db.StoreError):
        start_fs(cfg)
    conn = apsw.Connection(str(cfg.db_path))
    conn.execute("UPDATE store_info SET value=value-1 WHERE key='schema_version'")
    conn.close()


# -- crash recovery -------------------------------------------------------------------------------
async def test_crash_after_commit(stores, cfg):
    fs = stores.start(cfg)
    kept = rnd(200_000, 3)
    a = await make_file(fs, b"kept", kept)
    d = await mkdir(fs, ROOT_INO, b"d")
    # an unlinked file still open at the crash: an orphan (nlink 0) in the committed state
    fh, orphan = await create(fs, b"orphan")
    await write_all(fs, fh, 0, rnd(100_000, 4))
    await fs.flush(fh)
    await fs.unlink(ROOT_INO, b"orphan", ROOT)
    # a removed directory the kernel still knows: another orphan
    gone = await fs.mkdir(d, b"gone", 0o755, ROOT)
    await fs.rmdir(d, b"gone", ROOT)
    await fs.sync()
    assert orphan in fs.meta.orphan_inodes() and gone.ino in fs.meta.orphan_inodes()
    stores.crash(fs)

    fs = stores.start(cfg)
    assert fs.meta.orphan_inodes() == []
    assert fs.meta.get_attr(orphan) is None and fs.meta.get_attr(gone.ino) is None
    assert extents(fs, orphan) == []
    assert await read_file(fs, a) == kept
    assert await lookup(fs, ROOT_INO, b"d") == d
    assert (await fs.getattr(d)).nlink == 2
    assert fsck(cfg) == []


async def test_crash_loses_only_the_open_batch(stores, cfg):
    fs = stores.start(cfg)
    a = await make_file(fs, b"a", b"committed")
    await fs.sync()
    # everything below stays in the open batch and is lost
    await make_file(fs, b"b", rnd(100_000, 5))
    fh = await fs.open(a, os.O_WRONLY, ROOT)
    await fs.write(fh, 0, b"CHANGED!!")
    await fs.flush(fh)
    await fs.unlink(ROOT_INO, b"a", ROOT)
    await mkdir(fs, ROOT_INO, b"newdir")
    stores.crash(fs)

    fs = stores.start(cfg)
    assert await read_file(fs, await lookup(fs, ROOT_INO, b"a")) == b"committed"
    for name in (b"b", b"newdir"):
        with pytest.raises(FsError) as e:
            await fs.lookup(ROOT_INO, name, ROOT)
        assert err(e) == errno.ENOENT
    assert (await fs.getattr(ROOT_INO)).nlink == 2
    # the store keeps working after recovery
    c = await make_file(fs, b"c", rnd(70_000, 6))
    assert await read_file(fs, c) == rnd(70_000, 6)


async def test_crash_with_dirty_and_spilled_buffers(stores, cfg):
    fs = stores.start(cfg)
    fh, ino = await create(fs, b"f")
    await fs.write(fh, 0, b"first")
    await fs.flush(fh)
    await fs.sync()
    await fs.write(fh, 0, rnd(300_000, 7))                  # spilled to DATA_DIR/tmp, never committed
    (cfg.spill_dir / "spill-leftover").write_bytes(b"x" * 100)   # as if a temp file survived
    stores.crash(fs)

    fs = stores.start(cfg)
    assert list(cfg.spill_dir.iterdir()) == []
    assert await read_file(fs, ino) == b"first"


async def test_crash_snapshot_of_files_mid_batch(stores, cfg, tmp_path, small_store):
    """Copy the data directory's files while a batch is open (what the disk holds when the
    process dies) and start a second store from the copy."""
    fs = stores.start(cfg)
    data = rnd(300_000, 8)
    await make_file(fs, b"a", data)
    await fs.sync()
    fh, b = await create(fs, b"b")
    await write_all(fs, fh, 0, rnd(200_000, 9))
    await fs.flush(fh)                                       # in the batch, not committed
    copy_dir = tmp_path / "copy"
    copy_dir.mkdir()
    for name in ("meta.db", "meta.db-wal"):
        if (cfg.data_dir / name).exists():
            shutil.copy2(cfg.data_dir / name, copy_dir / name)
    shutil.copytree(cfg.pack_dir, copy_dir / "packs")
    await fs.release(fh)
    fs.forget([(b, 1)])

    copy_cfg = config.load(copy_dir, **small_store)
    fs2 = stores.start(copy_cfg)
    assert await read_file(fs2, await lookup(fs2, ROOT_INO, b"a")) == data
    with pytest.raises(FsError):
        await fs2.lookup(ROOT_INO, b"b", ROOT)
    assert fsck(copy_cfg) == []


# -- corruption -----------------------------------------------------------------------------------
def flip(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x5A]))


@pytest.mark.parametrize("kind", ["raw", "zstd"])
async def test_corrupt_pack_chunk_reads_eio(fs, kind):
    data = rnd(120_000, 10) if kind == "raw" else text(120_000, 10)
    ino = await make_file(fs, b"f", data)
    await fs.sync()
    exts = fs.meta.extents(ino)
    packed = [e for e in exts if e.loc.pack is not None and e.offset > 0]
    assert packed
    victim = packed[len(packed) // 2]
    assert victim.loc.codec == (0 if kind == "raw" else 1)
    pack = fs.cfg.pack_dir / f"{victim.loc.pack:08d}.pack"
    where = victim.loc.offset + victim.loc.stored_len // 2
    flip(pack, where)
    fs.content.cache.clear()
    fh = await fs.open(ino, os.O_RDONLY, ROOT)
    try:
        with pytest.raises(FsError) as e:
            await fs.read(fh, victim.offset, victim.length)
        assert err(e) == errno.EIO
        with pytest.raises(FsError) as e:            # any read touching the chunk
            await fs.read(fh, victim.offset - 10, 20)
        assert err(e) == errno.EIO
        with pytest.raises(FsError):                 # again: a failure is never cached as data
            await read_fh(fs, fh)
        # the rest of the file is fine
        assert await fs.read(fh, 0, exts[0].length) == data[:exts[0].length]
        assert any(victim.loc.id.hex()[:16] in p for p in fsck(fs.cfg))
    finally:
        await fs.release(fh)
        flip(pack, where)                            # repair: the fixture's fsck must pass
    fs.content.cache.clear()
    assert await read_file(fs, ino) == data


async def test_corrupt_inline_chunk_reads_eio(fs):
    data = rnd(300, 11)                              # one inline chunk
    ino = await make_file(fs, b"f", data)
    (e,) = fs.meta.extents(ino)
    assert e.loc.data is not None
    bad = bytes([e.loc.data[0] ^ 1]) + e.loc.data[1:]
    fs.meta._w().execute("UPDATE chunks SET data=? WHERE id=?", (bad, e.loc.id))
    fs.content.forget(ino)
    fs.content.cache.clear()
    with pytest.raises(FsError) as exc:
        await read_file(fs, ino)
    assert exc.value.errno == errno.EIO
    fs.meta._w().execute("UPDATE chunks SET data=? WHERE id=?", (e.loc.data, e.loc.id))
    fs.content.forget(ino)
    assert await read_file(fs, ino) == data


async def test_truncated_pack_reads_eio(fs):
    data = rnd(100_000, 12)
    ino = await make_file(fs, b"f", data)
    await fs.sync()
    last = fs.meta.extents(ino)[-1]
    assert last.loc.pack is not None
    pack = fs.cfg.pack_dir / f"{last.loc.pack:08d}.pack"
    saved = pack.read_bytes()
    os.truncate(pack, last.loc.offset + 10)
    fs.content.cache.clear()
    fs.packs.close_readers()
    try:
        with pytest.raises(FsError) as e:
            await read_file(fs, ino, last.offset, last.length)
        assert err(e) == errno.EIO
    finally:
        pack.write_bytes(saved)


# -- property test --------------------------------------------------------------------------------
ops = hst.lists(
    hst.one_of(
        hst.tuples(hst.just("write"), hst.integers(0, 150_000), hst.integers(1, 40_000),
                   hst.sampled_from(["random", "zeros", "text"]), hst.integers(0, 10**6)),
        hst.tuples(hst.just("append"), hst.integers(1, 120_000),
                   hst.sampled_from(["random", "zeros", "text"]), hst.integers(0, 10**6)),
        hst.tuples(hst.just("trunc"), hst.integers(0, 160_000)),
        hst.tuples(hst.just("commit")),
        hst.tuples(hst.just("sync")),
        hst.tuples(hst.just("reopen")),
    ),
    min_size=1, max_size=14)


def payload(kind: str, n: int, seed: int) -> bytes:
    if kind == "zeros":
        return bytes(n)
    if kind == "text":
        return text(n, seed)
    return rnd(n, seed)


GEOMETRIES = {
    # small buffers spill to a temp file early
    "spilling": dict(chunk_min=1024, chunk_avg=4096, chunk_max=16384, inline_max=2048,
                     spill_threshold=64 * 1024),
    # buffers stay in memory and sequential writers stream chunks out in the background
    "streaming": dict(chunk_min=1024, chunk_avg=4096, chunk_max=16384, inline_max=2048,
                      spill_threshold=8 << 20, stream_commit=32 * 1024),
}


async def run_model(data_dir: Path, geometry: str, sequence) -> None:
    overrides = GEOMETRIES[geometry]
    cfg = config.load(data_dir, **overrides)
    if geometry == "streaming" and getattr(cfg, "stream_commit", None) != 32 * 1024:
        pytest.skip("no streaming commits")
    fs = start_fs(cfg)
    try:
        fh, ino = await create(fs, b"model")
        fs.forget([(ino, 1)])
        model = bytearray()
        for op in sequence:
            if op[0] == "write":
                _, off, n, kind, seed = op
                data = payload(kind, n, seed)
                await fs.write(fh, off, data)
                if off > len(model):
                    model += bytes(off - len(model))
                model[off:off + n] = data
            elif op[0] == "append":                    # a sequential writer, as cp does it
                _, n, kind, seed = op
                data = payload(kind, n, seed)
                for pos in range(0, n, 8192):
                    await fs.write(fh, len(model) + pos, data[pos:pos + 8192])
                    await trio.sleep(0)                   # let background commits run
                model += data
            elif op[0] == "trunc":
                await fs.setattr(ino, ROOT, size=op[1], fh=fh)
                if op[1] < len(model):
                    del model[op[1]:]
                else:
                    model += bytes(op[1] - len(model))
            elif op[0] == "commit":
                await fs.flush(fh)
            elif op[0] == "sync":
                await fs.fsync(fh)
            else:
                await fs.release(fh)
                fh = await fs.open(ino, os.O_RDWR, ROOT)
            assert (await fs.getattr(ino)).size == len(model)
        assert await read_fh(fs, fh) == model
        await fs.release(fh)
        for e in fs.meta.extents(ino):
            assert e.end <= len(model)
            assert model[e.offset:e.end].count(0) != e.length      # no stored all-zero chunk
        fs.content.cache.clear()
        assert await read_file(fs, ino) == model
    finally:
        await fs.close()
    assert fsck(cfg) == []
    fs = start_fs(cfg)
    try:
        assert await read_file(fs, ino) == model
    finally:
        await fs.close()


@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequence=ops)
def test_writes_and_truncates_match_model(geometry, sequence):
    with tempfile.TemporaryDirectory() as tmp:
        trio.run(run_model, Path(tmp) / "data", geometry, sequence)
