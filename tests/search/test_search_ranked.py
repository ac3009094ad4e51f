"""Ranked search, documents and the index's own life: BM25 with snippets and line numbers,
phrases and prefixes, parsed documents, bad queries, crash repair, a damaged index file."""
from __future__ import annotations

import errno
import os
import sys

import pytest
from corelib import ROOT
from searchlib import put

from nexusfs.search import ops
from nexusfs.types import ROOT_INO, FsError

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "views"))
import docgen  # noqa: E402


async def test_ranked_with_snippets(fs):
    await put(fs, "/src/auth.py", b"import os\n\ndef refresh(token):\n    # authentication token refresh\n"
                                  b"    return token\n")
    await put(fs, "/src/other.py", b"token = 1\n")
    await put(fs, "/notes.txt", b"nothing relevant\nat all\n")
    found = await ops.search(fs.search, ROOT, "authentication token refresh")
    assert [r["path"] for r in found] == ["/src/auth.py"]
    assert found[0]["line"] == 4 and "authentication token refresh" in found[0]["snippet"]
    found = await ops.search(fs.search, ROOT, "token")
    assert {r["path"] for r in found} == {"/src/auth.py", "/src/other.py"}
    assert [r["path"] for r in await ops.search(fs.search, ROOT, '"token refresh"')] == ["/src/auth.py"]
    assert [r["path"] for r in await ops.search(fs.search, ROOT, '"os authentication"')] == []
    assert [r["path"] for r in await ops.search(fs.search, ROOT, "authent*")] == ["/src/auth.py"]
    assert [r["path"] for r in await ops.search(fs.search, ROOT, "refreshed")] == ["/src/auth.py"]
    assert [r["path"] for r in await ops.search(fs.search, ROOT, "token NOT refresh")] == ["/src/other.py"]
    assert [r["path"] for r in await ops.search(fs.search, ROOT, "notes")] == ["/notes.txt"]  # by name
    assert len(await ops.search(fs.search, ROOT, "token", limit=1)) == 1
    assert [r["path"] for r in await ops.search(fs.search, ROOT, "token", path="/src/other.py")] == ["/src/other.py"]
    assert ops.results_text(found).startswith("/src/")


@pytest.mark.parametrize("query", ['"unbalanced', "(a", "a)", "AND", "OR b", "a NOT", "...", ""])
async def test_bad_queries(fs, query):
    with pytest.raises(FsError) as e:
        await ops.search(fs.search, ROOT, query)
    assert e.value.errno == errno.EINVAL and "\n" not in e.value.message


async def test_documents_parsed_text(fs):
    pdf = docgen.pdf([["Quarterly report", "revenue grew by nine percent"]])
    await put(fs, "/docs/report.pdf", pdf)
    await put(fs, "/docs/sheet.xlsx", docgen.xlsx({"S": [["region", "revenue"], ["north", 12]]}))
    await put(fs, "/docs/plain.txt", b"no money words\n")
    await fs.search.settle(10)
    for _ in range(50):                    # the parse lands in the background, then is indexed
        if not await fs.search.settle(10) or fs.search._parsing:
            continue
        break
    res = await ops.grep(fs.search, ROOT, "revenue", mode="parsed")
    got = sorted((r["path"], r["source"]) for r in res["results"])
    assert got == [("/docs/report.pdf.txt", "parsed"), ("/docs/sheet.xlsx.txt", "parsed")]
    res = await ops.grep(fs.search, ROOT, "revenue grew", mode="auto", ignore_case=True)
    assert [(r["path"], r["line"] > 0) for r in res["results"]] == [("/docs/report.pdf.txt", True)]
    res = await ops.grep(fs.search, ROOT, "revenue", mode="raw")
    assert all(r["source"] == "raw" for r in res["results"])
    found = await ops.search(fs.search, ROOT, "revenue")
    assert {r["path"] for r in found} == {"/docs/report.pdf", "/docs/sheet.xlsx"}
    assert all(r["source"] == "parsed" and r["line"] > 0 for r in found)


async def test_crash_then_repair_at_start(stores, cfg):
    fs = stores.start(cfg)
    await put(fs, "/a.txt", b"first version alpha\n")
    await fs.search.settle()
    await fs.sync()
    fs.search._closing = True              # the indexer stops: what follows is never indexed
    fs.search._wake.set()
    await put(fs, "/b.txt", b"second file beta\n")
    ino = fs.meta.lookup(ROOT_INO, b"a.txt")
    fh = await fs.open(ino, os.O_WRONLY | os.O_TRUNC, ROOT)
    await fs.setattr(ino, ROOT, size=0, fh=fh)
    await fs.write(fh, 0, b"rewritten gamma\n")
    await fs.release(fh)
    await fs.sync()
    assert fs.search.pending
    fs.search.db.close()                   # killed before the indexer wrote anything
    stores.crash(fs)
    fs = stores.start(cfg)
    assert fs.search.pending                # the start found what the index missed
    await fs.search.settle()
    assert [r["path"] for r in await ops.search(fs.search, ROOT, "gamma")] == ["/a.txt"]
    assert [r["path"] for r in await ops.search(fs.search, ROOT, "beta")] == ["/b.txt"]
    assert await ops.search(fs.search, ROOT, "alpha") == []
    await stores.close(fs)
    fs = stores.start(cfg)
    assert not fs.search.pending            # clean close: nothing to redo


async def test_damaged_index_is_rebuilt(stores, cfg):
    fs = stores.start(cfg)
    await put(fs, "/a.txt", b"kept words\n")
    await fs.search.settle()
    await stores.close(fs)
    with open(cfg.data_dir / "index.db", "r+b") as f:
        f.seek(0)
        f.write(b"this is not an sqlite database at all" * 10)
    fs = stores.start(cfg)
    await fs.search.settle()
    assert [r["path"] for r in await ops.search(fs.search, ROOT, "kept")] == ["/a.txt"]


async def test_rebuild(fs):
    for i in range(20):
        await put(fs, f"/f{i}.txt", f"word{i} common\n".encode())
    await fs.search.settle()
    assert await fs.search.rebuild() == 20
    await fs.search.settle()
    assert len(await ops.search(fs.search, ROOT, "common", limit=100)) == 20
    assert fs.search.status()["files"] == 20


async def test_undo_reflected(fs):
    await put(fs, "/u.txt", b"before undo\n")
    ino = fs.meta.lookup(ROOT_INO, b"u.txt")
    fh = await fs.open(ino, os.O_WRONLY, ROOT)
    await fs.write(fh, 0, b"AFTER! undo\n")
    await fs.release(fh)
    assert [r["path"] for r in await ops.search(fs.search, ROOT, "after")] == ["/u.txt"]
    await fs.history.undo(ROOT)
    assert await ops.search(fs.search, ROOT, "after") == []
    res = await ops.grep(fs.search, ROOT, "before")
    assert [r["path"] for r in res["results"]] == ["/u.txt"]
