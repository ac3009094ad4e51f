"""Interleavings the trio scheduler allows: operations that await while others run."""
from __future__ import annotations

import os
import threading

import pytest
import trio
from corelib import ROOT, create, make_file, read_file, rnd


async def test_concurrent_writers_to_different_files(fs):
    datas = {i: rnd(150_000, i) for i in range(6)}
    inos = {}

    async def writer(i):
        fh, ino = await create(fs, f"f{i}".encode())
        inos[i] = ino
        for pos in range(0, len(datas[i]), 32_768):
            await fs.write(fh, pos, datas[i][pos:pos + 32_768])
            await trio.sleep(0)
        await fs.flush(fh)
        await fs.release(fh)
        fs.forget([(ino, 1)])

    async with trio.open_nursery() as n:
        for i in datas:
            n.start_soon(writer, i)
    for i, data in datas.items():
        assert await read_file(fs, inos[i]) == data


async def test_reads_while_committing(fs):
    data = rnd(400_000, 1)
    fh, ino = await create(fs, b"f")
    await fs.write(fh, 0, data)
    results = []

    async def reader():
        rfh = await fs.open(ino, os.O_RDONLY, ROOT)
        for off in range(0, len(data), 50_000):
            results.append((off, await fs.read(rfh, off, 50_000)))
            await trio.sleep(0)
        await fs.release(rfh)

    async with trio.open_nursery() as n:
        n.start_soon(reader)
        n.start_soon(fs.flush, fh)
    for off, got in results:
        assert got == data[off:off + 50_000]
    await fs.release(fh)
    fs.forget([(ino, 1)])


async def test_concurrent_flushes_of_one_file(fs):
    data = rnd(300_000, 2)
    fh, ino = await create(fs, b"f")
    await fs.write(fh, 0, data)
    async with trio.open_nursery() as n:
        for _ in range(4):
            n.start_soon(fs.flush, fh)
    assert ino not in fs.dirty
    await fs.release(fh)
    fs.forget([(ino, 1)])
    assert await read_file(fs, ino) == data


@pytest.mark.parametrize("spilled", [False, True])
async def test_read_in_thread_survives_commit(fs, spilled):
    """A read that misses the chunk cache runs assemble() in a worker thread over the file's
    write buffer. If a flush commits (and closes) that buffer meanwhile, the read must still
    return the right bytes."""
    base = rnd(200_000, 3)
    ino = await make_file(fs, b"f", base)
    fh = await fs.open(ino, os.O_RDWR, ROOT)
    patch = b"D" * 5000
    model = bytearray(base)
    if spilled:
        big = rnd(100_000, 4)                       # past the 64 KiB spill threshold
        await fs.write(fh, 10_000, big)
        model[10_000:110_000] = big
    await fs.write(fh, 1000, patch)
    model[1000:6000] = patch
    fs.content.cache.clear()

    entered, go = threading.Event(), threading.Event()
    real_fetch = fs.content.fetch

    def slow_fetch(loc):
        if threading.current_thread() is not threading.main_thread() and not entered.is_set():
            entered.set()
            go.wait(10)
        return real_fetch(loc)

    fs.content.fetch = slow_fetch
    result = {}

    async def reader():
        try:
            result["data"] = await fs.read(fh, 0, 20_000)
        except Exception as e:                      # noqa: BLE001 - reported below
            result["error"] = e

    try:
        async with trio.open_nursery() as n:
            n.start_soon(reader)
            with trio.fail_after(10):
                while not entered.is_set():
                    await trio.sleep(0.001)
            await fs.flush(fh)                      # commits and closes the buffer
            go.set()
    finally:
        go.set()
        fs.content.fetch = real_fetch
    await fs.release(fh)
    assert "error" not in result, repr(result.get("error"))
    assert result["data"] == bytes(model[:20_000])


async def test_read_in_thread_survives_streaming_commit(stores, tmp_path, small_store):
    """A sequential writer's full chunks are stored by a background (streaming) commit, which
    then drops them from the write buffer. A read in a worker thread that started before, with
    the extent map of before, must still see those bytes."""
    from dataclasses import fields

    from nexusfs import config
    from nexusfs.config import Config
    if "stream_commit" not in {f.name for f in fields(Config)}:
        pytest.skip("no streaming commits")
    cfg = config.load(tmp_path / "stream", **{**small_store, "spill_threshold": 8 << 20,
                                              "stream_commit": 64 * 1024})
    fs = stores.start(cfg)
    if not hasattr(fs, "_start_stream"):
        pytest.skip("no streaming commits")
    fh, ino = await create(fs, b"f")
    first = rnd(100_000, 5)
    await fs.write(fh, 0, first)
    await fs.flush(fh)                               # committed: chunks in packs
    fs.content.cache.clear()                         # so the read below needs a worker thread
    started = []
    fs._start_stream = lambda *args: started.append(args)     # hold the stream back for now
    more = rnd(300_000, 6)
    await fs.write(fh, len(first), more)
    del fs._start_stream
    assert started, "a 300 KB sequential write should start a streaming commit"
    df = fs.dirty[ino]
    data = first + more

    entered, go = threading.Event(), threading.Event()
    real_fetch = fs.content.fetch

    def slow_fetch(loc):
        if threading.current_thread() is not threading.main_thread() and not entered.is_set():
            entered.set()
            go.wait(10)
        return real_fetch(loc)

    fs.content.fetch = slow_fetch
    result = {}

    async def reader():
        try:
            result["data"] = await fs.read(fh, 0, len(data))
        except Exception as e:                      # noqa: BLE001 - reported below
            result["error"] = e

    try:
        async with trio.open_nursery() as n:
            n.start_soon(reader)
            with trio.fail_after(10):
                while not entered.is_set():
                    await trio.sleep(0.001)
                fs._start_stream(*started[0])       # now let the stream run to its end
                while df.streaming is not None:
                    await trio.sleep(0.001)
            assert fs.meta.extents(ino)[-1].end > len(first)    # the stream stored chunks
            go.set()
    finally:
        go.set()
        fs.content.fetch = real_fetch
    await fs.release(fh)
    fs.forget([(ino, 1)])
    assert "error" not in result, repr(result.get("error"))
    assert len(result["data"]) == len(data)
    assert result["data"] == data


async def test_read_right_after_sequential_writes(stores, tmp_path, small_store):
    """The same race without any patching: read back at once what a sequential writer wrote
    while its streaming commits may still be running."""
    from nexusfs import config
    cfg = config.load(tmp_path / "seq", **{**small_store, "spill_threshold": 8 << 20,
                                           "stream_commit": 32 * 1024})
    fs = stores.start(cfg)
    for i in range(40):
        fh, ino = await create(fs, f"f{i}".encode())
        data = rnd(84_107, i)
        for pos in range(0, len(data), 8192):
            await fs.write(fh, pos, data[pos:pos + 8192])
            await trio.sleep(0)
        got = await fs.read(fh, 0, len(data))
        assert got == data, f"round {i}"
        await fs.release(fh)
        fs.forget([(ino, 1)])
