"""/.nexus/search/QUERY/: ranked search results as a directory.

Looking up any name under /.nexus/search/ runs that query (the name is the query text; a
"/" in a query is written %2F) for the caller, and the directory then holds:

    results.txt           path:line: snippet, best first
    src%2Fauth.py  ->     ../../../src/auth.py (one relative symlink per result, named after
                          the file's path with / written %2F and % as %25)

Results are computed per caller (they only ever hold what the caller may read) at each lookup
of the query name, at opendir and at the open of results.txt; a computation is reused while
nothing changed (same caller, same last seq, same index generation), so `ls -l` does not
search once per entry. The kernel may not cache these entries at all (timeout 0): the next
lookup sees a rename or a delete at once, and two users never share an entry. Names longer
than 255 bytes are ENAMETOOLONG; a query that is not valid is EINVAL.

Runs on the trio thread (the search itself awaits content reads and index threads).
"""
from __future__ import annotations

import errno
import stat as st

import blake3
from cachetools import LRUCache

from ..search import ops
from ..types import NAME_MAX, Attr, Caller, DirEntry, FsError

RESULTS = b"results.txt"
LIMIT = 50


def link_name(path: str) -> bytes:
    """The entry name of a result: its path without the leading /, % as %25 and / as %2F
    (shortened with a hash past NAME_MAX bytes)."""
    name = path.lstrip("/").replace("%", "%25").replace("/", "%2F")
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) > NAME_MAX:
        tag = b"~" + blake3.blake3(raw).hexdigest()[:16].encode()
        raw = raw[:NAME_MAX - len(tag)] + tag
    return raw


def query_of(name: bytes) -> str:
    return name.decode("utf-8", "replace").replace("%2F", "/").replace("%2f", "/")


class SearchTree:
    KINDS = ("sq", "sl", "sr")

    def __init__(self, fs, vtree):
        self.fs = fs
        self.vtree = vtree
        self._memo: LRUCache = LRUCache(maxsize=256)    # (query, caller key) -> (stamp, found)
        self._dirs: LRUCache = LRUCache(maxsize=256)    # opendir fh -> entries

    def owns(self, vino: int) -> bool:
        from .vtree import SEARCH
        return vino == SEARCH or self.vtree.nodes.get(vino, ("",))[0] in self.KINDS

    # -- computing results --------------------------------------------------------------------
    async def _results(self, query: bytes, caller: Caller) -> list[dict]:
        key = (query, caller.uid, caller.gid, tuple(caller.groups))
        svc = self.fs.search
        stamp = (self.fs.meta.last_seq, svc.generation, len(svc.pending))
        hit = self._memo.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        found = await ops.search(svc, caller, query_of(query), limit=LIMIT)
        stamp = (self.fs.meta.last_seq, svc.generation, len(svc.pending))
        self._memo[key] = (stamp, found)
        return found

    def _entries(self, qvino: int, found: list[dict]) -> list[tuple[bytes, int]]:
        out = [(RESULTS, self.vtree._vino(("sr", qvino)))]
        for r in found:
            target = ("../../../" + r["path"].lstrip("/")).encode("utf-8", "surrogateescape")
            out.append((link_name(r["path"]), self.vtree._vino(("sl", qvino, link_name(r["path"]),
                                                                 target))))
        return out

    # -- names --------------------------------------------------------------------------------
    async def lookup(self, parent: int, name: bytes, caller: Caller) -> Attr:
        from .vtree import SEARCH
        if len(name) > NAME_MAX:
            raise FsError(errno.ENAMETOOLONG)
        if parent == SEARCH:
            if name == b"..":
                return self.vtree.entry(self.vtree_nexus())
            await self._results(name, caller)            # runs the query: errors show here
            return self.vtree.entry(self.vtree._vino(("sq", name)))
        node = self.vtree.nodes.get(parent)
        if node is None or node[0] != "sq":
            raise FsError(errno.ENOTDIR)
        if name == b"..":
            return self.vtree.entry(SEARCH)
        for child_name, vino in self._entries(parent, await self._results(node[1], caller)):
            if child_name == name:
                return self.vtree.entry(vino)
        raise FsError(errno.ENOENT)

    def vtree_nexus(self) -> int:
        from .vtree import NEXUS
        return NEXUS

    async def opendir(self, vino: int, fh: int, caller: Caller) -> None:
        node = self.vtree.nodes.get(vino)
        if node is not None and node[0] == "sq":
            self._dirs[fh] = self._entries(vino, await self._results(node[1], caller))

    def readdir(self, vino: int, fh: int | None, start: int) -> list[DirEntry]:
        names = self._dirs.get(fh, []) if fh is not None else []
        out = []
        for i, (name, child) in enumerate(names[start:], start + 1):
            out.append(DirEntry(name, self.attr(child, self.vtree.nodes[child]), i))
        return out

    # -- attributes and content ---------------------------------------------------------------
    def attr(self, vino: int, node: tuple) -> Attr:
        t = self.vtree.started_ns
        kind = node[0]
        if kind == "sq":
            return Attr(vino, st.S_IFDIR | 0o555, 2, 0, 0, 0, 0, 0, t, t, t, volatile=True, uncached=True)
        if kind == "sl":
            return Attr(vino, st.S_IFLNK | 0o777, 1, 0, 0, 0, len(node[3]), 0, t, t, t,
                        volatile=True, uncached=True)
        # results.txt: its size depends on who asks, and attributes do not know: 0 (it opens
        # with direct I/O, so readers read to the end whatever the size says)
        return Attr(vino, st.S_IFREG | 0o444, 1, 0, 0, 0, 0, 0, t, t, t, volatile=True, uncached=True)

    async def open(self, vino: int, caller: Caller) -> bytes:
        node = self.vtree._node(vino)
        qnode = self.vtree._node(node[1])
        found = await self._results(qnode[1], caller)
        return ops.results_text(found).encode("utf-8", "surrogateescape")
