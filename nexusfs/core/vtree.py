"""The /.nexus/ tree: control and history as files, on reserved inode numbers.

    /.nexus/ctl          one command per write; the reply is read back on the same descriptor
    /.nexus/ctl.last     the caller's last reply
    /.nexus/log          the operation log, one JSON object per line
    /.nexus/stats        key: value lines
    /.nexus/snapshots/   mkdir = create, rmdir = delete, mv = rename; NAME/ is the tree then
    /.nexus/history/P/   the versions of P (a file shows as a directory of versions)
    /.nexus/at/SEQ/      the whole tree as of SEQ
    /.nexus/search/Q/    ranked search results for query Q (searchtree.py)

Hidden from the root's listing (it has no directory entry) but reachable by name. Everything
below snapshots/NAME, history/ and at/ is read-only (EROFS). Virtual inodes are numbered from
VINO_BASE; views of the past map (kind, seq, real inode) to a virtual number that lives as long
as the kernel holds a reference. Runs on the trio thread.
"""
from __future__ import annotations

import errno
import json
import stat as st
import time

from ..types import ROOT_INO, Attr, Caller, DirEntry, FsError
from .searchtree import SearchTree

VINO_BASE = 1 << 48
NEXUS, CTL, CTL_LAST, LOG, STATS, SNAPSHOTS, HISTORY, AT, CONFIG, RAW = (
    VINO_BASE + i for i in range(1, 11))
SEARCH = VINO_BASE + 11
NEXUS_NAME = b".nexus"
RAW_NAME = b".raw"
FIXED = {NEXUS: ("dir", 0o555), CTL: ("ctl", 0o666), CTL_LAST: ("last", 0o444),
         LOG: ("log", 0o444), STATS: ("stats", 0o444), SNAPSHOTS: ("snapdir", 0o755),
         HISTORY: ("hroot", 0o555), AT: ("atdir", 0o555), CONFIG: ("cfgdir", 0o555),
         RAW: ("rawroot", 0o755), SEARCH: ("srchroot", 0o555)}
TOP = [(b"ctl", CTL), (b"ctl.last", CTL_LAST), (b"log", LOG), (b"stats", STATS),
       (b"snapshots", SNAPSHOTS), (b"history", HISTORY), (b"at", AT), (b"config", CONFIG),
       (b"search", SEARCH)]
# settings shown under /.nexus/config/, one value per file
CONFIG_FILES = ("views_mode", "auto_parse", "retain_days", "retain_ops", "commit_interval",
                "chunk_cache_bytes", "data_dir")


def is_virtual(ino: int) -> bool:
    return ino >= VINO_BASE


class VHandle:
    __slots__ = ("vino", "data", "ctl", "caller")

    def __init__(self, vino, data=None, ctl=None, caller=None):
        self.vino, self.data, self.ctl, self.caller = vino, data, ctl, caller


