"""The daemon door: file operations asked of a running daemon over its control socket.

Each operation is one or a few ``file ...`` requests (nexusfs/control/file_commands.py): small
contents travel inline as base64, larger ones are staged with ``file upload`` in pieces that fit
a command and committed by one final request, so an interrupted client leaves nothing
half-written. Reads are paged, later pages pinned to the first page's etag (a file changed
meanwhile is read again from the start). Errors come back as the API's exceptions, with the
daemon's errno and one-line message.

One connection per door; a lock makes every operation (all its requests) whole when several
threads share it.
"""
from __future__ import annotations

import base64
import errno
import threading

from ..control.client import Connection, ControlError, RemoteError
from .errors import StoreError, from_errno
from .sources import pieces

INLINE = 40 * 1024              # raw bytes sent inside one `file write`
PIECE = 44 * 1024               # raw bytes per `file upload` (base64 stays under 64 KiB)
PAGE = 8 << 20                  # bytes per `file read` page


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _opt(flag, value) -> list[str]:
    if value is None or value is False:
        return []
    return [flag] if value is True else [flag, str(value)]


class DaemonDoor:
    def __init__(self, socket_path):
        self.socket_path = socket_path
        self.conn = Connection(socket_path)
        self.lock = threading.Lock()

    def _ask(self, argv: list[str]):
        try:
            return self.conn.request(argv=argv, want=("data",)).get("data")
        except RemoteError as e:
            raise from_errno(e.errno, e.message) from None
        except ControlError as e:
            raise StoreError(str(e)) from None

    def command(self, argv: list[str]):
        with self.lock:
            return self._ask(list(argv))

    # -- file operations ----------------------------------------------------------------------
    def call(self, op: str, *args, **kw):
        with self.lock:
            return getattr(self, "_" + op)(*args, **kw)

    def _info(self, path):
        return self._ask(["file", "info", "--", path])

    def _listdir(self, path, recursive=False):
        return self._ask(["file", "ls"] + _opt("--recursive", recursive) + ["--", path])

    def _mkdir(self, path, parents=False, mode=0o777):
        return self._ask(["file", "mkdir"] + _opt("--parents", parents) +
                         ["--mode", f"{mode:o}", "--", path])

    def _remove(self, path, recursive=False):
        return self._ask(["file", "rm"] + _opt("--recursive", recursive) + ["--", path])["removed"]

    def _rmdir(self, path):
        self._ask(["file", "rmdir", "--", path])

    def _move(self, src, dst, overwrite=True):
        return self._ask(["file", "mv"] + _opt("--no-clobber", not overwrite) + ["--", src, dst])["path"]

    def _copy(self, src, dst, recursive=False):
        return self._ask(["file", "cp"] + _opt("--recursive", recursive) + ["--", src, dst])["copied"]

    def _read(self, path, offset=0, size=None, if_match=None):
        for _attempt in range(5):
            pinned = if_match
            out = bytearray()
            info = None
            try:
                while size is None or len(out) < size:
                    want = PAGE if size is None else min(PAGE, size - len(out))
                    reply = self._ask(["file", "read", "--offset", str(offset + len(out)),
                                       "--size", str(want)] + _opt("--if-match", pinned) +
                                      ["--", path])
                    info = info or reply["info"]
                    pinned = pinned or info.get("etag")
                    part = base64.b64decode(reply["base64"])
                    out += part
                    if len(part) < want:
                        break
            except Exception as e:
                if getattr(e, "errno", None) == errno.ESTALE and if_match is None:
                    continue               # changed between pages: read it again, whole
                raise
            return bytes(out), info
        raise from_errno(errno.EAGAIN, f"{path}: changed while being read, five times")

    def _stage(self, token: str, path: str, source, mtime_ns: int | None = None) -> str:
        """Send ``source`` for ``path`` into upload ``token`` ("new" starts one)."""
        first = True
        mtime = _opt("--mtime", mtime_ns)
        for piece in pieces(source, PIECE):
            token = self._ask(["file", "upload", token] + mtime + ["--", path, _b64(piece)])["token"]
            first = False
        if first:
            token = self._ask(["file", "upload", token] + mtime + ["--", path])["token"]
        return token

    def _write(self, path, source, if_match=None, if_none_match=False, mode=0o666,
               parents=True, mtime_ns=None):
        opts = (_opt("--if-match", if_match) + _opt("--if-none-match", if_none_match) +
                ["--mode", f"{mode:o}"] + _opt("--no-parents", not parents) +
                _opt("--mtime", mtime_ns))
        if isinstance(source, (bytes, bytearray, memoryview)) and len(source) <= INLINE:
            return self._ask(["file", "write"] + opts + ["--", path, _b64(bytes(source))])
        token = self._stage("new", path, source)
        try:
            return self._ask(["file", "write", "--upload", token] + opts + ["--", path])
        except BaseException:
            self._discard(token)
            raise

    def _write_batch(self, items, mode=0o666, parents=True):
        token = "new"
        try:
            for item in items:
                token = self._stage(token, item[0], item[1], item[2] if len(item) > 2 else None)
            if token == "new":
                return []
            return self._ask(["file", "batch", token, "--mode", f"{mode:o}"] +
                             _opt("--no-parents", not parents))
        except BaseException:
            if token != "new":
                self._discard(token)
            raise

    def _discard(self, token: str) -> None:
        try:
            self._ask(["file", "discard", token])
        except Exception:
            pass                           # already gone (committed, expired)

    def close(self) -> None:
        self.conn.close()
