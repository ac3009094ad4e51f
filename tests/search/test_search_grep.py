"""grep without a mount: results equal GNU grep -r on the same tree, narrowing or not, paged,
and always current (renames, deletes, rewrites, undo) whatever the indexer's lag."""
from __future__ import annotations

import errno

import pytest
from corelib import ROOT, USER
from searchlib import all_pages, as_grep_lines, gnu_grep, put, random_tree

from nexusfs.search import ops
from nexusfs.types import ROOT_INO, FsError

PATTERNS = ["token", "TODO|FIXME", "refresh token", "^def", "value$", "a.c", "x_1",
            "[[:upper:]][a-z]+", "foo\\.bar", "a\\+b", "\\(paren\\)", "caf\u00e9", "^$",
            "(alpha|beta) gamma", "\\<auth\\>", "[^a-z ]+", "tab\there", "end\\$", "e{2,}",
            "zeta[[:space:]]+Kappa", "Kap*a", "nomatchatall"]


@pytest.mark.parametrize("seed", [1, 2])
async def test_grep_equals_gnu_grep(fs, tmp_path, seed):
    plain = tmp_path / "plain"
    plain.mkdir()
    await random_tree(fs, plain, seed)
    await fs.search.settle()
    for pattern in PATTERNS:
        want = gnu_grep(plain, pattern, "-n")
        got = as_grep_lines(await all_pages(fs, ROOT, pattern))
        assert got == want, pattern
    for flags, kw in ((["-i"], {"ignore_case": True}), (["-l"], {"files_only": True}),
                      (["-c"], {"count": True})):
        for pattern in ("token", "todo|fixme", "Kappa", "^$"):
            want = gnu_grep(plain, pattern, *flags)
            got = await all_pages(fs, ROOT, pattern, **kw)
            if "-c" in flags:
                got = as_grep_lines(got, count=True)
            elif "-l" in flags:
                got = as_grep_lines(got, files=True)
            else:
                got = as_grep_lines(got, numbers=False)
            assert got == want, (flags, pattern)


async def test_grep_unindexed_changes_still_exact(fs, tmp_path):
    """Right after writes, before the indexer ran: the backlog counts as candidates."""
    plain = tmp_path / "plain"
    plain.mkdir()
    await random_tree(fs, plain, 7, files=30)      # no settle: everything is still queued
    for pattern in ("token", "TODO|FIXME", "^def"):
        assert as_grep_lines(await all_pages(fs, ROOT, pattern)) == gnu_grep(plain, pattern, "-n")


async def test_narrowing_is_used(fs):
    for i in range(40):
        await put(fs, f"/d/f{i}.txt", b"common words here\n")
    await put(fs, "/d/rare.txt", b"x\nthe zanzibarquux literal\n")
    await fs.search.settle()
    res = await ops.grep(fs.search, ROOT, "zanzibarquux")
    assert res["narrowed"] and res["candidates"] == 1
    assert [(r["path"], r["line"]) for r in res["results"]] == [("/d/rare.txt", 2)]
    res = await ops.grep(fs.search, ROOT, "z.n.i.a")      # no literal of 3: a scan
    assert res["candidates"] == 41 and len(res["results"]) == 1


async def test_binary_files_are_scanned_not_indexed(fs, tmp_path):
    """Binary content stays out of the trigram index (random bytes would take minutes to
    index) yet grep finds matches in it, as grep -r does ("binary file matches")."""
    import random
    blob = bytearray(random.Random(5).randbytes(300_000))
    blob[200_000:200_012] = b"needle-12345"
    plain = tmp_path / "plain"
    plain.mkdir()
    for name, data in (("blob.bin", bytes(blob)), ("text.txt", b"a needle-12345 here\n"),
                       ("other.txt", b"nothing\n")):
        (plain / name).write_bytes(data)
        await put(fs, f"/{name}", data)
    await fs.search.settle()
    assert fs.search.db.r.execute(
        "SELECT count(*) FROM files WHERE partial=1 AND binary=1").fetchone()[0] == 1
    res = await ops.grep(fs.search, ROOT, "needle-12345")
    assert res["narrowed"] and res["candidates"] == 2
    assert as_grep_lines(await all_pages(fs, ROOT, "needle-12345", files_only=True),
                         files=True) == gnu_grep(plain, "needle-12345", "-l")


async def test_paging_streams_in_order(fs):
    await put(fs, "/a.txt", b"hit\n" * 25)
    await put(fs, "/b.txt", b"hit\nmiss\nhit\n")
    await fs.search.settle()
    pages = []
    after = None
    while True:
        res = await ops.grep(fs.search, ROOT, "hit", limit=10, after=after)
        pages.append(len(res["results"]))
        if res["next"] is None:
            break
        after = res["next"]
    assert sum(pages) == 27 and max(pages) == 10
    for kw in ({"files_only": True}, {"count": True}):
        got = await all_pages(fs, ROOT, "hit", page=1, **kw)
        assert [r["path"] for r in got] == ["/a.txt", "/b.txt"]


