"""The embedded door: a store opened in this process, served by a trio loop in a thread.

``EmbeddedStore(cfg)`` opens the data directory exactly as the daemon does (FileSystem.start:
the exclusive lock, crash recovery, the same history, views and log), runs the daemon's batch
timer, and executes FileService operations and control-registry commands on the loop thread
for any calling thread (``call``). A second process opening the same store gets
StoreLockedError. ``close()`` commits everything, syncs and releases the lock; it also runs
at interpreter exit for a store left open.

Calls are made by the caller of this process (uid, gid, groups, umask, NEXUS_AGENT from the
environment), so the log and ownership read as if this process had used the mount.
"""
from __future__ import annotations

import atexit
import os
import threading
import weakref

import trio

from ..config import Config
from ..control.peer import caller_of
from ..types import FsError
from .errors import NexusError, StoreError, StoreLockedError, from_errno


def this_process():
    return caller_of(os.getpid(), os.geteuid(), os.getegid())


class EmbeddedStore:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.caller = this_process()
        self._token = None
        self._closing: trio.Event | None = None
        self._error: BaseException | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._thread_main, name="nexusfs-embedded",
                                        daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error
        ref = weakref.ref(self)
        atexit.register(lambda: ref() is not None and ref().close())

    # -- the loop thread ----------------------------------------------------------------------
    def _thread_main(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as e:          # reported to the opener if it never got ready
            if not self._ready.is_set():
                self._error = e if isinstance(e, NexusError) else StoreError(str(e))
                self._ready.set()

    async def _main(self) -> None:
        from ..core.fs import FileSystem
        from ..meta.db import StoreError as DbStoreError
        from .service import FileService
        fs = FileSystem(self.cfg)
        try:
            fs.start()
        except DbStoreError as e:
            cls = StoreLockedError if "in use by another" in str(e) else StoreError
            self._error = cls(str(e))
            self._ready.set()
            return
        self.fs = fs
        self.service = FileService(fs)
        self._closing = trio.Event()
        self._token = trio.lowlevel.current_trio_token()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._timer)
                self._ready.set()
                await self._closing.wait()
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await fs.close()

    async def _timer(self) -> None:
        while True:
            await trio.sleep(self.fs.cfg.commit_interval)
            try:
                await self.fs.periodic()
            except Exception:             # logged like the daemon's timer; the next tick retries
                import logging
                logging.getLogger("nexusfs.api").exception("periodic commit failed")

    # -- calls from any thread ----------------------------------------------------------------
    def _run(self, afn, *args):
        if self._token is None or self._closing is None or self._closing.is_set():
            raise StoreError(f"the store {self.cfg.data_dir} is closed")
        try:
            return trio.from_thread.run(afn, *args, trio_token=self._token)
        except FsError as e:
            raise from_errno(e.errno, e.message) from None
        except trio.RunFinishedError:
            raise StoreError(f"the store {self.cfg.data_dir} is closed") from None

    def call(self, op: str, *args, **kw):
        async def go():
            return await self.service.run(op, *args, self.caller, **kw)
        return self._run(go)

    def command(self, argv: list[str]):
        return self.request(argv)["data"]

    def request(self, argv: list[str]) -> dict:
        """A control command's whole reply, as the socket gives it: {"text", "data"}."""
        from ..control.commands import execute_argv

        async def go():
            reply = await execute_argv(self.fs.history, argv, self.caller)
            return {"text": reply.text, "data": reply.data}
        return self._run(go)

    def close(self) -> None:
        if self._token is None or self._closing is None:
            return
        token, self._token = self._token, None
        try:
            trio.from_thread.run_sync(self._closing.set, trio_token=token)
        except trio.RunFinishedError:
            pass
        self._thread.join()
