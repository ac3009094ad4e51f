"""Document views in the tree: which files have NAME.txt / NAME.md beside them, and their
content, parsed once per (content, parser version).

The kind of a file is detected (nexusfs.views.detect: libmagic on the leading bytes plus the
name) when a write to it is committed, and kept in the metadata, so a listing shows views
without reading or parsing anything. A view's text comes from the view cache when the same
content was parsed before (any copy of it, across restarts); otherwise the document is parsed
in the parse pool (worker processes with time and memory limits) in the background after the
write, or on first open. A listing asks for the views of a whole window of files at once
(``states``). Runs on the trio thread; parsing never does (nor does learning the parsers'
versions at mount, in a thread of its own).
"""
from __future__ import annotations

import logging
import os
import threading
import time

import blake3
import trio
import zstandard
from cachetools import LRUCache

from .. import views
from ..views import ParseResult
from ..views.detect import EXT_KINDS

log = logging.getLogger("nexusfs.views")

# leading bytes of the documents views parse: PDF, zip (OOXML, ODF, EPUB), OLE2 (XLS)
_SIGNATURES = (b"%PDF", b"PK\x03\x04", b"\xd0\xcf\x11\xe0")


class DocViews:
    def __init__(self, fs):
        self.fs = fs
        self.mode = fs.cfg.views_mode
        self.pool = None
        self._parsing: dict[bytes, trio.Event] = {}
        self._recent: LRUCache = LRUCache(maxsize=64)     # recently read views, decoded
        self._keys: dict[tuple, bytes] = {}      # (etag, kind) -> view cache key, bounded
        self.parses = 0
        self.cache_hits = 0
        self.generation = 0          # bumped whenever a file's views (kind, parsed size) change

    # -- kinds --------------------------------------------------------------------------------
    def etag(self, ino: int) -> bytes:
        """The content's identity: BLAKE3 over its chunk list (equal for every copy)."""
        h = blake3.blake3()
        for e in self.fs.content.extent_map(ino).extents:
            h.update(e.offset.to_bytes(8, "little") + e.loc.id)
        attr = self.fs.meta.get_attr(ino)
        h.update((attr.size if attr else 0).to_bytes(8, "little"))
        return h.digest()

    @property
    def wants_heads(self) -> bool:
        """Does after_commit use a file's first bytes (commits then hand them over)?"""
        return self.mode != "binary"

    async def after_commit(self, ino: int, head: bytes | None = None) -> None:
        """A write was committed: detect the kind again; parse documents in the background.
        ``head``: the file's first HEAD_SIZE bytes when the committer had them in memory."""
        if self.mode == "binary":
            return
        attr = self.fs.meta.get_attr(ino)
        if attr is None:
            return
        if head is None:
            head = b""
            if attr.size:
                head = await self.fs.content.read(ino, None, 0, min(attr.size, views.HEAD_SIZE))
        name = os.path.basename(self.fs.path_of(ino))
        if not self._may_be_document(head, name):
            kind = None                       # the common case, decided without libmagic
        else:
            kind = views.detect(head, name)
        if not views.views_for(kind, self.mode):
            kind = None
        if kind is None and self.fs.meta.doc_kind(ino) is None:
            return
        etag = self.etag(ino)
        self.fs.meta.set_doc_kind(ino, kind, etag)
        self.generation += 1
        if kind is not None:      # the kernel may remember "no such name" for the view names
            await self._renamed_views(ino)
        if kind is not None and self.fs.meta.cached_view(self.cache_key(etag, kind)) is None:
            trio.lowlevel.spawn_system_task(self._background_parse, ino)

    def _may_be_document(self, head: bytes, name: str) -> bool:
        """A cheap first look: in smart mode only content with a document's signature, or a
        name with a document's extension, can be a document (detect decides). Other modes
        ask detect about everything that is not plainly text."""
        if head.startswith(_SIGNATURES):
            return True
        ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        if ext in EXT_KINDS:
            return True
        if not ext and head.lstrip()[:1] == b"<":       # extensionless HTML
            return True
        return self.mode == "text" and b"\0" in head[:8192]

    def start_pool(self) -> None:
        """Start the parse workers in the background (at mount), so the first document a
        user opens does not wait for a worker to start."""
        if self.mode != "binary" and self.pool is None:
            self._pool().start_background()
            # the parsers' versions enter every view cache key (reading package metadata,
            # importing the parser modules): learn them now, not in the first listing
            kinds = [k for k in views.ALL_KINDS if views.views_for(k, self.mode)]
            threading.Thread(target=lambda: [views.cache_key(b"", k) for k in kinds],
                             name="views-versions", daemon=True).start()

    async def _background_parse(self, ino: int) -> None:
        try:
            await self.result(ino, urgent=False)
        except Exception:
            log.exception("background parse of %s failed", self.fs.path_of(ino))

    def kind(self, ino: int) -> str | None:
        found = self.fs.meta.doc_kind(ino)
        return found[0] if found and views.views_for(found[0], self.mode) else None

    def cache_key(self, etag: bytes, kind: str) -> bytes:
        """views.cache_key, remembered (a listing asks it for every document)."""
        key = self._keys.get((etag, kind))
        if key is None:
            if len(self._keys) >= 8192:
                self._keys.clear()
            key = self._keys[(etag, kind)] = views.cache_key(etag, kind)
        return key

    # -- content ------------------------------------------------------------------------------
    def state(self, ino: int) -> tuple[bytes | None, int, int]:
        """(etag of the parsed content or None, .txt size, .md size): what a view's attributes
        need, in two small queries (sizes are 0 until parsed; views open with direct I/O)."""
        found = self.fs.meta.doc_kind(ino)
        if found is None:
            return None, 0, 0
        lengths = self.fs.meta.view_lengths(self.cache_key(found[1], found[0]))
        if lengths is None:
            return None, 0, 0
        return found[1], lengths[0], lengths[1]

    def states(self, inos: list[int]) -> dict[int, tuple[tuple[str, ...], bytes | None, int, int]]:
        """For a listing, in two queries whatever the number of files: {ino: (view suffixes,
        parsed etag or None, .txt size, .md size)} of those of ``inos`` that have views in
        this mode."""
        if self.mode == "binary":
            return {}
        found = {ino: (suffixes, etag, self.cache_key(etag, kind))
                 for ino, (kind, etag) in self.fs.meta.doc_kinds(inos).items()
                 if (suffixes := views.views_for(kind, self.mode))}
        lengths = self.fs.meta.view_lengths_of([key for _s, _e, key in found.values()]) \
            if found else {}
        out = {}
        for ino, (suffixes, etag, key) in found.items():
            got = lengths.get(key)
            out[ino] = (suffixes, etag, got[0], got[1]) if got else (suffixes, None, 0, 0)
        return out

    def parsed_etag(self, ino: int) -> bytes | None:
        """The content identity whose views are in the cache, or None while unparsed."""
        return self.state(ino)[0]

    def _pool(self):
        if self.pool is None:
            self.pool = views.ParsePool(workers=max(1, self.fs.cfg.parse_workers))
        return self.pool

    async def result(self, ino: int, urgent: bool = True) -> ParseResult:
        """The parsed views of ``ino``'s current content (from the cache, or parsed now)."""
        found = self.fs.meta.doc_kind(ino)
        if found is None:
            raise FileNotFoundError(ino)
        kind = found[0]
        etag = self.etag(ino)
        if etag != found[1]:                    # changed behind the record (undo, restore)
            self.fs.meta.set_doc_kind(ino, kind, etag)
            self.generation += 1
        key = self.cache_key(etag, kind)
        while True:
            hot = self._recent.get(key)
            if hot is not None:
                self.cache_hits += 1
                return hot
            row = self.fs.meta.cached_view(key)
            if row is not None:
                self.cache_hits += 1
                res = ParseResult.from_bytes(zstandard.ZstdDecompressor().decompress(row[0]))
                self._recent[key] = res
                return res
            pending = self._parsing.get(key)
            if pending is None:
                break
            await pending.wait()                 # the same content is being parsed: share it
        done = self._parsing[key] = trio.Event()
        try:
            attr = self.fs.meta.get_attr(ino)
            data = await self.fs.content.read(ino, None, 0, attr.size) if attr.size else b""
            name = os.path.basename(self.fs.path_of(ino))
            res = await self._pool().parse(data, name, kind, urgent=urgent)
            self.parses += 1
            if res.cacheable:
                blob = zstandard.ZstdCompressor(level=3).compress(res.to_bytes())
                self.fs.meta.cache_view(key, blob, len(res.text.encode("utf-8", "surrogatepass")),
                                        len(res.markdown.encode("utf-8", "surrogatepass")),
                                        time.time_ns())
                self.generation += 1
                await self._renamed_views(ino)   # the views now have a size: new inodes
            return res
        finally:
            del self._parsing[key]
            done.set()

    async def _renamed_views(self, ino: int) -> None:
        found = self.fs.meta.name_of(ino)
        if found is not None:
            self.fs.invalidate((), {(found[0], found[1] + s.encode()) for s in views.VIEW_SUFFIXES})
            await self.fs.settle_kernel()

    @property
    def queue(self) -> int:
        """Documents being parsed right now."""
        return len(self._parsing)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None
