"""Document kinds after commits: a commit hands the file's first bytes to kind detection when
its buffer holds them (a new or rewritten file) and detection reads them back from the store
otherwise (a write past the head); either way the kind follows the content."""
from __future__ import annotations

import os
import sys

from corelib import ROOT, create, write_all

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "views"))
from docgen import pdf  # noqa: E402


async def _write_at(fs, ino, offset, data, truncate=False):
    fh = await fs.open(ino, os.O_WRONLY | (os.O_TRUNC if truncate else 0), ROOT)
    if truncate:
        await fs.setattr(ino, ROOT, size=0)
    await write_all(fs, fh, offset, data)
    await fs.flush(fh)
    await fs.release(fh)


async def _same_kind_when_read_back(fs, ino):
    """The kind the commit decided equals the one decided from the stored bytes."""
    kind = fs.docs.kind(ino)
    await fs.docs.after_commit(ino)                     # no head: read back from the store
    assert fs.docs.kind(ino) == kind
    return kind


async def test_kind_follows_the_content_whatever_the_commit_holds(fs):
    doc = pdf([["hello kinds"]])
    fh, ino = await create(fs, b"report.pdf")
    await write_all(fs, fh, 0, doc)
    await fs.flush(fh)
    await fs.release(fh)
    assert await _same_kind_when_read_back(fs, ino) == "pdf"   # new file: head from the buffer
    await _write_at(fs, ino, len(doc), b"\n% trailing comment\n")
    assert await _same_kind_when_read_back(fs, ino) == "pdf"   # append: head from the store
    await _write_at(fs, ino, 0, b"plain words now\n", truncate=True)
    assert await _same_kind_when_read_back(fs, ino) is None    # rewritten as text
    fh, ino2 = await create(fs, b"sparse.html")
    await write_all(fs, fh, 100, b"<html><body>late</body></html>")   # a hole first
    await fs.flush(fh)
    await fs.release(fh)
    await _same_kind_when_read_back(fs, ino2)
    fh, ino3 = await create(fs, b"page")
    await write_all(fs, fh, 0, b"<html><body>no extension</body></html>")
    await fs.flush(fh)
    await fs.release(fh)
    assert await _same_kind_when_read_back(fs, ino3) == "html"
