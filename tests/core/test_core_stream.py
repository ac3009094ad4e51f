"""Streaming commits of sequential writers (core/files.py _stream_task, core/content.py
cut_stream/commit_stream): the next window is cut while the previous one is stored; the cached
extent map is extended in place; overwrites, truncates, dedup and crashes stay correct."""
from __future__ import annotations

import os

import trio
from corelib import ROOT, create, fsck, read_file, rnd

from nexusfs import config


def stream_cfg(tmp_path, small_store, name="s"):
    return config.load(tmp_path / name, **{**small_store, "chunk_min": 1024, "chunk_avg": 4096,
                                           "chunk_max": 16384, "inline_max": 2048,
                                           "spill_threshold": 8 << 20,
                                           "stream_commit": 32 * 1024})


def watch_pipeline(fs) -> dict:
    """Count the cuts that ran while a window was being stored."""
    seen = {"storing": 0, "overlapped": 0, "windows": 0}
    cut, commit = fs.content.cut_stream, fs.content.commit_stream

    async def cut_stream(snapshot):
        if seen["storing"]:
            seen["overlapped"] += 1
        return await cut(snapshot)

    async def commit_stream(*args):
        seen["storing"] += 1
        try:
            await trio.sleep(0.002)            # (a slow disk: the writer gets ahead)
            return await commit(*args)
        finally:
            seen["storing"] -= 1
            seen["windows"] += 1
    fs.content.cut_stream, fs.content.commit_stream = cut_stream, commit_stream
    return seen


async def write_seq(fs, fh, offset, data, block=8192):
    for pos in range(0, len(data), block):
        await fs.write(fh, offset + pos, data[pos:pos + block])
        await trio.sleep(0)


def map_matches_store(fs, ino) -> bool:
    cached = fs.content._maps.get(ino)
    if cached is None:
        return True
    got = [(e.offset, e.length, e.loc.id, e.loc.pack, e.loc.offset, e.loc.data)
           for e in cached.extents]
    want = [(e.offset, e.length, e.loc.id, e.loc.pack, e.loc.offset, e.loc.data)
            for e in fs.meta.extents(ino)]
    return got == want and cached.starts == [e.offset for e in cached.extents]


async def test_pipelined_windows_store_the_file(stores, tmp_path, small_store):
    fs = stores.start(stream_cfg(tmp_path, small_store))
    seen = watch_pipeline(fs)
    data = rnd(1_500_000, 1)
    fh, ino = await create(fs, b"big")
    await write_seq(fs, fh, 0, data)
    assert seen["windows"] > 3 and seen["overlapped"] > 0, seen
    assert map_matches_store(fs, ino)
    await fs.fsync(fh)
    assert map_matches_store(fs, ino)
    attr = await fs.getattr(ino)
    assert attr.size == len(data)
    blocks = attr.blocks
    fs.meta.update_blocks(ino)
    assert fs.meta.get_attr(ino).blocks == blocks        # kept without summing every extent
    assert await read_file(fs, ino) == data
    fs.content.cache.clear()
    fs.content.forget(ino)
    assert await read_file(fs, ino) == data
    await fs.release(fh)
    fs.forget([(ino, 1)])

    # the same bytes again under another name: every chunk is known, nothing is stored
    written = fs.content.bytes_written
    fh, ino2 = await create(fs, b"again")
    await write_seq(fs, fh, 0, data)
    await fs.fsync(fh)
    await fs.release(fh)
    fs.forget([(ino2, 1)])
    assert fs.content.bytes_written == written
    assert await read_file(fs, ino2) == data


