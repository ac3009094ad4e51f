"""ParsePool: a few worker processes that parse documents, isolated from the daemon.

Why own workers rather than ``concurrent.futures.ProcessPoolExecutor``: the executor cannot
stop one running task (a hung parser would hold its worker forever), and one worker that dies
breaks the whole executor (``BrokenProcessPool``) and every task queued on it. Here each worker
is a process with its own socket; a parse that passes the time limit gets its worker killed, a
worker that dies is reported for that document only, and either way the slot starts a fresh
worker on its next use.

Why ``subprocess`` rather than multiprocessing's 'spawn'/'forkserver': those re-import the
parent's ``__main__`` in every child (the daemon's entry script, or a crash when it has no
``if __name__ == "__main__"`` guard). A worker here is ``python -c`` importing only
:mod:`nexusfs.views.worker`: a fresh single-threaded interpreter, never a fork of the trio
daemon and its threads, started with cwd ``/`` (never inside the mount), in its own session
(a terminal's ^C is not for it). It preloads the parser libraries (~0.6 s) before it says
"ready"; :meth:`ParsePool.start` starts all workers ahead of need.

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
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection

from .limits import Limits, human_bytes, human_seconds
from .registry import DEFAULT_REGISTRY, Registry
from .result import ParseResult, failure

log = logging.getLogger(__name__)

STARTUP_TIMEOUT = 60.0


_WORKER_CODE = "import sys; from nexusfs.views.worker import cli; cli(sys.argv[1:])"


def _worker_env() -> dict:
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


class _Worker:
    """One slot of the pool: a worker process, started on demand and replaced when it dies."""

    def __init__(self, pool: ParsePool, slot: int):
        self.pool = pool
        self.slot = slot
        self.proc: subprocess.Popen | None = None
        self.conn = None
        self.ready = False                  # started and said "ready"
        self.lock = threading.Lock()        # held while starting

    def ensure_started(self) -> None:
        with self.lock:
            if not self.alive():
                self.start()

    def alive(self) -> bool:
        return self.ready and self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        self.kill()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            proc = subprocess.Popen(
                [sys.executable, "-c", _WORKER_CODE, str(theirs.fileno()), str(self.pool.nice),
                 str(self.pool.max_tasks)],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, cwd="/",
                env=self.pool._env, start_new_session=True, close_fds=True)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.proc, self.conn = proc, Connection(ours.detach())
        if not self.conn.poll(STARTUP_TIMEOUT):
            self.kill()
            raise RuntimeError("a parse worker did not start in time")
        try:
            msg = self.conn.recv()
        except (EOFError, OSError):
            code = self.reap()
            raise RuntimeError(f"a parse worker died while starting ({describe_exit(code)})")
        if msg[0] != "ready":
            self.kill()
            raise RuntimeError(f"a parse worker said {msg!r} instead of ready")
        self.ready = True
        self.pool.started += 1

    def reap(self, timeout: float = 5.0) -> int | None:
        """Waits for an exiting worker; returns its exit status and forgets it."""
        proc, conn = self.proc, self.conn
        self.proc = self.conn = None
        self.ready = False
        if conn is not None:
            conn.close()
        if proc is None:
            return None
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.kill()
            except OSError:
                pass
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
                 registry: Registry | None = None, nice: int = 5, max_tasks: int = 200):
        if workers < 1:
            raise ValueError("a parse pool needs at least one worker")
        self.limits = limits or Limits()
        self.registry = registry or DEFAULT_REGISTRY
        self.nice = nice
        self.max_tasks = max_tasks
        self._env = _worker_env()
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
        errors: list[Exception] = []

        def one(w: _Worker) -> None:
            try:
                w.ensure_started()
            except Exception as e:
                errors.append(e)

        try:
            threads = [threading.Thread(target=one, args=(w,), daemon=True)
                       for w in taken if w is not None]
            for t in threads:           # in parallel: each spends ~0.6 s importing
                t.start()
            for t in threads:
                t.join()
            if errors:
                raise errors[0]
        finally:
            for w in taken:
                if w is not None:
                    self._release(w)

    def start_background(self) -> None:
        """Starts the workers from a background thread and returns at once (call it at mount
        so that the first document a user opens does not wait ~0.7 s for a worker)."""
        def run() -> None:
            try:
                self.start()
            except Exception as e:
                log.warning("views: cannot start the parse workers: %s", e)
        threading.Thread(target=run, name="nexusfs-views-start", daemon=True).start()

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
                except OSError:
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
                try:
                    w.proc.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
            w.kill()

    def __enter__(self) -> ParsePool:  # noqa: PYI034
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
            for i in range(len(self._idle) - 1, -1, -1):     # a running worker if there is one
                if self._idle[i].alive():
                    return self._idle.pop(i)
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

        header = {"name": name, "kind": kind, "target": spec.target, "parser": spec.name,
                  "label": label, "limits": limits.to_dict(),
                  "fallback": (spec.fallback.target, spec.fallback.name) if spec.fallback else None}
        if len(data) > limits.max_input:        # not worth shipping to a worker
            return fail(f"it is {human_bytes(len(data))}, more than the limit of "
                        f"{human_bytes(limits.max_input)} for documents", cacheable=True)
        w = self._acquire(urgent)
        if w is None:
            return fail("the parse pool is shut down")
        try:
            for attempt in range(2):
                try:
                    if self._closed:
                        return fail("the parse pool is shut down")
                    w.ensure_started()
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
            if not w.alive() and not self._closed:
                threading.Thread(target=self._replace, args=(w,), name="nexusfs-views-restart",
                                 daemon=True).start()

    def _replace(self, w: _Worker) -> None:
        """Starts a replacement for a worker that died, was killed or retired, ahead of need."""
        try:
            if not self._closed:
                w.ensure_started()
        except Exception as e:
            log.warning("views: cannot start a replacement parse worker: %s", e)

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
