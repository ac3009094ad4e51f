"""The search index: its own SQLite database (DATA_DIR/index.db), FTS5 tables keyed by inode.

Why a file of its own and not tables in meta.db: index writes never join the metadata
writer's batch transaction (they happen in a worker thread, at their own pace), and a damaged
or outdated index can simply be deleted and rebuilt: it holds nothing that is not derived from
the store. It never holds paths (renames cost nothing; paths are resolved live at query time)
nor text: results are confirmed against the live content.

Tables:
    files       one row per indexed inode: the state key it was indexed at (inode seq, size,
                mtime, ctime: what the reconciliation at mount compares), its document kind,
                and flags saying what the trigram tables cannot answer for it (content past
                the size cap, a document whose parse is not known yet)
    raw_tri     FTS5 trigram (detail=none, contentless): the raw bytes of every file, decoded
                as UTF-8 with replacement — narrows grep in raw and auto modes
    parsed_tri  the same over the parsed text of documents — grep in parsed and auto modes
    words       FTS5 porter/unicode61 (contentless, detail=full): file names and text (parsed
                text for documents, raw text for text files) — ranked search (BM25)

Concurrency: one writer (the indexer's worker thread) and readers (query threads), each call
on its own APSW connection guarded by a lock; WAL, so readers see the last committed batch.
``synchronous=NORMAL``: a crash may lose the last batches, which the reconciliation at the
next mount re-indexes (their files rows are lost with them).
"""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import apsw

log = logging.getLogger("nexusfs.search")

