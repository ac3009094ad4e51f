"""The queries: grep (regex over raw bytes and parsed views), glob (names), search (ranked).

grep: the trigram index names the inodes that may match (plus every inode it cannot answer
for: queued, being indexed, buffered writes, content past the cap, documents not parsed
yet); their live paths are resolved, filtered by scope, glob and permission, sorted, and the
regex confirms line by line against the live content (what a read through the mount returns),
in worker threads. Without a usable literal (``a.c``, ``x*``) every file in scope is a
candidate. Results come in pages: a page stops after ``limit`` lines and returns a cursor
(path, line) the next page resumes from, so a huge result set streams with bounded memory.

Paths are store paths ("/src/a.py"), str with undecodable bytes as surrogate escapes. Parsed
matches are reported under the path of the view that shows the text in the mount (NAME.txt,
or the document's own name in auto-parse mode); raw matches of documents in auto-parse mode
under /.raw/. Runs on the trio thread, except the matching and index queries (threads).
"""
from __future__ import annotations

import errno
import os
import re
import stat as st

import trio

from ..history.paths import resolve_live
from ..types import Caller, FsError
from .index import QueryError
from .query import best_line, to_fts
from .regex import PatternError, compile_pattern, glob_regex, required, trigram_query

MODES = ("auto", "parsed", "raw")
MATCH_BYTES = 8 << 20        # content handed to one matching thread
WHOLE_FILE = 1 << 62         # a cursor's line past every line: resume after that file


