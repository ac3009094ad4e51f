"""ParsePool: a few worker processes that parse documents, isolated from the daemon.

Why own workers rather than ``concurrent.futures.ProcessPoolExecutor``: the executor cannot
stop one running task (a hung parser would hold its worker forever), and one worker that dies
breaks the whole executor (``BrokenProcessPool``) and every task queued on it. Here each worker
is a ``multiprocessing`` process with its own pipe; a parse that passes the time limit gets its
worker killed, a worker that dies is reported for that document only, and either way the slot
starts a fresh worker on its next use.

Workers come from the 'forkserver' start method by default: the fork server is a fresh,
single-threaded interpreter (never a fork of the trio daemon and its threads) that preloads the
parser libraries once (:mod:`nexusfs.views._preload`), so a replacement worker is ready in tens
of milliseconds. 'spawn' works too (each worker then imports for ~1 s).

Blocking API: :meth:`ParsePool.parse_sync`. Trio API: ``await pool.parse(...)`` waits in a
thread of the pool's own capacity limiter (never the default one the daemon's other
``to_thread`` calls need) and can be cancelled: a cancelled caller abandons the wait, the parse
still finishes (bounded by the time limit) and its worker returns to the pool.

``urgent=True`` (a user waiting on open) goes before queued background parses.
"""
from __future__ import annotations

import functools
import heapq
import itertools
import logging
import multiprocessing
import signal
import threading
import time

from .limits import Limits, human_seconds
from .registry import DEFAULT_REGISTRY, Registry
from .result import ParseResult, failure
from .worker import worker_main

log = logging.getLogger(__name__)

STARTUP_TIMEOUT = 60.0


class _Worker:
    """One slot of the pool: a worker process, started on demand and replaced when it dies."""

    def __init__(self, pool: "ParsePool", slot: int):
        self.pool = pool
        self.slot = slot
        self.proc = None
        self.conn = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.is_alive()

    def start(self) -> None:
        self.kill()
        ctx = self.pool._ctx
        parent, child = ctx.Pipe(duplex=True)
        proc = ctx.Process(target=worker_main, args=(child, self.pool.nice, self.pool.max_tasks),
                           name=f"nexusfs-views-{self.slot}", daemon=True)
        proc.start()
        child.close()
        self.proc, self.conn = proc, parent
        if not parent.poll(STARTUP_TIMEOUT):
            self.kill()
            raise RuntimeError("a parse worker did not start in time")
        try:
            msg = parent.recv()
        except EOFError:
            code = self.reap()
            raise RuntimeError(f"a parse worker died while starting ({describe_exit(code)})")
        if msg[0] != "ready":
            self.kill()
            raise RuntimeError(f"a parse worker said {msg!r} instead of ready")
        self.pool.started += 1

    def reap(self, timeout: float = 5.0) -> int | None:
        """Waits for an exiting worker; returns its exit code and forgets it."""
        proc, conn = self.proc, self.conn
        self.proc = self.conn = None
        code = None
        if proc is not None:
            proc.join(timeout)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout)
            code = proc.exitcode
            try:
                proc.close()
            except ValueError:
                pass
        if conn is not None:
            conn.close()
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.is_alive():
            self.proc.kill()
        self.reap()


def describe_exit(code: int | None) -> str:
    if code is None:
        return "unknown exit status"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


