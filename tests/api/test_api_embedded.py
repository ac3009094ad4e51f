"""The Python API on an embedded store (no daemon, no mount): every operation, etags and
conditional writes, batches, history, errors, the async forms."""
from __future__ import annotations

import asyncio
import random
import threading

import pytest
import trio

import nexusfs
from nexusfs import ConflictError, InvalidPathError, NotFoundError, StoreLockedError

from apihelp import SETTINGS


def test_write_read_and_metadata(nx):
    info = nx.write("/workspace/a.txt", b"x")
    assert (info.path, info.type, info.size, info.mode) == ("/workspace/a.txt", "file", 1, 0o644)
    assert len(info.etag) == 32 and info.version is not None
    meta = nx.read("/workspace/a.txt", with_metadata=True)
    assert meta.content == b"x" and meta.etag == info.etag and meta.version == info.version
    assert nx.info("/workspace").type == "dir"
    assert nx.read("/workspace/a.txt", offset=0, size=0) == b""


def test_large_content_and_ranges(nx):
    data = random.Random(1).randbytes(3 << 20)
    nx.write("/big.bin", data)
    assert nx.read("/big.bin") == data
    assert nx.read("/big.bin", offset=1_000_000, size=5000) == data[1_000_000:1_005_000]


def test_etag_follows_content(nx):
    a = nx.write("/a", b"same").etag
    b = nx.write("/b", b"same").etag
    assert a == b                                     # equal content, written whole
    assert nx.write("/a", b"other").etag != a
    assert nx.write("/a", b"same").etag == a          # back to the same bytes
    nx.mkdir("/d")
    assert nx.info("/d").etag is None


def test_if_match_conflict(nx):
    meta = nx.read(nx.write("/doc.txt", b"v1").path, with_metadata=True)
    nx.write("/doc.txt", b"v2", if_match=meta.etag)
    with pytest.raises(ConflictError) as e:
        nx.write("/doc.txt", b"v3", if_match=meta.etag)
    assert e.value.exit_code == 4
    assert nx.read("/doc.txt") == b"v2"              # the lost write changed nothing
    with pytest.raises(ConflictError):
        nx.write("/missing.txt", b"x", if_match=meta.etag)
    assert not nx.exists("/missing.txt")


def test_if_none_match(nx):
    nx.write("/once", b"1", if_none_match=True)
    with pytest.raises(ConflictError):
        nx.write("/once", b"2", if_none_match=True)
    assert nx.read("/once") == b"1"