async def test_renames_deletes_rewrites_seen_at_once(fs):
    ino = await put(fs, "/d/one.txt", b"needle in one\n")
    await put(fs, "/d/two.txt", b"needle in two\n")
    await fs.search.settle()
    d = fs.meta.lookup(ROOT_INO, b"d")
    await fs.rename(d, b"one.txt", ROOT_INO, b"moved.txt", 0, ROOT)
    res = await ops.grep(fs.search, ROOT, "needle")
    assert [r["path"] for r in res["results"]] == ["/d/two.txt", "/moved.txt"]
    await fs.unlink(d, b"two.txt", ROOT)
    res = await ops.grep(fs.search, ROOT, "needle")
    assert [r["path"] for r in res["results"]] == ["/moved.txt"]
    fh = await fs.open(ino, 2, ROOT)
    await fs.write(fh, 0, b"haystack only\n")
    await fs.setattr(ino, ROOT, size=14, fh=fh)
    res = await ops.grep(fs.search, ROOT, "needle")      # buffered, not committed: still seen
    assert res["results"] == []
    await fs.release(fh)
    res = await ops.grep(fs.search, ROOT, "haystack")
    assert [r["path"] for r in res["results"]] == ["/moved.txt"]


async def test_scope_glob_and_links(fs):
    await put(fs, "/src/a.py", b"key = 1\n")
    await put(fs, "/src/test_a.py", b"key = 2\n")
    await put(fs, "/docs/a.txt", b"key = 3\n")
    ino = fs.meta.lookup(fs.meta.lookup(ROOT_INO, b"src"), b"a.py")
    a = await fs.link(ino, fs.meta.lookup(ROOT_INO, b"docs"), b"hard.py", ROOT)
    fs.forget([(a.ino, 1)])
    await fs.search.settle()

    async def paths(**kw):
        return [r["path"] for r in (await ops.grep(fs.search, ROOT, "key", **kw))["results"]]
    assert await paths() == ["/docs/a.txt", "/docs/hard.py", "/src/a.py", "/src/test_a.py"]
    assert await paths(path="/src") == ["/src/a.py", "/src/test_a.py"]
    assert await paths(file_pattern="**/test_*.py") == ["/src/test_a.py"]
    assert await paths(file_pattern="*.py") == ["/docs/hard.py", "/src/a.py", "/src/test_a.py"]
    assert await paths(path="/src/a.py") == ["/src/a.py"]
    globbed = await ops.glob(fs.search, ROOT, "**/*a.py")
    assert [g["path"] for g in globbed] == ["/src/a.py", "/src/test_a.py"]


async def test_bad_input(fs):
    for bad in ("(", "[a", "a{1,2", "x**", "\\"):
        try:
            await ops.grep(fs.search, ROOT, bad)
        except FsError as e:
            assert e.errno == errno.EINVAL and "\n" not in e.message
        else:
            # GNU accepts some of these (x** , a{1,2 as literals); then it must simply run
            assert bad in ("x**", "a{1,2")
    with pytest.raises(FsError) as e:
        await ops.grep(fs.search, ROOT, "x", path="/nope")
    assert e.value.errno == errno.ENOENT
    with pytest.raises(FsError) as e:
        await ops.grep(fs.search, ROOT, "x", mode="other")
    assert e.value.errno == errno.EINVAL


async def test_non_reader_sees_nothing(fs):
    await put(fs, "/open/pub.txt", b"secretword public\n")
    await put(fs, "/closed/priv.txt", b"secretword private\n")
    await put(fs, "/open/mine.txt", b"secretword mine\n", caller=USER)
    closed = fs.meta.lookup(ROOT_INO, b"closed")
    await fs.setattr(closed, ROOT, mode=0o700)
    pub = fs.meta.lookup(fs.meta.lookup(ROOT_INO, b"open"), b"pub.txt")
    await fs.setattr(pub, ROOT, mode=0o600)
    await fs.search.settle()
    root_sees = [r["path"] for r in (await ops.grep(fs.search, ROOT, "secretword"))["results"]]
    assert root_sees == ["/closed/priv.txt", "/open/mine.txt", "/open/pub.txt"]
    user_sees = [r["path"] for r in (await ops.grep(fs.search, USER, "secretword"))["results"]]
    assert user_sees == ["/open/mine.txt"]
    found = await ops.search(fs.search, USER, "secretword")
    assert [r["path"] for r in found] == ["/open/mine.txt"]
    assert [g["path"] for g in await ops.glob(fs.search, USER, "*.txt")] == ["/open/mine.txt",
                                                                             "/open/pub.txt"]


async def test_deleted_files_leave_the_index_without_rewriting_it(fs):
    """Deletions are tombstones (no segment rewrite per batch: FTS5 deletemerge is 0), and
    the index answers as if the rows were gone."""
    for table in ("raw_tri", "parsed_tri", "words"):
        rows = fs.search.db.r.execute(f"SELECT v FROM {table}_config WHERE k='deletemerge'")
        assert rows.fetchall() == [(0,)]
    inos = [await put(fs, f"/g/f{i}.txt", b"the quetzalcoatl word\n") for i in range(30)]
    await fs.search.settle()
    res = await ops.grep(fs.search, ROOT, "quetzalcoatl")
    assert res["narrowed"] and res["candidates"] == 30
    d = fs.meta.lookup(ROOT_INO, b"g")
    for i in range(0, 30, 2):
        await fs.unlink(d, f"f{i}.txt".encode(), ROOT)
    await fs.search.settle()
    assert fs.search.db.count() == len(inos) - 15
    res = await ops.grep(fs.search, ROOT, "quetzalcoatl")
    assert res["candidates"] == 15 and len(res["results"]) == 15
