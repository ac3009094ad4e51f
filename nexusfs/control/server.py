"""The control socket: a Unix stream socket in the data directory (``cfg.socket_path``,
normally DATA_DIR/control.sock) that speaks JSON lines.

One request per line, ``{"cmd": "snapshot create before /src"}`` or ``{"argv": ["snapshot",
"create", "before", "/src"]}`` (optionally with an ``"id"``, echoed back, and ``"want":
["text"]`` or ``["data"]`` to receive only that part of a reply); one response per
request, in order: ``{"ok": true, "text": ..., "data": ...}`` or ``{"ok": false, "errno": N,
"error": "ENOENT", "message": ..., "text": ...}``. Blank lines are ignored. A line that is not a
JSON object, or is longer than 1 MiB, gets an error response and the connection carries on.
The caller is whoever the kernel says connected (SO_PEERCRED, see peer.py); the file is mode
0666 so every local user may ask, and the HistoryService decides what each caller may do.

The socket is created atomically: bound under a temporary name, chmod'ed, then renamed over
the final name (replacing a stale socket of a crashed daemon). At exit it is removed if it is
still ours.

Concurrency: one trio task per connection; a connection's requests run one at a time, so
pipelined requests are answered in order; connections are independent. When the server is
cancelled (daemon shutdown) the listener closes, idle connections end, and a command already
running is shielded so that its effect and its reply are whole before the store closes.
"""
from __future__ import annotations

import base64
import errno
import json
import logging
import os
import secrets
import socket
from pathlib import Path

import trio

from ..history.service import HistoryService
from ..types import Caller, FsError
from .address import unix_address
from .commands import CommandError, error_text, execute, execute_argv
from .peer import peer_caller
from .render import errno_name

log = logging.getLogger("nexusfs.control")

MAX_LINE = 1 << 20            # bytes of one request line
RECEIVE = 64 * 1024
SEND_TIMEOUT = 60.0           # seconds a reply may take to be taken up by the client


async def serve_control(service: HistoryService, socket_path: str | os.PathLike, *,
                        mode: int = 0o666, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Serve until cancelled. ``task_status.started(path)`` once clients can connect; an
    error before that (the directory is missing, not writable...) is raised to the starter."""
    path = Path(socket_path)
    sock, ident = await _bind(path, mode)
    try:
        async with trio.open_nursery() as nursery:
            listener = trio.SocketListener(sock)
            async with listener:
                task_status.started(path)
                log.info("control socket %s", path)
                while True:
                    try:
                        stream = await listener.accept()
                    except OSError as e:          # EMFILE and friends: back off, keep serving
                        log.warning("control socket: accept failed: %s", e)
                        await trio.sleep(0.1)
                        continue
                    nursery.start_soon(_connection, service, stream)
    finally:
        _unlink_if_ours(path, ident)


async def _bind(path: Path, mode: int):
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with unix_address(tmp) as address:
            await sock.bind(address)
        os.chmod(tmp, mode)
        sock.listen(128)
        os.replace(tmp, path)
        st = os.stat(path)
    except BaseException:
        sock.close()
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return sock, (st.st_dev, st.st_ino)


def _unlink_if_ours(path: Path, ident) -> None:
    try:
        st = os.stat(path)
        if (st.st_dev, st.st_ino) == ident:
            os.unlink(path)
    except OSError:
        pass


async def _connection(service: HistoryService, stream: trio.SocketStream) -> None:
    async with stream:
        try:
            caller = peer_caller(stream.socket)
        except OSError as e:
            log.warning("control socket: no peer credentials: %s", e)
            return
        buf = bytearray()
        scan = 0               # buf[:scan] holds no newline
        skipping = False       # discarding the rest of an overlong line
        while True:
            try:
                chunk = await stream.receive_some(RECEIVE)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
            if not chunk:
                return         # the peer is gone; a partial line is dropped
            buf += chunk
            while (nl := buf.find(b"\n", scan)) >= 0:
                line = bytes(buf[:nl])
                del buf[:nl + 1]
                scan = 0
                if skipping:
                    skipping = False
                    continue
                if not await _answer(service, stream, line, caller):
                    return
            scan = len(buf)
            if len(buf) > MAX_LINE and not skipping:
                skipping = True
                err = FsError(errno.EMSGSIZE, f"request line longer than {MAX_LINE >> 20} MiB")
                if not await _send(stream, error_response(err)):
                    return
            if skipping:
                buf.clear()
                scan = 0


async def _answer(service: HistoryService, stream, line: bytes, caller: Caller) -> bool:
    line = line.strip()
    if not line:
        return True
    return await _send(stream, await respond(service, line, caller))


async def _send(stream, response: dict) -> bool:
    """False when the peer has gone away."""
    try:
        payload = json.dumps(response, default=_json_default) + "\n"
    except (TypeError, ValueError) as e:
        log.exception("control reply not serialisable")
        payload = json.dumps(error_response(FsError(errno.EIO, f"reply not serialisable: {e}"))
                             ) + "\n"
    # shielded so that a reply computed during shutdown still goes out; bounded so that a
    # client that never reads cannot hold the daemon
    with trio.move_on_after(SEND_TIMEOUT, shield=True) as scope:
        try:
            await stream.send_all(payload.encode("ascii"))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
    return not scope.cancelled_caught


async def respond(service: HistoryService, line: bytes | str, caller: Caller) -> dict:
    """The response to one request line (never raises FsError)."""
    rid = None
    try:
        try:
            request = json.loads(line)
        except (ValueError, RecursionError) as e:
            raise CommandError(f"invalid JSON: {str(e)[:200]}") from None
        if not isinstance(request, dict):
            raise CommandError('a request is a JSON object: {"cmd": "..."} or {"argv": [...]}')
        rid = request.get("id")
        cmd, argv = request.get("cmd"), request.get("argv")
        if (cmd is None) == (argv is None):
            raise CommandError('a request needs exactly one of "cmd" (a string) and "argv" '
                               '(a list of strings)')
        if cmd is not None and not isinstance(cmd, str):
            raise CommandError('"cmd" must be a string')
        with trio.CancelScope(shield=True):          # a started command finishes whole
            if cmd is not None:
                reply = await execute(service, cmd, caller)
            else:
                reply = await execute_argv(service, argv, caller)
        response = {"ok": True, "text": reply.text, "data": reply.data}
        want = request.get("want")
        if isinstance(want, list):               # e.g. ["data"]: leave the other one out
            response = {k: v for k, v in response.items() if k == "ok" or k in want}
    except FsError as e:
        response = error_response(e)
    if rid is not None:
        response["id"] = rid
    return response


def error_response(e: FsError) -> dict:
    return {"ok": False, "errno": e.errno, "error": errno_name(e.errno), "message": e.message,
            "text": error_text(e)}


def _json_default(obj):
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(obj)).decode("ascii")
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return str(obj)
