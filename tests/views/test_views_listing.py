"""Listing directories of documents without a mount: views follow their document in cookie
order and a listing resumes after any cookie (views included), a real file of a view's name
hides the view, a hard link's names each get views, sizes appear once parsed, the queries a
listing makes do not grow with its documents, the listing window of a directory handle
answers continuations but never hides a change, and grants are applied once per reply."""
from __future__ import annotations

import os
import stat as st
import sys

import pytest

_here = os.path.dirname(__file__)
_core = os.path.join(os.path.dirname(_here), "core")
if _core not in sys.path:
    sys.path.insert(0, _core)

import docgen  # noqa: E402
from corelib import ROOT, fsck, make_file, mkdir, start_fs  # noqa: E402

from nexusfs import config  # noqa: E402
from nexusfs.control.commands import execute  # noqa: E402
from nexusfs.core.vtree import is_virtual  # noqa: E402
from nexusfs.history.service import HistoryService  # noqa: E402
from nexusfs.types import ROOT_INO  # noqa: E402

PDF = docgen.pdf([["listing words lapwing"]])


@pytest.fixture
def cfg(tmp_path, small_store, clean_env):
    return config.load(tmp_path / "data", **small_store)


@pytest.fixture
async def fs(cfg):
    fs = start_fs(cfg)
    yield fs
    await fs.close()
    assert check(cfg) == []


def check(cfg):
    return fsck(cfg)


async def listing(fs, d: int, start: int = 0, limit: int = 1000):
    fh = await fs.opendir(d, ROOT)
    try:
        return await fs.readdir(fh, start, limit)
    finally:
        await fs.releasedir(fh)


async def all_names(fs, d: int) -> list[bytes]:
    fh = await fs.opendir(d, ROOT)
    out, cookie = [], 0
    try:
        while batch := await fs.readdir(fh, cookie, 7):       # small windows on purpose
            out += [e.name for e in batch]
            cookie = batch[-1].next_id
    finally:
        await fs.releasedir(fh)
    return out


async def documents(fs, n: int, parent: int, data: bytes = PDF, prefix: str = "d") -> list[int]:
    inos = [await make_file(fs, f"{prefix}{i:04d}.pdf".encode(), data, parent=parent)
            for i in range(n)]
    for ino in inos[:1]:
        await fs.docs.result(ino)            # same content: one parse serves them all
    return inos


async def test_views_follow_documents_and_resume_after_any_cookie(fs):
    d = await mkdir(fs, ROOT_INO, b"d")
    await documents(fs, 3, d)
    await make_file(fs, b"plain.dat", b"x" * 10, parent=d)
    entries = await listing(fs, d)
    assert [e.name for e in entries] == [
        b".", b"..", b"d0000.pdf", b"d0000.pdf.txt", b"d0000.pdf.md", b"d0001.pdf",
        b"d0001.pdf.txt", b"d0001.pdf.md", b"d0002.pdf", b"d0002.pdf.txt", b"d0002.pdf.md",
        b"plain.dat"]
    cookies = [e.next_id for e in entries]
    assert cookies == sorted(set(cookies))
    fh = await fs.opendir(d, ROOT)
    for i, e in enumerate(entries):
        assert [x.name for x in await fs.readdir(fh, e.next_id)] == [x.name for x in entries[i + 1:]]
    await fs.releasedir(fh)
    for i, e in enumerate(entries):          # and from fresh handles, in small windows
        assert [x.name for x in await listing(fs, d, e.next_id, 2)][:2] == \
            [x.name for x in entries[i + 1:i + 3]]
    assert await all_names(fs, d) == [e.name for e in entries]
    # a parsed view has its size; views are read-only and carry the document's owner and times
    text = (await fs.docs.result(entries[2].attr.ino)).text.encode()
    doc, txt = entries[2].attr, entries[3].attr
    assert is_virtual(txt.ino) and txt.size == len(text) and txt.mode == st.S_IFREG | 0o444
    assert (txt.uid, txt.gid, txt.mtime_ns) == (doc.uid, doc.gid, doc.mtime_ns)
    assert (await fs.getattr(txt.ino)).size == len(text)