class VirtualTree:
    def __init__(self, fs, service):
        self.fs = fs
        self.service = service
        # the ctl protocol belongs to the control layer, above the core: it plugs itself in
        # (control.attach); without it ctl answers ENOSYS and ctl.last is empty
        self.ctl_factory = None          # () -> handle with async write(off, data, caller), read(off, n)
        self.last = None                 # object with get(caller) -> bytes
        self.nodes: dict[int, tuple] = {}         # vino -> ("tree", seq, ino) | ("hdir", ino) ...
        self.ids: dict[tuple, int] = {}
        self.refs: dict[int, int] = {}
        self.handles: dict[int, VHandle] = {}
        self._views: dict[int, tuple] = {}      # vino -> (size, extent map) of an open past file
        self._next = VINO_BASE + 1000
        self.dropped = 0                 # virtual inodes forgotten so far (listings check it)
        self.started_ns = time.time_ns()
        self.search = SearchTree(fs, self)

    # -- virtual inode numbers ----------------------------------------------------------------
    def _vino(self, key: tuple) -> int:
        v = self.ids.get(key)
        if v is None:
            v = self._next
            self._next += 1
            self.ids[key], self.nodes[v] = v, key
        return v

    def _node(self, vino: int) -> tuple:
        if vino in FIXED:
            return (FIXED[vino][0],)
        node = self.nodes.get(vino)
        if node is None:
            raise FsError(errno.ENOENT)
        return node

    def entry(self, vino: int) -> Attr:
        self.refs[vino] = self.refs.get(vino, 0) + 1
        return self.attr(vino)

    def forget(self, vino: int, n: int) -> None:
        left = self.refs.get(vino, 0) - n
        if left > 0:
            self.refs[vino] = left
            return
        self.refs.pop(vino, None)
        key = self.nodes.pop(vino, None)
        if key is not None:
            self.ids.pop(key, None)
            self.dropped += 1

    # -- document views (NAME.txt / NAME.md beside a document) ---------------------------------
    def view_vino(self, doc: int, suffix: str, etag: bytes | None = None,
                  known: bool = False) -> int:
        """A view's inode number. It changes once the view is parsed (and with every new
        content): under the write-back cache the kernel keeps the size it first saw for an
        inode, so a view whose size became known must come back as a new inode."""
        if not known:
            etag = self.fs.docs.parsed_etag(doc)
        return self._vino(("view", doc, suffix, etag))

    def auto_vino(self, doc: int, etag: bytes | None = None, known: bool = False) -> int:
        """In auto-parse mode a document's own name shows its text view."""
        if not known:
            etag = self.fs.docs.parsed_etag(doc)
        return self._vino(("auto", doc, etag))

    def view_attr(self, doc: int, suffix: str, auto: bool = False, a: Attr | None = None,
                  state: tuple[bytes | None, int, int] | None = None) -> Attr:
        """A view's attributes: its document's owner, times and read permissions (a view
        never reveals what its document would not), the parsed size once known. A listing
        passes the document's attributes ``a`` and ``state`` (docs.state) it already has."""
        if a is None:
            a = self.fs._attr(doc)
        etag, text_len, md_len = state or self.fs.docs.state(doc)
        size = text_len if suffix == ".txt" else md_len
        key = ("auto", doc, etag) if auto else ("view", doc, suffix, etag)
        vino = self._vino(key)
        return Attr(vino, st.S_IFREG | (a.mode & 0o444), 1, a.uid, a.gid,
                    0, size, (size + 511) // 512, a.atime_ns, a.mtime_ns, a.ctime_ns,
                    volatile=True)

    def _own_state(self, doc: int, etag: bytes | None,
                   current: bool = False) -> tuple[bytes, int, int] | None:
        """The state (docs.state) of the parsed content a view's inode number names, also
        after its document changed: an inode keeps its own size (a reader holding it open
        keeps reading that text, and the kernel's cached pages of it stay whole). None
        before the parse (the document's current state applies), or with ``current`` when
        the document no longer has that content."""
        if etag is None:
            return None
        found = self.fs.meta.doc_kind(doc)
        if found is None or (current and found[1] != etag):
            return None
        lengths = self.fs.meta.view_lengths(self.fs.docs.cache_key(etag, found[0]))
        return (etag, lengths[0], lengths[1]) if lengths else None

    def views_in(self, dino: int, rows: list[tuple[int, bytes, Attr]]) -> dict[int, list]:
        """The document views among directory entries ``rows`` ([(id, name, Attr)] of
        ``dino``, as listed), in a few queries whatever their number: {id: [(k, name,
        Attr)]}, k being the view's place among its document's views (1 .txt, 2 .md: the
        listing's cookies), a real file of the view's name hiding it. In auto-parse mode a
        document's own entry shows its text: {id: [(0, name, Attr)]}."""
        states = self.fs.docs.states([a.ino for _d, _n, a in rows if st.S_ISREG(a.mode)])
        if not states:
            return {}
        auto = self.fs.cfg.auto_parse
        docs = [(did, name, a, states[a.ino]) for did, name, a in rows if a.ino in states]
        taken = set() if auto else self.fs.meta.live_names(
            dino, [name + sfx.encode() for _d, name, _a, (sfxs, *_r) in docs for sfx in sfxs])
        dirty = self.fs.dirty
        out = {}
        for did, name, a, (suffixes, *state) in docs:
            if a.ino in dirty:
                a = self.fs._attr(a.ino)
            if auto:
                out[did] = [(0, name, self.view_attr(a.ino, ".txt", True, a, state))]
                continue
            shown = []
            for k, suffix in enumerate(suffixes, 1):
                vname = name + suffix.encode()
                if vname not in taken:
                    shown.append((k, vname, self.view_attr(a.ino, suffix, False, a, state)))
            out[did] = shown
        return out

    # -- /.raw/: the real tree, documents as their bytes (auto-parse mode) ---------------------
    def _raw_attr(self, vino: int, dino: int) -> Attr:
        a = self.fs._attr(dino)
        a.ino, a.volatile = vino, True
        return a

    def raw_dir(self, dino: int) -> int:
        return RAW if dino == ROOT_INO else self._vino(("raw", dino))

    def _raw_child(self, dino: int, name: bytes) -> Attr:
        """A name in a /.raw/ directory: directories are mirrored, files are the real inodes
        themselves (their bytes, writable as usual)."""
        child = self.fs.meta.lookup(dino, name)
        if child is None:
            raise FsError(errno.ENOENT)
        a = self.fs._attr(child)
        if st.S_ISDIR(a.mode):
            return self.entry(self.raw_dir(child))
        return self.fs._entry(child)

    def _raw_listing(self, dino: int) -> list[DirEntry]:
        from ..history.restore import _entries_live
        out = []
        for i, (name, child) in enumerate(_entries_live(self.fs, dino).items(), 1):
            a = self.fs._attr(child)
            if st.S_ISDIR(a.mode):
                a = self._raw_attr(self.raw_dir(child), child)
            out.append(DirEntry(name, a, i))
        return out

    # -- what a virtual inode stands for (access control, core/accessview.py) -----------------
    def mirror(self, vino: int) -> tuple[int, str] | None:
        """(real inode, kind) when ``vino`` shows a live inode under that inode's permissions:
        a view or auto-parse node, a /.raw/ directory, a /.nexus/history/ entry."""
        if vino == RAW:
            return ROOT_INO, "raw"
        node = self.nodes.get(vino)
        if node is None:
            return None
        if node[0] in ("view", "auto", "raw", "hdir", "hfile"):
            return node[1], node[0]
        return None

    def is_past(self, vino: int) -> bool:
        node = self.nodes.get(vino)
        return node is not None and node[0] in ("tree", "hver")

    def past_inode(self, vino: int) -> int | None:
        """The real inode a node of a past tree (at/, snapshots/) shows, else None."""
        node = self.nodes.get(vino)
        return node[2] if node is not None and node[0] == "tree" else None

    # -- attributes ---------------------------------------------------------------------------
    def _fixed_attr(self, vino: int, kind: str, perm: int) -> Attr:
        if kind == "rawroot":
            return self._raw_attr(vino, ROOT_INO)
        is_dir = kind in ("dir", "snapdir", "hroot", "atdir", "cfgdir", "srchroot")
        mode = (st.S_IFDIR if is_dir else st.S_IFREG) | perm
        t = self.started_ns
        return Attr(vino, mode, 2 if is_dir else 1, 0, 0, 0, 0, 0, t, t, t, volatile=True)

    def attr(self, vino: int) -> Attr:
        if vino in FIXED:
            kind, perm = FIXED[vino]
            return self._fixed_attr(vino, kind, perm)
        node = self._node(vino)
        kind = node[0]
        if kind in SearchTree.KINDS:
            return self.search.attr(vino, node)
        if kind == "view":
            return self.view_attr(node[1], node[2], state=self._own_state(node[1], node[3]))
        if kind == "auto":
            return self.view_attr(node[1], ".txt", auto=True,
                                  state=self._own_state(node[1], node[2]))
        if kind == "raw":
            return self._raw_attr(vino, node[1])
        if kind == "cfg":
            t = self.started_ns
            size = len(self._config_value(node[1]))
            return Attr(vino, st.S_IFREG | 0o444, 1, 0, 0, 0, size, 0, t, t, t, volatile=True)
        if kind == "tree":
            a = self.fs.tt.attr(node[2], node[1])
            if a is None:
                raise FsError(errno.ENOENT)
            a.ino = vino
            return a
        if kind == "hdir":
            a = self.fs.meta.get_attr(node[1]) or self.fs.tt.attr(node[1], self.fs.meta.last_seq)
            if a is None:
                raise FsError(errno.ENOENT)
            a.ino, a.volatile = vino, True
            a.mode = st.S_IFDIR | (a.mode & 0o555)
            return a
        if kind == "hfile":
            versions = self.fs.tt.versions(node[1])
            t = versions[-1][3] if versions else self.started_ns
            # listing the versions of a file needs read permission on the file: each class
            # that may read it gets r-x here (core/accessview.py narrows its ACL alike)
            owner = (self.fs.meta.get_attr(node[1]) or self.fs.tt.attr(node[1], self.fs.meta.last_seq)
                     or self._last_attr(node[1]))
            uid, gid, fmode = (owner.uid, owner.gid, owner.mode) if owner else (0, 0, 0)
            perm = sum((0o5 << s) for s in (6, 3, 0) if fmode & (0o4 << s))
            return Attr(vino, st.S_IFDIR | perm, 2, uid, gid, 0, 0, 0, t, t, t, volatile=True)
        if kind == "hver":
            # (a version an unlink cut shows the file's state just before it)
            a = self.fs.tt.attr(node[1], node[2]) or self.fs.tt.attr(node[1], node[2] - 1)
            if a is None:
                raise FsError(errno.ENOENT)
            a.ino = vino
            a.mode = st.S_IFREG | (a.mode & 0o444)
            return a
        raise FsError(errno.ENOENT)

    # -- names --------------------------------------------------------------------------------
    def lookup(self, parent: int, name: bytes) -> Attr:
        if parent == NEXUS:
            for n, v in TOP:
                if n == name:
                    return self.entry(v)
            raise FsError(errno.ENOENT)
        if parent == SNAPSHOTS:
            snap = self.fs.tt.snapshot(name.decode(errors="replace"))
            if snap is None:
                raise FsError(errno.ENOENT)
            return self.entry(self._vino(("tree", snap[1], snap[2])))
        if parent == AT:
            if not name.isdigit() or len(name) > 19:
                raise FsError(errno.ENOENT)
            seq = int(name)
            try:
                self.service._seq_ok(seq)
            except FsError:
                raise FsError(errno.ENOENT) from None
            return self.entry(self._vino(("tree", seq, ROOT_INO)))
        if parent == HISTORY:
            return self._history_child(ROOT_INO, name)
        if parent == RAW:
            return self._raw_child(ROOT_INO, name)
        if parent == CONFIG:
            if name.decode(errors="replace") not in CONFIG_FILES:
                raise FsError(errno.ENOENT)
            return self.entry(self._vino(("cfg", name.decode())))
        node = self._node(parent)
        if node[0] == "raw":
            return self._raw_child(node[1], name)
        if node[0] == "tree":
            child = self.fs.tt.lookup(node[2], name, node[1])
            if child is None:
                raise FsError(errno.ENOENT)
            return self.entry(self._vino(("tree", node[1], child)))
        if node[0] == "hdir":
            return self._history_child(node[1], name)
        if node[0] == "hfile":
            for seq, _size, _mtime, t, ino in self.fs.tt.path_versions(node[2], node[3]):
                if self.service_version_name(seq, t) == name:
                    return self.entry(self._vino(("hver", ino, seq)))
            raise FsError(errno.ENOENT)
        raise FsError(errno.ENOTDIR)

    @staticmethod
    def service_version_name(seq: int, t: int) -> bytes:
        from ..history.service import version_name
        return version_name(seq, t).encode()

    def _history_child(self, dir_ino: int, name: bytes) -> Attr:
        child = self.fs.meta.lookup(dir_ino, name)
        if child is None:
            found = self.fs.tt.latest_lookup(dir_ino, name)
            if found is None:
                raise FsError(errno.ENOENT)
            child = found[0]
        a = self.fs.meta.get_attr(child) or self.fs.tt.attr(child, self.fs.meta.last_seq) \
            or self._last_attr(child)
        if a is None:
            raise FsError(errno.ENOENT)
        return self.entry(self._vino(self._history_node(a, child, dir_ino, name)))

    @staticmethod
    def _history_node(attr: Attr, ino: int, dir_ino: int, name: bytes) -> tuple:
        """A history directory: ("hdir", ino), or ("hfile", ino, parent, name) whose
        versions are those of every file the path has named (tt.path_versions)."""
        if st.S_ISDIR(attr.mode):
            return ("hdir", ino)
        return ("hfile", ino, dir_ino, name)

    def _last_attr(self, ino: int) -> Attr | None:
        end = self.fs.tt.last_state_seq(ino)
        return self.fs.tt.attr(ino, end - 1) if end else None

    def _config_value(self, name: str) -> bytes:
        value = getattr(self.fs.cfg, name)
        if isinstance(value, bool):
            value = "on" if value else "off"
        return f"{value}\n".encode()

    def readdir(self, vino: int, start: int, fh: int | None = None) -> list[DirEntry]:
        if self.nodes.get(vino, ("",))[0] == "sq":
            return self.search.readdir(vino, fh, start)
        if vino == RAW or self.nodes.get(vino, ("",))[0] == "raw":
            return self._raw_listing(ROOT_INO if vino == RAW else self.nodes[vino][1])[start:]
        names = self._listing(vino)
        out = []
        for i, (name, child) in enumerate(names[start:], start + 1):
            try:
                out.append(DirEntry(name, self.attr(child), i))
            except FsError:
                continue
        return out

    def _listing(self, vino: int) -> list[tuple[bytes, int]]:
        if vino == NEXUS:
            return list(TOP)
        if vino == SNAPSHOTS:
            return [(n.encode(), self._vino(("tree", s, r))) for n, s, r, _p, _c in self.fs.tt.snapshots()]
        if vino in (AT, SEARCH):
            return []
        if vino == CONFIG:
            return [(n.encode(), self._vino(("cfg", n))) for n in CONFIG_FILES]
        if vino == HISTORY:
            return self._history_listing(ROOT_INO)
        node = self._node(vino)
        if node[0] == "tree":
            from ..history.restore import _entries_at
            return [(n, self._vino(("tree", node[1], i))) for n, i in _entries_at(self.fs, node[2], node[1]).items()]
        if node[0] == "hdir":
            return self._history_listing(node[1])
        if node[0] == "hfile":
            return [(self.service_version_name(s, t), self._vino(("hver", ino, s)))
                    for s, _size, _m, t, ino in self.fs.tt.path_versions(node[2], node[3])]
        raise FsError(errno.ENOTDIR)

    def _history_listing(self, dir_ino: int) -> list[tuple[bytes, int]]:
        from ..history.restore import _entries_live
        out = []
        for name, child in _entries_live(self.fs, dir_ino).items():
            a = self.fs.meta.get_attr(child)
            if a is not None and (st.S_ISDIR(a.mode) or st.S_ISREG(a.mode)):
                out.append((name, self._vino(self._history_node(a, child, dir_ino, name))))
        return out

    def readlink(self, vino: int) -> bytes:
        node = self._node(vino)
        if node[0] == "sl":
            return node[3]
        if node[0] != "tree":
            raise FsError(errno.EINVAL)
        target = self.fs.tt.readlink(node[2], node[1])
        if target is None:
            raise FsError(errno.EINVAL)
        return target

    # -- files --------------------------------------------------------------------------------
    def _view_cacheable(self, node: tuple, size: int) -> bool:
        """May the kernel keep a view's pages (a repeated read then costs what a plain file's
        does)? Only for the inode number of a parsed content: its key holds the etag, so it
        names one text whose size every attribute reply gave, and it is still the document's
        current content. Before the parse, the size the kernel saw was 0: direct I/O."""
        own = self._own_state(node[1], node[3] if node[0] == "view" else node[2], current=True)
        if own is None:
            return False
        return size == (own[2] if node[0] == "view" and node[2] == ".md" else own[1])

    async def open(self, vino: int, flags: int, caller: Caller, fh: int) -> bool:
        """Open a virtual file; returns True when the kernel must not cache it (direct I/O)."""
        kind = self._node(vino)[0]
        writing = (flags & 3) != 0
        if kind in ("view", "auto"):
            if writing:
                raise FsError(errno.EROFS)
            node = self._node(vino)
            try:
                res = await self.fs.docs.result(node[1], urgent=True)
            except FileNotFoundError:
                raise FsError(errno.ENOENT) from None
            text = res.markdown if kind == "view" and node[2] == ".md" else res.text
            data = text.encode("utf-8", "surrogatepass")
            self.handles[fh] = VHandle(vino, data=data, caller=caller)
            return not self._view_cacheable(node, len(data))
        if kind == "ctl":
            if self.ctl_factory is None:
                raise FsError(errno.ENOSYS, "no control plane attached")
            self.handles[fh] = VHandle(vino, ctl=self.ctl_factory(), caller=caller)
            return True
        if kind == "sr":
            if writing:
                raise FsError(errno.EROFS)
            self.handles[fh] = VHandle(vino, data=await self.search.open(vino, caller))
            return True
        if kind == "cfg":
            if writing:
                raise FsError(errno.EROFS)
            self.handles[fh] = VHandle(vino, data=self._config_value(self._node(vino)[1]))
            return True
        if writing:
            raise FsError(errno.EROFS if kind in ("tree", "hver") else errno.EACCES)
        if kind == "last":
            data = self.last.get(caller) if self.last is not None else b""
            self.handles[fh] = VHandle(vino, data=data, caller=caller)
        elif kind == "log":
            recs = await self.service.log(caller=caller)
            self.handles[fh] = VHandle(vino, data="".join(
                json.dumps(r, ensure_ascii=False) + "\n" for r in recs).encode(errors="replace"))
        elif kind == "stats":
            s = await self.service.stats()
            self.handles[fh] = VHandle(vino, data="".join(f"{k}: {v}\n" for k, v in s.items()).encode())
        elif kind in ("tree", "hver"):
            node = self._node(vino)
            attr = self.attr(vino)
            if st.S_ISDIR(attr.mode):
                raise FsError(errno.EISDIR)
            seq, ino = (node[1], node[2]) if kind == "tree" else (node[2], node[1])
            self.handles[fh] = VHandle(vino, data=("past", ino, seq))
            return False
        else:
            raise FsError(errno.EISDIR)
        return True

    async def read(self, fh: int, offset: int, size: int) -> bytes:
        h = self.handles[fh]
        if h.ctl is not None:
            return h.ctl.read(offset, size)
        if isinstance(h.data, tuple):
            _, ino, seq = h.data
            view = self._views.get(h.vino)
            if view is None:
                view = self._views[h.vino] = self.fs.past_view(ino, seq)
            return await self.fs.read_at(ino, seq, offset, size, view=view)
        return h.data[offset:offset + size]

    async def write(self, fh: int, offset: int, data: bytes) -> int:
        h = self.handles[fh]
        if h.ctl is None:
            raise FsError(errno.EBADF)
        return await h.ctl.write(offset, data, h.caller)

    def release(self, fh: int) -> None:
        h = self.handles.pop(fh, None)
        if h is not None and not any(o.vino == h.vino for o in self.handles.values()):
            self._views.pop(h.vino, None)

    # -- mutations: snapshots by mkdir/rmdir/mv; everything else is read-only ------------------
    def _readonly(self, parent: int) -> FsError:
        return FsError(errno.EROFS if parent not in FIXED else errno.EPERM)

    async def mkdir(self, parent: int, name: bytes, caller: Caller) -> Attr:
        if parent != SNAPSHOTS:
            raise self._readonly(parent)
        await self.service.snapshot_create(name.decode(errors="replace"), "/", caller)
        return self.lookup(SNAPSHOTS, name)

    async def rmdir(self, parent: int, name: bytes, caller: Caller) -> None:
        if parent != SNAPSHOTS:
            raise self._readonly(parent)
        await self.service.snapshot_delete(name.decode(errors="replace"), caller)

    async def rename(self, old_parent: int, old: bytes, new_parent: int, new: bytes, flags: int,
                     caller: Caller) -> None:
        if old_parent != SNAPSHOTS or new_parent != SNAPSHOTS:
            raise FsError(errno.EXDEV if is_virtual(old_parent) != is_virtual(new_parent)
                          else errno.EROFS)
        if flags:
            raise FsError(errno.EINVAL)
        await self.service.snapshot_rename(old.decode(errors="replace"), new.decode(errors="replace"), caller)