class ParsePool:
    """A bounded pool of parse workers. See the module docstring."""

    def __init__(self, workers: int = 2, limits: Limits | None = None, *,
                 registry: Registry | None = None, start_method: str = "forkserver",
                 nice: int = 5, max_tasks: int = 200):
        if workers < 1:
            raise ValueError("a parse pool needs at least one worker")
        self.limits = limits or Limits()
        self.registry = registry or DEFAULT_REGISTRY
        self.nice = nice
        self.max_tasks = max_tasks
        self._ctx = multiprocessing.get_context(start_method)
        if start_method == "forkserver":
            self._ctx.set_forkserver_preload(["nexusfs.views._preload"])
        self._workers = [_Worker(self, i) for i in range(workers)]
        self._idle = list(self._workers)
        self._cond = threading.Condition()
        self._waiters: list[tuple[int, int]] = []
        self._seq = itertools.count()
        self._closed = False
        self._limiters = None           # (trio token, urgent limiter, background limiter)
        self.started = 0                # worker processes started so far (replacements included)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Starts every worker now (blocking, ~1 s the first time for the fork server)."""
        taken = [self._acquire(True) for _ in self._workers]
        try:
            for w in taken:
                if w is not None and not w.alive():
                    w.start()
        finally:
            for w in taken:
                if w is not None:
                    self._release(w)

    def close(self) -> None:
        """Stops the workers; parses still running end with a "pool closed" result."""
        with self._cond:
            self._closed = True
            idle = list(self._idle)
            self._cond.notify_all()
        for w in self._workers:
            if w not in idle and w.proc is not None:
                try:
                    w.proc.kill()       # busy: the thread using it sees EOF and reaps it
                except (ValueError, OSError):
                    pass
        for w in idle:
            try:
                if w.conn is not None:
                    w.conn.send(None)
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + 1.0
        for w in idle:
            if w.proc is not None:
                w.proc.join(max(0.0, deadline - time.monotonic()))
            w.kill()

    def __enter__(self) -> "ParsePool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    # -- worker slots ------------------------------------------------------------------------
    def _acquire(self, urgent: bool) -> _Worker | None:
        ticket = (0 if urgent else 1, next(self._seq))
        with self._cond:
            heapq.heappush(self._waiters, ticket)
            try:
                while not self._closed and not (self._idle and self._waiters[0] == ticket):
                    self._cond.wait()
            finally:
                self._waiters.remove(ticket)
                heapq.heapify(self._waiters)
                self._cond.notify_all()
            if self._closed:
                return None
            return self._idle.pop()

    def _release(self, w: _Worker) -> None:
        with self._cond:
            self._idle.append(w)
            self._cond.notify_all()

    # -- parsing -----------------------------------------------------------------------------
    def parse_sync(self, data: bytes, name: str, kind: str, *, limits: Limits | None = None,
                   urgent: bool = False) -> ParseResult:
        """Parses in a worker and blocks until done. Never raises for a bad document."""
        limits = limits or self.limits
        spec = self.registry.spec(kind)
        if spec is None:
            return failure(name, "", f"no parser for documents of kind {kind!r}", kind=kind)
        version = self.registry.version(kind)
        label = spec.label or kind

        def fail(reason: str, cacheable: bool = False, elapsed: float = 0.0) -> ParseResult:
            return failure(name, label, reason, parser=spec.name, version=version, kind=kind,
                           cacheable=cacheable, elapsed=elapsed)

        header = dict(name=name, kind=kind, target=spec.target, parser=spec.name, label=label,
                      limits=limits.to_dict(),
                      fallback=(spec.fallback.target, spec.fallback.name) if spec.fallback else None)
        w = self._acquire(urgent)
        if w is None:
            return fail("the parse pool is shut down")
        try:
            for attempt in range(2):
                try:
                    if not w.alive():
                        if self._closed:
                            return fail("the parse pool is shut down")
                        w.start()
                    t0 = time.monotonic()
                    w.conn.send(("parse", header))
                    w.conn.send_bytes(data)
                    break
                except (OSError, EOFError, ValueError, RuntimeError) as e:
                    # the idle worker had died (killed from outside, or a failed start): once more
                    w.kill()
                    if self._closed:
                        return fail("the parse pool is shut down")
                    if attempt == 1:
                        log.warning("views: cannot start a parse worker: %s", e)
                        return fail(f"no parse worker could be started ({e})")
            ready = w.conn.poll(max(0.0, limits.time_limit - (time.monotonic() - t0)))
            elapsed = time.monotonic() - t0
            if self._closed:
                w.kill()
                return fail("the parse pool is shut down", elapsed=elapsed)
            if not ready:
                w.kill()
                return fail(f"it took longer than the time limit of "
                            f"{human_seconds(limits.time_limit)}", elapsed=elapsed)
            try:
                res = w.conn.recv()
            except (EOFError, OSError):
                code = w.reap()
                if self._closed:
                    return fail("the parse pool is shut down", elapsed=elapsed)
                log.warning("views: parse worker died on %r (%s)", name, describe_exit(code))
                return fail(f"the parser process died ({describe_exit(code)})",
                            elapsed=time.monotonic() - t0)
            if res.pop("recycle", False):
                w.reap()
            res["version"] = version
            return ParseResult(**res)
        except Exception as e:      # never let a pool problem reach the daemon
            log.exception("views: parse of %r failed in the pool", name)
            w.kill()
            return fail(f"internal error in the parse pool: {type(e).__name__}: {e}")
        finally:
            self._release(w)

    async def parse(self, data: bytes, name: str, kind: str, *, limits: Limits | None = None,
                    urgent: bool = False) -> ParseResult:
        """Trio: parses in a worker without blocking the event loop. Never raises for a bad
        document; cancellation abandons the wait (the worker finishes within the time limit)."""
        import trio

        token = trio.lowlevel.current_trio_token()
        if self._limiters is None or self._limiters[0] is not token:
            self._limiters = (token, trio.CapacityLimiter(16), trio.CapacityLimiter(64))
        limiter = self._limiters[1] if urgent else self._limiters[2]
        call = functools.partial(self.parse_sync, data, name, kind, limits=limits, urgent=urgent)
        return await trio.to_thread.run_sync(call, limiter=limiter, abandon_on_cancel=True)