def test_racing_conditional_writers_one_wins(nx):
    etag = nx.write("/counter", b"0").etag
    results = []

    def writer(i):
        try:
            nx.write("/counter", str(i).encode(), if_match=etag)
            results.append(i)
        except ConflictError:
            pass
    threads = [threading.Thread(target=writer, args=(i,)) for i in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 1
    assert nx.read("/counter") == str(results[0]).encode()


def test_write_batch_is_checked_first(nx):
    infos = nx.write_batch([(f"/ckpt/{i}", bytes([i]) * i) for i in range(20)])
    assert [i.size for i in infos] == list(range(20))
    nx.mkdir("/ckpt/dir")
    with pytest.raises(nexusfs.NexusError) as e:
        nx.write_batch([("/ckpt/new1", b"a"), ("/ckpt/dir", b"b")])
    assert "is a directory" in str(e.value)
    assert not nx.exists("/ckpt/new1")               # nothing of a refused batch is written
    with pytest.raises(InvalidPathError):
        nx.write_batch([("/ok", b"a"), ("relative", b"b")])


def test_names(nx):
    nx.mkdir("/a/b/c", parents=True)
    nx.mkdir("/a/b/c", parents=True)                  # exists: fine with parents
    with pytest.raises(nexusfs.NexusError):
        nx.mkdir("/a/b/c")
    nx.write("/a/b/c/f", b"f")
    assert nx.cp("/a", "/copy", recursive=True) == 4
    assert nx.read("/copy/b/c/f") == b"f"
    nx.mkdir("/into")
    assert nx.mv("/copy", "/into") == "/into/copy"
    assert [e["path"] for e in nx.ls("/into", recursive=True)] == [
        "/into/copy", "/into/copy/b", "/into/copy/b/c", "/into/copy/b/c/f"]
    with pytest.raises(nexusfs.NexusError):
        nx.rm("/into")                                # a directory needs recursive
    assert nx.rm("/into", recursive=True) == 5
    with pytest.raises(nexusfs.NexusError):
        nx.rmdir("/a")                                # not empty
    with pytest.raises(NotFoundError):
        nx.rm("/nothing")


def test_history(nx):
    nx.write("/w/a.txt", b"one")
    nx.write("/w/a.txt", b"two")
    versions = nx.versions("/w/a.txt")
    assert len(versions) == 2
    assert nx.read_version("/w/a.txt", versions[0]["seq"]) == b"one"
    nx.snapshot("before")
    nx.write("/w/a.txt", b"three")
    nx.undo()
    assert nx.read("/w/a.txt") == b"two"
    nx.write("/w/b.txt", b"new")
    nx.restore("before")
    assert not nx.exists("/w/b.txt")
    assert [r["op"] for r in nx.log(limit=2)][-1] == "restore"


def test_bad_input(nx, data_dir):
    with pytest.raises(InvalidPathError):
        nx.write("relative.txt", b"x")
    with pytest.raises(NotFoundError) as e:
        nx.read("/nope")
    assert str(e.value) == "/nope: no such file or directory" and e.value.exit_code == 3
    nx.write("/file", b"x")
    with pytest.raises(nexusfs.NexusError) as e:
        nx.write("/file/below", b"x")
    assert "not a directory" in str(e.value)
    with pytest.raises(StoreLockedError) as e:
        nexusfs.connect(data_dir, door="embedded")
    assert "in use by another nexusfs process" in str(e.value)


def test_reopen_keeps_everything(data_dir):
    with nexusfs.connect(data_dir, **SETTINGS) as nx:
        nx.write("/keep", b"kept")
        etag = nx.etag("/keep")
    with nexusfs.connect(data_dir, create=False) as nx:
        assert nx.read("/keep") == b"kept" and nx.etag("/keep") == etag


def test_no_store_without_create(tmp_path):
    with pytest.raises(nexusfs.StoreError) as e:
        nexusfs.connect(tmp_path / "none", create=False)
    assert "nexus init" in str(e.value)


async def test_async_trio(data_dir):
    async with await nexusfs.aconnect(data_dir, **SETTINGS) as nx:
        async with trio.open_nursery() as n:
            for i in range(5):
                n.start_soon(nx.write, f"/t/{i}", b"x" * i)
        assert [e["size"] for e in await nx.ls("/t")] == list(range(5))
        with pytest.raises(ConflictError):
            await nx.write("/t/1", b"y", if_match="0" * 32)


def test_async_asyncio(data_dir):
    async def main():
        async with await nexusfs.aconnect(data_dir, **SETTINGS) as nx:
            await asyncio.gather(*(nx.write(f"/a/{i}", b"x") for i in range(5)))
            return await nx.read("/a/3", with_metadata=True)
    meta = asyncio.run(main())
    assert meta.content == b"x" and meta.etag


def test_search_from_the_api(nx):
    """grep, glob and ranked search on an embedded store see a write at once."""
    nx.write("/src/a.py", b"x = 1\n# TODO fix the token refresh\n")
    nx.write("/src/b.txt", b"nothing here\n")
    assert [(r["path"], r["line"]) for r in nx.grep("TODO|FIXME")] == [("/src/a.py", 2)]
    assert nx.grep("todo", ignore_case=True, file_pattern="**/*.txt") == []
    assert nx.glob("**/*.py") == ["/src/a.py"]
    assert nx.search("token refresh")[0]["path"] == "/src/a.py"
    nx.rm("/src/a.py")
    assert nx.grep("TODO") == [] and nx.glob("**/*.py") == []