async def test_a_real_file_hides_a_view_and_links_get_views_per_name(fs):
    d = await mkdir(fs, ROOT_INO, b"d")
    await make_file(fs, b"a.pdf.txt", b"my own notes\n", parent=d)
    (a,) = await documents(fs, 1, d, prefix="a")
    await fs.rename(d, b"a0000.pdf", d, b"a.pdf", 0, ROOT)
    await fs.link(a, d, b"b.pdf", ROOT)
    fs.forget([(a, 1)])
    names = [e.name for e in await listing(fs, d)]
    assert names == [b".", b"..", b"a.pdf.txt", b"a.pdf", b"a.pdf.md", b"b.pdf", b"b.pdf.txt",
                     b"b.pdf.md"]
    real = [e for e in await listing(fs, d) if e.name == b"a.pdf.txt"][0]
    assert not is_virtual(real.attr.ino) and real.attr.size == 13
    assert await all_names(fs, d) == names


async def test_listing_queries_do_not_grow_with_documents(fs):
    """Kinds, parsed sizes and names that hide views are asked for a whole window at once."""
    d = await mkdir(fs, ROOT_INO, b"d")
    await documents(fs, 40, d)
    per_entry = ("lookup", "get_attr", "doc_kind", "view_lengths", "cached_view")
    calls = {name: 0 for name in per_entry}
    meta = fs.meta
    originals = {name: getattr(meta, name) for name in per_entry}

    def counting(name):
        def call(*a, **kw):
            calls[name] += 1
            return originals[name](*a, **kw)
        return call
    for name in per_entry:
        setattr(meta, name, counting(name))
    try:
        entries = await listing(fs, d)
    finally:
        for name in per_entry:
            delattr(meta, name)
    assert len(entries) == 2 + 3 * 40
    assert sum(calls.values()) <= 3, calls          # '.' and '..' only


async def test_store_batches_long_lists(fs):
    d = await mkdir(fs, ROOT_INO, b"d")
    kept = [await make_file(fs, f"f{i}".encode(), parent=d) for i in range(3)]
    names = [f"f{i}".encode() for i in range(1200)]
    assert fs.meta.live_names(d, names) == {b"f0", b"f1", b"f2"}
    assert fs.meta.doc_kinds(kept + list(range(10**6, 10**6 + 1200))) == {}
    assert fs.meta.view_lengths_of([os.urandom(32) for _ in range(1100)]) == {}


async def test_the_window_answers_continuations_but_never_hides_a_change(fs):
    d = await mkdir(fs, ROOT_INO, b"d")
    await documents(fs, 4, d)
    fh = await fs.opendir(d, ROOT)
    first = await fs.readdir(fh, 0)
    again = await fs.readdir(fh, first[4].next_id)
    assert [e.name for e in again] == [e.name for e in first[5:]]
    assert again[0] is first[5]                       # from the window: nothing rebuilt
    # a change in between (a logged operation): the continuation shows it
    await make_file(fs, b"new.pdf", docgen.pdf([["fresh words fulmar"]]), parent=d)
    later = await fs.readdir(fh, first[4].next_id)
    assert [e.name for e in later][-3:] == [b"new.pdf", b"new.pdf.txt", b"new.pdf.md"]
    # the new document's views get their size once parsed (its views change: no stale window)
    before = {e.name: e.attr for e in await fs.readdir(fh, first[4].next_id)}
    assert before[b"new.pdf.txt"].size == 0 or fs.docs.parsed_etag(before[b"new.pdf"].ino)
    res = await fs.docs.result(before[b"new.pdf"].ino)
    after = {e.name: e.attr for e in await fs.readdir(fh, first[4].next_id)}
    assert after[b"new.pdf.txt"].size == len(res.text.encode())
    assert after[b"new.pdf.md"].size == len(res.markdown.encode())
    # rewinding lists everything again, the new document included
    assert [e.name for e in await fs.readdir(fh, 0)][-3:] == [b"new.pdf", b"new.pdf.txt",
                                                             b"new.pdf.md"]
    await fs.releasedir(fh)


