"""The always-current search index of a mounted store: hooks, the background indexer, the
reconciliation at mount, and the queries (grep, glob, search; see ops.py).

Keeping it current: the core calls ``touched(ino)`` after every change that can alter what an
inode's index rows say (a committed write, create, link, unlink, rename, undo and restore
through ``fs.invalidate``, a document's parse landing in the view cache). That only records
the inode in ``pending`` (O(1) on the hot path). The indexer, a trio system task, drains it in
batches: it gathers each inode's state on the trio thread (attributes, names, committed
content, the cached parse of a document), then indexes the batch in a worker thread on the
index's own connection (index.db, see index.py). Queries count ``pending`` and the batch in
flight as "may match anything", so grep results are exact whatever the lag, and ranked search
waits (briefly) for the backlog it would otherwise miss.

After a crash: ``start()`` compares what the index recorded for each inode (size, times,
generation) with the metadata and queues every difference — the index repairs itself at
mount; an unreadable index file is deleted and rebuilt (index.py).

Concurrency: everything here runs on the trio thread except IndexDB calls made through
``trio.to_thread``; ``pending``/``inflight`` are touched only on the trio thread.
"""
from __future__ import annotations

import logging
import os
import queue
import stat as st
import threading
import time

import trio
import zstandard

from .. import views
from ..types import Caller
from . import perm
from .index import RAW_CAP, Doc, IndexDB

log = logging.getLogger("nexusfs.search")

BATCH_FILES = 256
GATHER_DELAY = 0.2     # s: lets a create and its first commit become one indexing
BATCH_BYTES = 32 << 20
BINARY_PROBE = 64 << 10           # a NUL in a file's first bytes: binary, read no further


def state_key(size: int, mtime_ns: int, ctime_ns: int, generation: int) -> str:
    return f"{size}:{mtime_ns}:{ctime_ns}:{generation}"


def _live_states(conn) -> dict[int, str]:
    """ino -> state key of every linked regular file in the metadata (read-only query on the
    store's connection: the reconciliation's one look at meta.db's tables)."""
    return {ino: state_key(size, m, c, g) for ino, size, m, c, g in conn.execute(
        "SELECT ino, size, mtime_ns, ctime_ns, generation FROM inodes"
        " WHERE (mode & 61440) = 32768 AND nlink > 0")}


