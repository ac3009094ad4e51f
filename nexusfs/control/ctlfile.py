"""The logic of the ``/.nexus/ctl`` and ``/.nexus/ctl.last`` files, without pyfuse3:
``attach(fs)`` gives the core's /.nexus/ tree (core/vtree.py) a ``CtlHandle`` per open handle of
ctl and one ``LastReplies`` per mount, and the tree forwards write/read to them
(docs/control-protocol.md, "The ctl file").

Protocol: each write(2) is one command; it succeeds (returning its full length) or fails with
the command's errno. The reply (or, after a failure, the error text) is then read back on the
same descriptor: the reply starts at the file position right after the write, so a plain
read() continues into it, and reading from offset 0 (pread, or lseek then read) gives it too.
A new write replaces it. ``ctl.last`` shows the last reply of the reading caller (the same uid
and NEXUS_AGENT label), whichever descriptor the command was written to, e.g. after a shell's
``echo undo > ctl``.

Concurrency: runs on the trio thread. Two writes racing on one handle both run; the reply of
the one that finishes last is what the handle then reads. LastReplies is a bounded LRU.
"""
from __future__ import annotations

from collections import OrderedDict

from ..history.service import HistoryService
from ..types import Caller, FsError
from .commands import error_text, execute


def encode_text(text: str) -> bytes:
    """Reply text as bytes; names that came from the store as surrogate escapes get their
    original bytes back."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


class LastReplies:
    """The last reply of each caller, keyed by (uid, agent label); at most ``maxsize`` kept."""

    def __init__(self, maxsize: int = 1024):
        self.maxsize = maxsize
        self._replies: OrderedDict[tuple, bytes] = OrderedDict()

    @staticmethod
    def key(caller: Caller) -> tuple:
        return (caller.uid, caller.agent)

    def remember(self, caller: Caller, reply: bytes) -> None:
        k = self.key(caller)
        self._replies.pop(k, None)
        self._replies[k] = reply
        while len(self._replies) > self.maxsize:
            self._replies.popitem(last=False)

    def get(self, caller: Caller) -> bytes:
        return self._replies.get(self.key(caller), b"")

    def read(self, caller: Caller, offset: int, size: int) -> bytes:
        return self.get(caller)[offset:offset + size]


class CtlHandle:
    """One open handle of ``/.nexus/ctl``."""

    def __init__(self, service: HistoryService, last: LastReplies | None = None):
        self.service = service
        self.last = last
        self.reply = b""
        self.base = 0                 # the file position right after the last write
        self.absolute: bool | None = None   # the reader went back to 0 (None: not read yet)

    async def write(self, offset: int, data: bytes, caller: Caller) -> int:
        """Run the command in ``data``; the write's result (its length) or FsError."""
        try:
            reply = await execute(self.service, data, caller)
        except FsError as e:
            self._keep(offset + len(data), encode_text(error_text(e)), caller)
            raise
        self._keep(offset + len(data), encode_text(reply.text), caller)
        return len(data)

    def _keep(self, base: int, reply: bytes, caller: Caller) -> None:
        self.base, self.reply, self.absolute = base, reply, None
        if self.last is not None:
            self.last.remember(caller, reply)

    def read(self, offset: int, size: int) -> bytes:
        """The reply, whose first byte is at position ``base`` (right after the write) for a
        reader that goes on from there, and at 0 for one that went back (lseek, pread)."""
        if offset < self.base:
            self.absolute = True
        elif self.absolute is None:
            self.absolute = False
        start = offset if self.absolute else offset - self.base
        return self.reply[start:start + size]


def attach(fs) -> None:
    """Plug the ctl protocol into a FileSystem's /.nexus/ tree (which, being in the core, must
    not import the control layer itself)."""
    last = LastReplies()
    fs.vtree.last = last
    fs.vtree.ctl_factory = lambda: CtlHandle(fs.history, last)