async def test_overwrite_and_truncate_while_streaming(stores, tmp_path, small_store):
    """Writes under the bytes being stored wait for the stream; a truncate settles it first;
    the result is what a plain file would hold."""
    fs = stores.start(stream_cfg(tmp_path, small_store))
    watch_pipeline(fs)
    fh, ino = await create(fs, b"f")
    model = bytearray(rnd(400_000, 2))
    results = []

    async def writer():
        await write_seq(fs, fh, 0, bytes(model[:400_000]))

    async def meddler():
        for i in range(6):
            await trio.sleep(0.003)
            off = (i * 37_111) % 200_000
            patch = rnd(5000, 10 + i)
            await fs.write(fh, off, patch)
            results.append((off, patch))

    async with trio.open_nursery() as n:
        n.start_soon(writer)
        n.start_soon(meddler)
    for off, patch in results:
        model[off:off + len(patch)] = patch
    await fs.setattr(ino, ROOT, size=250_000, fh=fh)
    del model[250_000:]
    tail = rnd(300_000, 3)
    await write_seq(fs, fh, len(model), tail)
    model += tail
    assert await read_file(fs, ino) == model
    await fs.flush(fh)
    assert map_matches_store(fs, ino)
    fs.content.cache.clear()
    fs.content.forget(ino)
    assert await read_file(fs, ino) == model
    await fs.release(fh)
    fs.forget([(ino, 1)])


async def test_crash_in_the_middle_of_a_stream(stores, tmp_path, small_store):
    """A crash while windows are being stored: what was synced before stays whole, the store
    is consistent (fsck) and the file reads back as a prefix of what was written."""
    cfg = stream_cfg(tmp_path, small_store)
    fs = stores.start(cfg)
    first = rnd(200_000, 4)
    fh, ino = await create(fs, b"f")
    await write_seq(fs, fh, 0, first)
    await fs.fsync(fh)
    more = rnd(600_000, 5)
    await write_seq(fs, fh, len(first), more[:450_000])
    await fs.sync()                                   # some windows of ``more`` committed
    await write_seq(fs, fh, len(first) + 450_000, more[450_000:])
    df = fs.dirty[ino]
    assert df.stream_from is not None and df.stream_from > len(first)
    await fs._settle(df)                  # (the test's crash cannot stop a running task)
    stores.crash(fs)

    fs = stores.start(cfg)
    got = await read_file(fs, ino)
    whole = first + more
    assert len(got) >= len(first) and got == whole[:len(got)]
    assert fsck(cfg) == []
    fh = await fs.open(ino, os.O_RDWR, ROOT)
    await write_seq(fs, fh, len(got), whole[len(got):])
    await fs.flush(fh)
    await fs.release(fh)
    assert await read_file(fs, ino) == whole


async def test_prefetched_chunks_are_released_one_by_one(stores, tmp_path, small_store):
    """A reader waiting for a chunk a prefetch is loading goes on once that chunk is in, not
    after the prefetch's whole batch."""
    import threading

    from corelib import make_file
    fs = stores.start(stream_cfg(tmp_path, small_store))
    data = rnd(300_000, 7)
    ino = await make_file(fs, b"f", data)
    await fs.sync()
    fs.content.cache.clear()
    locs = [e.loc for e in fs.content.extent_map(ino).extents if e.loc.data is None]
    assert len(locs) > 4
    last = max(locs, key=lambda c: (c.pack, c.offset))
    first = min(locs, key=lambda c: (c.pack, c.offset))
    hold, holding = threading.Event(), threading.Event()
    real_load = fs.content._load

    def load(loc, stored=None):
        if loc.id == last.id:
            holding.set()
            hold.wait(10)
        return real_load(loc, stored)
    fs.content._load = load
    worker = threading.Thread(target=fs.content.fetch_many, args=(locs,))
    worker.start()
    try:
        assert holding.wait(10)
        with fs.content._inflight_lock:
            assert first.id not in fs.content._inflight
            assert last.id in fs.content._inflight
        assert fs.content.fetch(first) == fs.content.cache.get(first.id)   # no waiting
    finally:
        hold.set()
        worker.join(10)
        fs.content._load = real_load
    assert not fs.content._inflight
    assert await read_file(fs, ino) == data