INDEX_VERSION = 1
RAW_CAP = 8 << 20           # bytes of a file the trigram index holds; past it: always scanned
WORDS_CAP = 4 << 20         # characters of text the word index holds per file

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value);
CREATE TABLE IF NOT EXISTS files (
    ino      INTEGER PRIMARY KEY,   -- the inode (meta.db's inodes.ino)
    key      TEXT NOT NULL,         -- 'seq:size:mtime_ns:ctime_ns' of the state indexed
    kind     TEXT,                  -- document kind (views) or NULL
    partial  INTEGER NOT NULL,      -- 1: raw content not in raw_tri (past the cap, or binary:
                                    --    grep scans it live)
    unparsed INTEGER NOT NULL,      -- 1: a document whose text is not indexed (yet)
    binary   INTEGER NOT NULL       -- 1: raw content holds NUL bytes
);
CREATE INDEX IF NOT EXISTS files_partial ON files(ino) WHERE partial=1;
CREATE INDEX IF NOT EXISTS files_unparsed ON files(ino) WHERE unparsed=1;
CREATE VIRTUAL TABLE IF NOT EXISTS raw_tri USING fts5(body, tokenize='trigram',
    content='', contentless_delete=1, detail=none);
CREATE VIRTUAL TABLE IF NOT EXISTS parsed_tri USING fts5(body, tokenize='trigram',
    content='', contentless_delete=1, detail=none);
CREATE VIRTUAL TABLE IF NOT EXISTS words USING fts5(name, body,
    tokenize='porter unicode61 remove_diacritics 2', content='', contentless_delete=1);
INSERT OR IGNORE INTO info VALUES ('version', {INDEX_VERSION});
"""


FTS_TABLES = ("raw_tri", "parsed_tri", "words")


class QueryError(ValueError):
    """The full-text query is not valid FTS5 syntax; str() is one line."""


@dataclass(slots=True)
class Doc:
    """What the indexer gathered about one inode (on the trio thread); ``apply`` indexes it.
    ``raw`` None: the inode is gone (delete its rows)."""

    ino: int
    key: str = ""
    names: str = ""
    raw: bytes | None = None
    partial: bool = False
    kind: str | None = None
    parsed: str | None = None       # the document's text, when known


def text_of(data: bytes) -> str:
    return data.decode("utf-8", "replace").replace("\0", " ")


class IndexDB:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._wlock = threading.Lock()
        self._rlock = threading.Lock()
        self.w = self._open()
        self.r = self._connect()

    def _connect(self) -> apsw.Connection:
        conn = apsw.Connection(str(self.path))
        conn.setbusytimeout(5000)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-32768")
        return conn

    def _open(self) -> apsw.Connection:
        """Open the index, or delete and recreate it when it is damaged or of another version."""
        for attempt in (1, 2):
            try:
                conn = self._connect()
                version = None
                try:
                    row = conn.execute("SELECT value FROM info WHERE key='version'").fetchone()
                    version = row[0] if row else None
                except apsw.SQLError:
                    pass                     # a new file: no tables yet
                if version not in (None, INDEX_VERSION):
                    raise apsw.CorruptError(f"index version {version}")
                with conn:
                    conn.execute(SCHEMA)
                    for table in FTS_TABLES:
                        # No merge triggered by deletions: with the default (a segment is
                        # rewritten once 10% of it is deleted) removing 2,358 files in the
                        # indexer's batches of 256 took 1.0 s of index CPU (seven rewrites of
                        # the big segments), 0.04 s without. Deleted rows stay as tombstones,
                        # skipped by queries, until the ordinary merges of new segments.
                        conn.execute(f"INSERT INTO {table}({table}, rank) VALUES"
                                     " ('deletemerge', 0)")
                if attempt == 1 and conn.execute("PRAGMA quick_check(1)").fetchone()[0] != "ok":
                    raise apsw.CorruptError("quick_check failed")
                return conn
            except apsw.Error as e:
                if attempt == 2:
                    raise
                log.warning("search index %s unusable (%s): rebuilding it", self.path, e)
                try:
                    conn.close()
                except Exception:
                    pass
                for suffix in ("", "-wal", "-shm"):
                    try:
                        os.unlink(str(self.path) + suffix)
                    except FileNotFoundError:
                        pass
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._wlock, self._rlock:
            self.r.close()
            self.w.close()

    def interrupt(self) -> None:
        """Abort the batch being written (from any thread; it rolls back and raises)."""
        self.w.interrupt()

    # -- writing (the indexer's thread) -------------------------------------------------------
    def apply(self, docs: list[Doc]) -> None:
        """Index a batch in one transaction (replacing what each inode had)."""
        with self._wlock, self.w:
            c = self.w
            for d in docs:
                if c.execute("SELECT 1 FROM files WHERE ino=?", (d.ino,)).fetchone():
                    c.execute("DELETE FROM raw_tri WHERE rowid=?", (d.ino,))
                    c.execute("DELETE FROM parsed_tri WHERE rowid=?", (d.ino,))
                    c.execute("DELETE FROM words WHERE rowid=?", (d.ino,))
                    c.execute("DELETE FROM files WHERE ino=?", (d.ino,))
                if d.raw is None:
                    continue
                # Binary content is not trigram-indexed: its trigrams are nearly all distinct
                # (8 MiB of random bytes would take minutes and bloat the index), and grep
                # reads such files live anyway; partial=1 makes every grep scan it.
                binary = b"\0" in d.raw
                raw_text = "" if binary else text_of(d.raw)
                if not binary:
                    c.execute("INSERT INTO raw_tri(rowid, body) VALUES (?,?)", (d.ino, raw_text))
                if d.kind is not None and d.parsed is not None:
                    c.execute("INSERT INTO parsed_tri(rowid, body) VALUES (?,?)", (d.ino, d.parsed))
                body = d.parsed if d.kind is not None else ("" if binary else raw_text)
                c.execute("INSERT INTO words(rowid, name, body) VALUES (?,?,?)",
                          (d.ino, d.names, (body or "")[:WORDS_CAP]))
                c.execute("INSERT INTO files VALUES (?,?,?,?,?,?)",
                          (d.ino, d.key, d.kind, int(d.partial or binary),
                           int(d.kind is not None and d.parsed is None), int(binary)))

    def clear(self) -> None:
        with self._wlock, self.w:
            for table in ("files", "raw_tri", "parsed_tri", "words"):
                self.w.execute(f"DELETE FROM {table}")

    # -- reading (query threads) ---------------------------------------------------------------
    def states(self) -> dict[int, tuple[str, int]]:
        """ino -> (state key, unparsed) of every indexed inode (for the reconciliation)."""
        with self._rlock:
            return {ino: (key, unparsed) for ino, key, unparsed in
                    self.r.execute("SELECT ino, key, unparsed FROM files")}

    def count(self) -> int:
        with self._rlock:
            return self.r.execute("SELECT count(*) FROM files").fetchone()[0]

    def candidates(self, query: str | None, mode: str) -> tuple[set[int], set[int]] | None:
        """(inodes whose raw text may match, documents whose parsed text may match), each
        including the inodes the index cannot answer for; None: ``query`` is None (scan)."""
        if query is None:
            return None
        with self._rlock:
            c = self.r
            raw: set[int] = set()
            parsed: set[int] = set()
            try:
                if mode in ("raw", "auto"):
                    raw = {r[0] for r in c.execute("SELECT rowid FROM raw_tri WHERE raw_tri MATCH ?",
                                                   (query,))}
                    # (in auto mode a document is grepped by its parsed text only)
                    raw |= {r[0] for r in c.execute(
                        "SELECT ino FROM files WHERE partial=1" +
                        (" AND kind IS NULL" if mode == "auto" else ""))}
                if mode in ("parsed", "auto"):
                    parsed = {r[0] for r in c.execute(
                        "SELECT rowid FROM parsed_tri WHERE parsed_tri MATCH ?", (query,))}
                    parsed |= {r[0] for r in c.execute("SELECT ino FROM files WHERE unparsed=1")}
            except apsw.SQLError as e:
                raise QueryError(str(e).removeprefix("SQLError: ")) from None
            return raw, parsed

    def ranked(self, query: str, offset: int, limit: int) -> list[tuple[int, float]]:
        """(ino, score) best first: BM25 with names weighing five times the text."""
        with self._rlock:
            try:
                return list(self.r.execute(
                    "SELECT rowid, bm25(words, 5.0, 1.0) AS score FROM words WHERE words MATCH ?"
                    " ORDER BY score LIMIT ? OFFSET ?", (query, limit, offset)))
            except apsw.SQLError as e:
                raise QueryError(str(e).removeprefix("SQLError: ")) from None

    def check_query(self, query: str) -> None:
        """Raise QueryError when ``query`` is not valid FTS5 syntax."""
        self.ranked(query, 0, 0)