class SearchService:
    def __init__(self, fs):
        self.fs = fs
        self.db: IndexDB | None = None
        self.pending: dict[int, None] = {}       # inodes to (re)index, oldest first
        self.inflight: set[int] = set()          # gathered, being written by the worker
        self.generation = 0                      # batches applied (query caches key on it)
        self.indexed = 0                         # inodes indexed since start
        self.total_hint = 0                      # for progress: pending at the last rebuild
        self.lag_s = 0.0                         # age of the oldest pending change
        self._since: dict[int, float] = {}
        self._wake: trio.Event | None = None
        self._stopped = trio.Event()
        self._idle: trio.Event | None = None
        self._running = False
        self._closing = False
        self._parsing: set[int] = set()
        self._tried: dict[int, bytes] = {}
        self._writer = _Writer()

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Open (or rebuild) the index and queue what changed since it was last written."""
        self.db = IndexDB(self.fs.cfg.data_dir / "index.db")
        self.reconcile()

    def reconcile(self) -> int:
        live = _live_states(self.fs.meta.conn)
        indexed = self.db.states()
        queued = 0
        for ino, key in live.items():
            got = indexed.get(ino)
            if got is None or got[0] != key or got[1]:
                self._queue(ino)
                queued += 1
        for ino in indexed.keys() - live.keys():
            self._queue(ino)
            queued += 1
        if queued:
            log.info("search index: %d inodes to (re)index", queued)
        self.total_hint = max(queued, 1)
        return queued

    async def close(self) -> None:
        self._closing = True
        if self._wake is not None:
            self._wake.set()
        if self._running:                        # the batch under way ends now: rolled back,
            if self.db is not None:              # it is redone by the next start's
                self.db.interrupt()              # reconciliation
            await self._stopped.wait()
        self._writer.stop()
        if self.db is not None:
            self.db.close()
            self.db = None

    def tick(self) -> None:
        """From the batch timer: start the indexer if work waits and it is not running."""
        if self.pending and not self._running:
            self._ensure_running()

    # -- hooks (hot path: O(1)) ---------------------------------------------------------------
    def touched(self, ino: int) -> None:
        self._queue(ino)
        self._ensure_running()

    def touched_many(self, inodes) -> None:
        for ino in inodes:
            self._queue(ino)
        self._ensure_running()

    def _queue(self, ino: int) -> None:
        if ino not in self.pending:
            self.pending[ino] = None
            self._since.setdefault(ino, time.monotonic())

    def _ensure_running(self) -> None:
        if self._wake is not None:
            self._wake.set()
        if self._running or self._closing or self.db is None:
            return
        try:
            trio.lowlevel.current_trio_token()
        except RuntimeError:
            return                           # not in trio yet (fs.start): tick() starts it
        self._running = True
        self._stopped = trio.Event()
        trio.lowlevel.spawn_system_task(self._run)

    # -- the indexer --------------------------------------------------------------------------
    async def _run(self) -> None:
        try:
            while not self._closing:
                if not self.pending:
                    self.lag_s = 0.0
                    if self._idle is not None:
                        self._idle.set()
                        self._idle = None
                    self._wake = trio.Event()
                    await self._wake.wait()
                    continue
                if len(self.pending) < BATCH_FILES and self._idle is None:
                    await trio.sleep(GATHER_DELAY)    # (nobody waits: gather more first)
                    if self._closing:
                        break
                await self._batch()
        except Exception:
            log.exception("search indexer failed; it restarts with the next change")
        finally:
            self._running = False
            self.inflight.clear()
            self._stopped.set()

    async def _batch(self) -> None:
        docs: list[Doc] = []
        size = 0
        now = time.monotonic()
        oldest = min((self._since.get(i, now) for i in list(self.pending)[:1]), default=now)
        self.lag_s = now - oldest
        while self.pending and len(docs) < BATCH_FILES and size < BATCH_BYTES \
                and not self._closing:
            ino = next(iter(self.pending))
            del self.pending[ino]
            self.inflight.add(ino)
            try:
                doc = await self._gather(ino)
            except Exception:
                log.exception("search index: cannot read inode %d; skipped", ino)
                doc = Doc(ino)
            docs.append(doc)
            size += len(doc.raw or b"") + len(doc.parsed or "")
        if self._closing:                      # the store is closing: the next start redoes it
            self.inflight.clear()
            return
        try:
            await self._writer.run(self.db.apply, docs)
        except Exception:
            if self._closing:
                return
            log.exception("search index: a batch of %d failed; queued again", len(docs))
            for d in docs:
                self._queue(d.ino)
            await trio.sleep(1)
        finally:
            for d in docs:
                self.inflight.discard(d.ino)
                if d.ino not in self.pending:
                    self._since.pop(d.ino, None)
        self.generation += 1
        self.indexed += len(docs)

    async def _gather(self, ino: int) -> Doc:
        fs = self.fs
        attr = fs.meta.get_attr(ino)
        if attr is None or not st.S_ISREG(attr.mode) or attr.nlink <= 0:
            return Doc(ino)
        names = fs.meta.names(ino)
        if not names:
            return Doc(ino)
        size = attr.size                         # committed (a pending commit re-queues)
        want = min(size, RAW_CAP)
        raw = await fs.content.read(ino, None, 0, min(want, BINARY_PROBE)) if want else b""
        if want > len(raw) and b"\0" not in raw:      # (binary content is not indexed)
            raw += await fs.content.read(ino, None, len(raw), want - len(raw))
        doc = Doc(ino, state_key(attr.size, attr.mtime_ns, attr.ctime_ns, attr.generation),
                  " ".join(n.decode("utf-8", "replace") for _p, n in names), raw,
                  partial=size > RAW_CAP)
        kind = fs.docs.kind(ino)
        if kind is not None:
            doc.kind = kind
            doc.parsed = await self._parsed_text(ino, kind)
        return doc

    async def _parsed_text(self, ino: int, kind: str) -> str | None:
        """The document's text from the view cache; when not parsed yet, ask for a background
        parse (its completion touches the inode again) and return None."""
        etag = self.fs.docs.etag(ino)
        row = self.fs.meta.cached_view(views.cache_key(etag, kind))
        if row is None:
            # (once per content: a document that cannot be parsed stays "unparsed", which
            # grep reads live, instead of being parsed again and again)
            if ino not in self._parsing and self._tried.get(ino) != etag:
                self._parsing.add(ino)
                self._tried[ino] = etag
                trio.lowlevel.spawn_system_task(self._parse, ino)
            return None
        blob = row[0]

        def decode():
            return views.ParseResult.from_bytes(zstandard.ZstdDecompressor().decompress(blob)).text
        return await trio.to_thread.run_sync(decode)

    async def _parse(self, ino: int) -> None:
        try:
            await self.fs.docs.result(ino, urgent=False)
        except Exception as e:                  # gone, or a parse failure (the view says why)
            log.debug("search index: no parse of inode %d: %s", ino, e)
        finally:
            self._parsing.discard(ino)
        if not self._closing:
            self.touched(ino)

    # -- for queries --------------------------------------------------------------------------
    def unsettled(self) -> set[int]:
        """Inodes whose index rows may be stale right now (queued or being written)."""
        return set(self.pending) | self.inflight

    async def settle(self, timeout: float = 2.0) -> bool:
        """Wait until the backlog is indexed (at most ``timeout`` s); True when it is."""
        if not self.pending and not self.inflight:
            return True
        self._ensure_running()
        with trio.move_on_after(timeout):
            while self.pending or self.inflight:
                if self._idle is None:
                    self._idle = trio.Event()
                await self._idle.wait()
            return True
        return False

    async def rebuild(self) -> int:
        """Forget the index and queue every file again (nexus reindex); returns how many."""
        await self.settle(timeout=30)
        await self._writer.run(self.db.clear)
        self.generation += 1
        queued = self.reconcile()
        self.indexed = 0
        self._ensure_running()
        return queued

    def status(self) -> dict:
        backlog = len(self.pending) + len(self.inflight)
        now = time.monotonic()
        oldest = min((self._since.get(i, now) for i in list(self.pending)[:1]), default=now)
        return {"pending": backlog, "indexed": self.indexed, "total": self.total_hint,
                "lag_s": round(now - oldest if backlog else 0.0, 3),
                "files": self.db.count() if self.db else 0, "running": self._running}

    def allowed(self, caller: Caller):
        """A memoized ``(ino, mask) -> bool`` for one query of ``caller``."""
        memo: dict[tuple[int, int], bool] = {}
        may_access = perm.checker(self.fs)      # (resolved now: access control starts late)

        def check(ino: int, mask: int) -> bool:
            k = (ino, mask)
            v = memo.get(k)
            if v is None:
                v = memo[k] = bool(may_access(caller, ino, mask))
            return v
        return check


class _Writer:
    """The index's writer: one thread of its own at a lower CPU priority (nice 10), so that
    indexing yields to the threads serving the mount when both want the CPU."""

    def __init__(self):
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def _loop(self) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        except OSError:
            pass
        while True:
            job = self._jobs.get()
            if job is None:
                return
            job()

    async def run(self, fn, *args):
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="nexusfs-index", daemon=True)
            self._thread.start()
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()
        box: dict = {}

        def job():
            try:
                box["value"] = fn(*args)
            except BaseException as e:       # handed back to the awaiting task
                box["error"] = e
            token.run_sync_soon(done.set)
        self._jobs.put(job)
        with trio.CancelScope(shield=True):  # the write runs anyway: wait for it to end
            await done.wait()
        if "error" in box:
            raise box["error"]
        return box.get("value")

    def stop(self) -> None:
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None