async def test_windows_are_few_and_go_with_their_handle(fs):
    from nexusfs.core import routing
    d = await mkdir(fs, ROOT_INO, b"d")
    await documents(fs, 2, d)
    handles = [await fs.opendir(d, ROOT) for _ in range(routing.WINDOWS_KEPT + 5)]
    for fh in handles:
        assert len(await fs.readdir(fh, 0)) == 8
    assert len(fs.windows) == routing.WINDOWS_KEPT and handles[0] not in fs.windows
    assert len(await fs.readdir(handles[0], 3)) == 6        # an evicted window: built again
    for fh in handles:
        await fs.releasedir(fh)
    assert fs.windows == {}


async def test_auto_parse_lists_documents_as_their_text(cfg):
    fs = start_fs(cfg)
    d = await mkdir(fs, ROOT_INO, b"d")
    (doc,) = await documents(fs, 1, d)
    await fs.close()
    auto = config.load(cfg.data_dir, auto_parse=True)
    fs = start_fs(auto)
    try:
        d = (await fs.lookup(ROOT_INO, b"d", ROOT)).ino
        entries = await listing(fs, d)
        assert [e.name for e in entries] == [b".", b"..", b"d0000.pdf"]
        text = (await fs.docs.result(doc)).text.encode()
        assert is_virtual(entries[2].attr.ino) and entries[2].attr.size == len(text)
    finally:
        await fs.close()
    assert check(auto) == []


async def test_grants_are_applied_once_to_each_reply(fs):
    """With grants, the kernel is shown widened group bits; entries answered again from the
    window must not be widened twice (they are copies)."""
    svc = HistoryService(fs)
    d = await mkdir(fs, ROOT_INO, b"p")
    await documents(fs, 3, d)
    for e in await listing(fs, d):
        if e.name == b"d0000.pdf":
            await fs.setattr(e.attr.ino, ROOT, mode=0o600)
    await execute(svc, "rebac create user:alice viewer-of /p", ROOT)
    assert fs.access.active
    fh = await fs.opendir(d, ROOT)
    whole = await fs.readdir(fh, 0)
    modes = {e.name: e.attr.mode for e in whole}
    for cut in range(len(whole)):
        again = await fs.readdir(fh, whole[cut].next_id)
        assert {e.name: e.attr.mode for e in again} == {e.name: modes[e.name] for e in whole[cut + 1:]}
    await fs.releasedir(fh)
    assert modes[b"d0000.pdf"] & 0o070 == 0o040 and modes[b"d0000.pdf.txt"] & 0o070 == 0o040
    fresh = {e.name: e.attr.mode for e in await listing(fs, d)}
    assert fresh == modes


async def test_parsed_views_may_stay_in_the_page_cache_and_others_read_direct(fs):
    """A view's inode of parsed content (its size known to the kernel) opens cacheable; before
    the parse, and for the inode of a content the document no longer has, direct I/O."""
    ino = await make_file(fs, b"q.pdf", PDF)
    unparsed = fs.vtree.view_vino(ino, ".txt")
    assert fs.docs.parsed_etag(ino) is None
    fh = fs._new_fh()
    assert await fs.vtree.open(unparsed, os.O_RDONLY, ROOT, fh) is True   # direct I/O
    fs.vtree.release(fh)
    for suffix in (".txt", ".md"):
        vino = fs.vtree.view_vino(ino, suffix)       # parsed now: a new inode number
        attr = fs.vtree.attr(vino)
        assert vino != unparsed and attr.size > 0
        fh = fs._new_fh()
        assert await fs.vtree.open(vino, os.O_RDONLY, ROOT, fh) is False  # page cache
        assert len(fs.vtree.handles[fh].data) == attr.size
        fs.vtree.release(fh)
    old = fs.vtree.view_vino(ino, ".txt")
    old_size = fs.vtree.attr(old).size
    fh = await fs.open(ino, os.O_WRONLY | os.O_TRUNC, ROOT)
    await fs.write(fh, 0, docgen.pdf([["another text entirely"]]))
    await fs.flush(fh)
    await fs.release(fh)
    await fs.docs.result(ino)
    assert fs.vtree.view_vino(ino, ".txt") != old
    a = fs.vtree.attr(old)                              # an inode keeps its own size
    assert (a.ino, a.size) == (old, old_size)
    fh = fs._new_fh()
    assert await fs.vtree.open(old, os.O_RDONLY, ROOT, fh) is True     # not that content now
    assert b"another text" in fs.vtree.handles[fh].data
    fs.vtree.release(fh)