def _name(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


class Scope:
    """Where a query looks: a directory (or one file) and an optional glob."""

    def __init__(self, fs, path: str, file_pattern: str | None):
        self.fs = fs
        self.path = "/" + path.strip("/") if path and path != "/" else "/"
        try:
            self.ino = resolve_live(fs, self.path)
        except FsError as e:
            raise FsError(e.errno, f"{self.path}: no such file or directory") from None
        self.glob = glob_regex(file_pattern) if file_pattern else None
        self.prefix = self.path.rstrip("/") + "/"

    def contains(self, path: str) -> bool:
        if path != self.path and not path.startswith(self.prefix):
            return False
        if self.glob is None:
            return True
        rel = path[len(self.prefix):] if path != self.path else os.path.basename(path)
        return self.glob.match(rel) is not None


def walk(fs, scope: Scope, allowed, files_only: bool = True):
    """(path, ino, Attr) of the entries under the scope the caller can list, in path order;
    directories the caller may not search or read are not entered (grep -r skips them)."""
    root_attr = fs.meta.get_attr(scope.ino)
    if root_attr is None:
        return []
    if not st.S_ISDIR(root_attr.mode):
        return [(scope.path, scope.ino, root_attr)] if scope.contains(scope.path) else []
    out = []
    stack = [(scope.path.rstrip("/"), scope.ino)]
    while stack:
        base, dino = stack.pop()
        if not allowed(dino, os.R_OK | os.X_OK):
            continue
        after = 0
        while True:
            rows = fs.meta.list_dir(dino, after, 5000)
            if not rows:
                break
            after = rows[-1][0]
            for _id, name, attr in rows:
                path = base + "/" + _name(name)
                if st.S_ISDIR(attr.mode):
                    stack.append((path, attr.ino))
                    if files_only:
                        continue
                if scope.contains(path):
                    out.append((path, attr.ino, attr))
    out.sort(key=lambda r: r[0].encode("utf-8", "surrogateescape"))
    return out


def paths_of(fs, ino: int) -> list[tuple[str, int]]:
    """Every live (path, parent inode) of ``ino``."""
    out = []
    for parent, name in fs.meta.names(ino):
        base = fs.path_of(parent, is_dir=True)
        if "<unlinked>" in base:
            continue
        out.append((base.rstrip("/") + "/" + _name(name), parent))
    return out


# -- grep --------------------------------------------------------------------------------------
def match_lines(rx: re.Pattern, data: bytes, after_line: int = 0, limit: int | None = None,
                count_only: bool = False):
    """Matching lines of ``data``, as grep sees them: [(line number, line)] (or their count)."""
    out = []
    n = 0
    pos = 0
    lineno = 1
    counted = 0
    size = len(data)
    while pos <= size:
        m = rx.search(data, pos)
        if m is None:
            break
        ls = data.rfind(b"\n", 0, m.start()) + 1
        if ls < pos:
            ls = pos
        if ls >= size:
            break                                   # past the last line
        le = data.find(b"\n", m.start())
        le = size if le < 0 else le
        if m.end() > le:                            # spans lines: look at its first line only
            le = data.find(b"\n", ls)
            le = size if le < 0 else le
        line = data[ls:le]
        lineno += data.count(b"\n", counted, ls)
        counted = ls
        if lineno > after_line and rx.search(line) is not None:
            n += 1
            if not count_only:
                out.append((lineno, line))
                if limit is not None and len(out) >= limit:
                    break
        pos = le + 1
    return n if count_only else out


def _decode(line: bytes) -> str:
    return line.decode("utf-8", "surrogateescape")


def display_path(fs, path: str, source: str, is_doc: bool) -> str:
    """Where the matched text can be read in the mount."""
    if source == "parsed":
        return path if fs.cfg.auto_parse else path + ".txt"
    return "/.raw" + path if fs.cfg.auto_parse and is_doc else path


async def grep(svc, caller: Caller, pattern: str, *, path: str = "/", file_pattern=None,
               mode: str = "auto", ignore_case: bool = False, fixed: bool = False,
               files_only: bool = False, count: bool = False, limit: int = 1000,
               after: tuple[str, int] | None = None) -> dict:
    """One page of grep results: {"results": [...], "next": cursor or None, "candidates": N,
    "narrowed": bool}. Records: {"path", "file", "source", "line", "text"} (matching line),
    {"path", "file", "source", "binary": true} (a binary file matches), {"path", ..., "count"}
    (with ``count``), {"path", "file", "source"} (with ``files_only``)."""
    fs = svc.fs
    if mode not in MODES:
        raise FsError(errno.EINVAL, f"search mode must be one of {', '.join(MODES)}")
    try:
        rx = compile_pattern(pattern, ignore_case=ignore_case, fixed=fixed)
        scope = Scope(fs, path, file_pattern)
    except PatternError as e:
        raise FsError(errno.EINVAL, str(e)) from None
    allowed = svc.allowed(caller)
    tq = None if count else trigram_query(required(rx))
    narrowed = tq is not None and svc.db is not None
    if narrowed:
        unsettled = svc.unsettled() | set(fs.dirty)
        try:
            raw_c, parsed_c = await trio.to_thread.run_sync(svc.db.candidates, tq, mode)
        except QueryError:
            narrowed = False
    if narrowed:
        entries = []
        for ino in sorted(raw_c | parsed_c | unsettled):
            attr = fs.meta.get_attr(ino)
            if attr is None or not st.S_ISREG(attr.mode):
                continue
            for p, _parent in paths_of(fs, ino):
                if scope.contains(p):
                    entries.append((p, ino, attr))
        entries.sort(key=lambda r: r[0].encode("utf-8", "surrogateescape"))
    else:
        entries = [e for e in walk(fs, scope, allowed) if st.S_ISREG(e[2].mode)]
    results: list[dict] = []
    after_path, after_line = after if after else (None, 0)
    if limit < 1:
        raise FsError(errno.EINVAL, "the page size must be at least 1")
    if after_path is not None:
        key = after_path.encode("utf-8", "surrogateescape")
        entries = [e for e in entries if e[0].encode("utf-8", "surrogateescape") >= key]
    todo: list[tuple] = []
    shown: dict[str, str] = {}
    todo_bytes = 0
    next_cursor = None

    async def flush():
        nonlocal todo, todo_bytes
        done, stop = await trio.to_thread.run_sync(
            _confirm, rx, todo, files_only, count, limit - len(results))
        for rec in done:
            rec["path"] = shown[rec["file"]]
        results.extend(done)
        todo, todo_bytes = [], 0
        return stop

    for p, ino, _attr in entries:
        if p == after_path and (after_line >= WHOLE_FILE or count or files_only):
            continue
        if not allowed(ino, os.R_OK):
            continue
        kind = fs.docs.kind(ino)
        source = "parsed" if kind is not None and mode != "raw" else "raw"
        if source == "raw" and mode == "parsed":
            continue
        data = await _content(fs, ino, source)
        if data is None:
            continue
        todo.append((p, ino, source, data, after_line if p == after_path else 0))
        shown[p] = display_path(fs, p, source, kind is not None)
        todo_bytes += len(data)
        if todo_bytes >= MATCH_BYTES or len(todo) >= 256:
            next_cursor = await flush()
            if next_cursor is not None:
                break
    if todo and next_cursor is None:
        next_cursor = await flush()
    return {"results": results, "next": next_cursor, "candidates": len(entries),
            "narrowed": narrowed}


async def _content(fs, ino: int, source: str) -> bytes | None:
    if source == "parsed":
        try:
            res = await fs.docs.result(ino, urgent=True)
        except FileNotFoundError:
            return None
        return res.text.encode("utf-8", "surrogatepass")
    attr = fs._attr(ino)
    if not attr.size:
        return b""
    return await fs.content.read(ino, fs.dirty.get(ino), 0, attr.size)


def _confirm(rx, todo, files_only, count, room):
    """Match a group of files (worker thread): (records, cursor where the page stopped)."""
    out: list[dict] = []
    for p, _ino, source, data, skip in todo:
        binary = source == "raw" and b"\0" in data
        if binary:                  # GNU grep ends lines at NUL bytes in binary files too
            data = data.replace(b"\0", b"\n")
        base = {"file": p, "source": source}
        if count:
            out.append({**base, "count": match_lines(rx, data, count_only=True)})
        elif files_only or binary:
            if match_lines(rx, data, limit=1):
                out.append({**base, "binary": True} if binary and not files_only else base)
        else:
            for lineno, line in match_lines(rx, data, after_line=skip, limit=room - len(out)):
                out.append({**base, "line": lineno, "text": _decode(line)})
            if len(out) >= room:
                return out, (p, out[-1]["line"])
        if len(out) >= room:
            return out, (p, WHOLE_FILE)           # resume after this path
    return out, None


# -- glob --------------------------------------------------------------------------------------
async def glob(svc, caller: Caller, pattern: str, *, path: str = "/", limit: int | None = None
               ) -> list[dict]:
    fs = svc.fs
    try:
        scope = Scope(fs, path, pattern)
    except PatternError as e:
        raise FsError(errno.EINVAL, str(e)) from None
    allowed = svc.allowed(caller)
    out = []
    for p, ino, attr in walk(fs, scope, allowed, files_only=False):
        out.append({"path": p, "type": "dir" if st.S_ISDIR(attr.mode) else
                    "file" if st.S_ISREG(attr.mode) else "symlink" if st.S_ISLNK(attr.mode)
                    else "other", "size": attr.size})
        if limit is not None and len(out) >= limit:
            break
    return out


# -- ranked search -----------------------------------------------------------------------------
SNIPPET_READ = 1 << 20


async def search(svc, caller: Caller, text: str, *, path: str = "/", limit: int = 10,
                 settle: float = 2.0) -> list[dict]:
    """The best ``limit`` files for ``text`` the caller may read: [{"path", "line", "snippet",
    "score", "source"}], best first."""
    fs = svc.fs
    try:
        fts, terms = to_fts(text)
        scope = Scope(fs, path, None)
    except (QueryError, PatternError) as e:
        raise FsError(errno.EINVAL, str(e)) from None
    if svc.db is None:
        raise FsError(errno.ENOSYS, "no search index")
    await svc.settle(settle)
    allowed = svc.allowed(caller)
    out: list[dict] = []
    offset = 0
    page = max(limit * 3, 30)
    while len(out) < limit:
        try:
            rows = await trio.to_thread.run_sync(svc.db.ranked, fts, offset, page)
        except QueryError as e:
            raise FsError(errno.EINVAL, f"invalid query: {e}") from None
        if not rows:
            break
        offset += len(rows)
        for ino, score in rows:
            attr = fs.meta.get_attr(ino)
            if attr is None or not st.S_ISREG(attr.mode) or not allowed(ino, os.R_OK):
                continue
            where = next((p for p, _ in paths_of(fs, ino) if scope.contains(p)), None)
            if where is None:
                continue
            kind = fs.docs.kind(ino)
            source = "parsed" if kind is not None else "raw"
            body = await _snippet_text(fs, ino, source, attr.size)
            if len(body) < 65536:                  # cheap: no thread hop for small texts
                line, snippet = best_line(body, terms)
            else:
                line, snippet = await trio.to_thread.run_sync(best_line, body, terms)
            out.append({"path": where, "line": line, "snippet": snippet,
                        "score": float(f"{-score:.4g}"), "source": source})
            if len(out) >= limit:
                break
    return out


async def _snippet_text(fs, ino: int, source: str, size: int) -> str:
    if source == "parsed":
        try:
            return (await fs.docs.result(ino, urgent=True)).text
        except FileNotFoundError:
            return ""
    data = await fs.content.read(ino, None, 0, min(size, SNIPPET_READ)) if size else b""
    if b"\0" in data[:8192]:
        return ""
    return data.decode("utf-8", "replace")


def results_text(results: list[dict]) -> str:
    """path:line: snippet lines (results.txt, nexus search)."""
    return "".join(f"{r['path']}:{r['line']}: {r['snippet']}\n" for r in results)


def parse_cursor(text: str | None) -> tuple[str, int] | None:
    if not text:
        return None
    p, sep, line = text.rpartition(":")
    if not sep or not line.isdigit():
        raise FsError(errno.EINVAL, f"bad cursor {text!r}")
    return p, int(line)


def format_cursor(cur: tuple[str, int] | None) -> str | None:
    return None if cur is None else f"{cur[0]}:{cur[1]}"

