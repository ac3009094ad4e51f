"""The client side of the control socket, for the nexus CLI and for scripts.

``locate()`` finds the daemon to ask (a mount point, a data directory, or the only running
mount) and gives a ``Target`` that also turns paths under the mount point into store paths;
``Connection`` sends JSON-line requests and reads the responses; ``call()`` is one request on a
fresh connection. Failures are ``ControlError`` with a one-line message, ``RemoteError`` when
the daemon answered with an error (it carries the errno).

Blocking and synchronous, no trio: a Connection serves one request at a time (one per thread).
"""
from __future__ import annotations

import json
import os
import posixpath
import socket
from dataclasses import dataclass
from pathlib import Path

from .address import unix_address


class ControlError(Exception):
    """The daemon could not be asked (or said no): ``str()`` is a one-line message."""


class NoDaemon(ControlError):
    """No daemon listens on the socket (none there, or a stale one)."""


class RemoteError(ControlError):
    """The daemon answered with an error."""

    def __init__(self, response: dict):
        self.errno = int(response.get("errno") or 0)
        self.error = str(response.get("error") or "")
        self.message = str(response.get("message") or self.error or "failed")
        self.text = str(response.get("text") or "")
        super().__init__(self.message)


@dataclass(frozen=True)
class Target:
    """A daemon to ask: its socket, and the mount point it serves when known."""

    socket_path: Path
    mountpoint: str | None = None

    def contains(self, path: str) -> bool:
        return self.mountpoint is not None and _under(path, self.mountpoint) is not None

    def store_path(self, path: str) -> str:
        """A path under the mount point ("/mnt/nexus/src/a.py", or "src/a.py" from a working
        directory inside the mount) becomes the store path "/src/a.py"; anything else already
        is a store path (a relative one is taken from the store's root)."""
        if self.mountpoint is not None:
            inside = _under(path, self.mountpoint)
            if inside is not None:
                return inside
        p = posixpath.normpath("/" + path.lstrip("/"))
        return "/" + p.lstrip("/")


def _under(path: str, mountpoint: str) -> str | None:
    """The store path of ``path`` if it lies under ``mountpoint``, else None."""
    mp = os.path.abspath(mountpoint)
    candidates = [os.path.abspath(path)]
    head, tail = os.path.split(candidates[0])
    real_head = os.path.realpath(head)          # the mount reached through a symlink
    if real_head != head:
        candidates.append(os.path.join(real_head, tail))
    for p in candidates:
        if p == mp:
            return "/"
        if p.startswith(mp.rstrip("/") + "/"):
            return "/" + p[len(mp.rstrip("/")):].lstrip("/")
    return None


def locate(mount: str | None = None, data_dir: str | None = None,
           hints: tuple[str, ...] | list[str] = ()) -> Target:
    """The daemon named by ``--mount`` or ``--data-dir``, else the daemon of the store the
    current directory is in, else the only running mount (or the one mount that holds one of
    the ``hints``, the paths a command was given)."""
    from .. import config, runtime
    if mount and data_dir:
        raise ControlError("give --mount or --data-dir, not both")
    if not mount and not data_dir:
        data_dir = config.enclosing_store()
    if mount:
        mp = os.path.abspath(mount)
        info = runtime.read_registry(mp)
        if not info:
            raise ControlError(f"{mount} is not a running nexusfs mount")
        return Target(config.load(info["data_dir"]).socket_path, info.get("mountpoint") or mp)
    mounts = runtime.all_mounts()
    if data_dir:
        cfg = config.load(data_dir)
        real = os.path.realpath(cfg.data_dir)
        mp = next((m.get("mountpoint") for m in mounts
                   if os.path.realpath(m.get("data_dir", "")) == real), None)
        return Target(cfg.socket_path, mp)
    targets = [Target(config.load(m["data_dir"]).socket_path, m.get("mountpoint"))
               for m in mounts]
    if len(targets) == 1:
        return targets[0]
    if not targets:
        raise ControlError("no nexusfs mount is running; mount one, or name the store with "
                           "--data-dir")
    hinted = [t for t in targets if any(h and t.contains(h) for h in hints)]
    if len(hinted) == 1:
        return hinted[0]
    names = ", ".join(t.mountpoint or str(t.socket_path) for t in targets)
    raise ControlError(f"{len(targets)} nexusfs mounts are running ({names}); choose one with "
                       f"--mount")


class Connection:
    """One connection to a daemon's control socket."""

    def __init__(self, socket_path: str | os.PathLike, timeout: float | None = None):
        self.socket_path = Path(socket_path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            with unix_address(self.socket_path) as address:
                self.sock.connect(address)
        except FileNotFoundError:
            self.sock.close()
            raise NoDaemon(f"no control socket at {self.socket_path}; is the store "
                           f"mounted?") from None
        except ConnectionRefusedError:
            self.sock.close()
            raise NoDaemon(f"no daemon listens on {self.socket_path} (a stale socket: the "
                           f"daemon has exited)") from None
        except OSError as e:
            self.sock.close()
            raise ControlError(f"cannot connect to {self.socket_path}: "
                               f"{e.strerror or e}") from None
        self.reader = self.sock.makefile("rb")

    def request(self, cmd: str | None = None, argv: list[str] | None = None,
                want: tuple[str, ...] | None = None) -> dict:
        """Send one request; the response ``{"ok": true, "text", "data"}`` (only the parts in
        ``want`` when given), or RemoteError."""
        req: dict = {"cmd": cmd} if argv is None else {"argv": list(argv)}
        if want is not None:
            req["want"] = list(want)
        try:
            self.sock.sendall(json.dumps(req).encode("ascii") + b"\n")
            line = self.reader.readline()
        except OSError as e:
            raise ControlError(f"the daemon at {self.socket_path} broke the connection: "
                               f"{e.strerror or e}") from None
        if not line.endswith(b"\n"):
            raise ControlError(f"the daemon at {self.socket_path} closed the connection "
                               f"without answering")
        try:
            response = json.loads(line)
        except ValueError:
            raise ControlError("the daemon's answer is not JSON") from None
        if not isinstance(response, dict):
            raise ControlError("the daemon's answer is not a JSON object")
        if not response.get("ok"):
            raise RemoteError(response)
        return response

    def close(self) -> None:
        self.reader.close()
        self.sock.close()

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def call(socket_path: str | os.PathLike, argv: list[str] | None = None,
         cmd: str | None = None, want: tuple[str, ...] | None = None) -> dict:
    with Connection(socket_path) as conn:
        return conn.request(cmd=cmd, argv=argv, want=want)
