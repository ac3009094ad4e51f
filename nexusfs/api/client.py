"""The nexus Python API: ``connect()`` and the ``Nexus`` facade, its async form ``AsyncNexus``.

``connect(path)`` takes a data directory or a mount point. When a daemon serves the store (its
control socket answers) every call goes through the socket and runs in the daemon as this
process's user; otherwise the store is opened here (EmbeddedStore) and held exclusively until
``close()``. Either way the calls run the same FileService code (nexusfs/api/service.py) and the
same history commands, so they give the same results, and the same results as the same changes
made through the mount.

Errors are NexusError subclasses (errors.py): NotFoundError, ConflictError (a lost conditional
write), PermissionDenied, StoreLockedError, InvalidPathError. ``Nexus`` is thread-safe;
``AsyncNexus`` runs each call in a worker thread (trio or asyncio, found with sniffio).
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, fields

from .. import config as config_mod
from .errors import InvalidPathError, NotFoundError, StoreError



@dataclass(frozen=True)
class FileInfo:
    """What ``info()`` (and a write, and a read with metadata) tells about a path."""

    path: str
    type: str                       # "file", "dir", "symlink", "other"
    size: int
    mode: int                       # permission bits (0o644)
    uid: int
    gid: int
    nlink: int
    ino: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int
    etag: str | None = None         # files: the content's etag (core/etag.py)
    version: int | None = None      # files: seq of the newest version (`nexus versions list`)
    target: str | None = None       # symlinks

    @classmethod
    def from_dict(cls, d: dict) -> "FileInfo":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None or f.name in ("etag", "version")}


@dataclass(frozen=True)
class ReadResult(FileInfo):
    """A read with metadata: the bytes (``content``) and the info they belong to."""

    content: bytes = b""


def _check(path) -> str:
    if not isinstance(path, str) or not path.startswith("/"):
        raise InvalidPathError(f"{path!r}: store paths start with / (the store's root)")
    return path


def _content(data):
    if isinstance(data, str):
        return data.encode()
    return data


class Nexus:
    """A connection to one store (see ``connect``). Use as a context manager, or ``close()``."""

    def __init__(self, door, mode: str, data_dir):
        self._door = door
        self.mode = mode                # "embedded" or "daemon"
        self.data_dir = data_dir

    # -- files --------------------------------------------------------------------------------
    def write(self, path: str, data, *, if_match: str | None = None,
              if_none_match: bool = False, mode: int = 0o666, parents: bool = True,
              mtime_ns: int | None = None) -> FileInfo:
        """Make ``data`` (bytes, str as UTF-8, or a binary file object) the whole content of
        ``path``. ``if_match=etag``: only if nobody changed the file since that etag
        (ConflictError otherwise); ``if_none_match=True``: only if it does not exist yet.
        Missing parent directories are made unless ``parents=False``."""
        info = self._door.call("write", _check(path), _content(data), if_match=if_match,
                               if_none_match=if_none_match, mode=mode, parents=parents,
                               mtime_ns=mtime_ns)
        return FileInfo.from_dict(info)

    def read(self, path: str, *, with_metadata: bool = False, offset: int = 0,
             size: int | None = None, if_match: str | None = None):
        """The file's bytes; with ``with_metadata`` a ReadResult (``.content``, ``.etag``,
        ``.version``, ``.size``, times...) whose etag is the one of exactly these bytes."""
        data, info = self._door.call("read", _check(path), offset=offset, size=size,
                                     if_match=if_match)
        if not with_metadata:
            return data
        return ReadResult(**FileInfo.from_dict(info).__dict__, content=data)

    def read_text(self, path: str, encoding: str = "utf-8") -> str:
        return self.read(path).decode(encoding)

    def info(self, path: str) -> FileInfo:
        return FileInfo.from_dict(self._door.call("info", _check(path)))

    stat = info

    def exists(self, path: str) -> bool:
        try:
            self.info(path)
            return True
        except NotFoundError:
            return False

    def etag(self, path: str) -> str | None:
        return self.info(path).etag

    def ls(self, path: str = "/", *, recursive: bool = False) -> list[dict]:
        """Entries as the mount lists them: dicts with name, path, type, size, mode, uid, gid,
        nlink, mtime_ns; sorted by name, depth first with ``recursive``."""
        return self._door.call("listdir", _check(path), recursive=recursive)

    def mkdir(self, path: str, *, parents: bool = False, mode: int = 0o777) -> FileInfo:
        return FileInfo.from_dict(self._door.call("mkdir", _check(path), parents=parents,
                                                  mode=mode))

    def rm(self, path: str, *, recursive: bool = False) -> int:
        return self._door.call("remove", _check(path), recursive=recursive)

    def rmdir(self, path: str) -> None:
        self._door.call("rmdir", _check(path))

    def mv(self, src: str, dst: str, *, overwrite: bool = True) -> str:
        return self._door.call("move", _check(src), _check(dst), overwrite=overwrite)

    def cp(self, src: str, dst: str, *, recursive: bool = False) -> int:
        return self._door.call("copy", _check(src), _check(dst), recursive=recursive)

    def write_batch(self, items, *, mode: int = 0o666, parents: bool = True) -> list[FileInfo]:
        """Write many files ``[(path, data), ...]`` in one transaction: every target is checked
        before anything is written, and the metadata is committed once. An item may carry a
        third element, the modification time (ns) to give the file."""
        items = [(_check(it[0]), _content(it[1])) + tuple(it[2:3]) for it in items]
        return [FileInfo.from_dict(i) for i in
                self._door.call("write_batch", items, mode=mode, parents=parents)]

    # -- history ------------------------------------------------------------------------------
    def command(self, *argv: str):
        """Any control command (`help` lists them), e.g. ``command("log", "--limit", "5")``;
        returns its data."""
        return self._door.command([str(a) for a in argv])

    def versions(self, path: str) -> list[dict]:
        return self.command("versions", "list", "--", _check(path))

    def read_version(self, path: str, seq: int) -> bytes:
        import base64
        return base64.b64decode(self.command("versions", "show", "--", _check(path),
                                             str(seq))["base64"])

    def rollback(self, path: str, seq: int) -> dict:
        return self.command("versions", "rollback", "--", _check(path), str(seq))

    def snapshot(self, name: str, path: str = "/") -> dict:
        return self.command("snapshot", "create", "--", name, _check(path))

    def snapshots(self) -> list[dict]:
        return self.command("snapshot", "list")

    def restore(self, name: str, path: str | None = None) -> dict:
        return self.command("snapshot", "restore", "--", name,
                            *([_check(path)] if path else []))

    def undo(self, count: int = 1, *, seq: int | None = None) -> list[dict]:
        if seq is not None:
            return self.command("undo", "--seq", str(seq))
        return self.command("undo", str(count))

    def log(self, *, limit: int | None = None, path: str | None = None,
            agent: str | None = None) -> list[dict]:
        argv = ["log"]
        for flag, value in (("--limit", limit), ("--path", path), ("--agent", agent)):
            if value is not None:
                argv += [flag, str(value)]
        return self.command(*argv)

    # -- search -------------------------------------------------------------------------------
    def grep(self, pattern: str, *, path: str = "/", file_pattern: str | None = None,
             search_mode: str = "auto", ignore_case: bool = False, fixed_strings: bool = False,
             limit: int = 1000) -> list[dict]:
        """Lines matching ``pattern`` (grep -E syntax), path order, up to ``limit`` lines:
        dicts with path, line, text and source ("raw" or the parsed view)."""
        argv = ["grep", "--path", _check(path), "--search-mode", search_mode,
                "--limit", str(limit)]
        if file_pattern:
            argv += ["--file-pattern", file_pattern]
        argv += ["--ignore-case"] * ignore_case + ["--fixed-strings"] * fixed_strings
        return self.command(*argv, "--", pattern)["results"]

    def glob(self, pattern: str, *, path: str = "/") -> list[str]:
        """Store paths matching ``pattern`` (``*``, ``?``, ``[..]``, ``**``), path order."""
        return [g["path"] for g in self.command("glob", "--path", _check(path), "--", pattern)]

    def search(self, query: str, *, path: str = "/", limit: int = 10) -> list[dict]:
        """Files ranked by relevance (BM25) to ``query``, with their best line."""
        return self.command("search", "--path", _check(path), "--limit", str(limit), "--",
                            *query.split())

    # -- lifetime -----------------------------------------------------------------------------
    def close(self) -> None:
        self._door.close()

    def __enter__(self) -> "Nexus":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<nexusfs.Nexus {self.mode} {self.data_dir}>"


def _daemon_socket(target: str):
    """(socket path, data dir) of the daemon serving ``target`` (a mount point or data
    directory), or None when no daemon answers there."""
    from .. import runtime
    mp = os.path.abspath(target)
    info = runtime.read_registry(mp)
    if info:
        return config_mod.load(info["data_dir"]).socket_path, info["data_dir"]
    return None


def connect(path: str | os.PathLike | None = None, *, create: bool = True, door: str = "auto",
            **settings) -> Nexus:
    """Open the store at ``path``: a data directory (default: the default data directory) or
    the mount point of a running daemon. ``door``: "auto" (the daemon if one serves the
    store, else embedded), "daemon" or "embedded". ``create``: make an empty store when the
    directory holds none (embedded only). ``settings`` override nexusfs.toml (embedded)."""
    from ..control.client import Connection, ControlError
    from .embedded import EmbeddedStore
    from .remote import DaemonDoor
    if door not in ("auto", "daemon", "embedded"):
        raise ValueError(f"door must be auto, daemon or embedded, not {door!r}")
    path = os.fspath(path) if path is not None else None
    served = _daemon_socket(path) if path else None
    if served is None:
        cfg = config_mod.load(path, **settings)
        sock, data_dir = cfg.socket_path, cfg.data_dir
    else:
        sock, data_dir = served
        cfg = None
    if door != "embedded" and os.path.exists(sock):
        try:
            Connection(sock).close()
            return Nexus(DaemonDoor(sock), "daemon", data_dir)
        except ControlError:
            if door == "daemon":
                raise StoreError(f"no daemon answers at {sock}") from None
    if door == "daemon":
        raise StoreError(f"no daemon serves {path or data_dir}")
    if cfg is None:
        raise StoreError(f"the daemon of {path} does not answer on {sock}")
    if not cfg.db_path.exists():
        if not create:
            raise StoreError(f"no nexusfs store in {cfg.data_dir} (make one with "
                             f"`nexus init {cfg.data_dir}`)")
        try:
            cfg.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot make {cfg.data_dir}: {e.strerror}") from None
    return Nexus(EmbeddedStore(cfg), "embedded", cfg.data_dir)


# -- the async form -----------------------------------------------------------------------------
async def _in_thread(fn, *args, **kw):
    import sniffio
    call = functools.partial(fn, *args, **kw)
    if sniffio.current_async_library() == "trio":
        import trio
        return await trio.to_thread.run_sync(call)
    import asyncio
    return await asyncio.to_thread(call)


class AsyncNexus:
    """``Nexus`` for trio and asyncio: the same methods, awaited (each runs in a worker thread,
    the event loop keeps running). ``async with await aconnect(path) as nx: ...``"""

    def __init__(self, nexus: Nexus):
        self.sync = nexus
        self.mode = nexus.mode

    def __getattr__(self, name):
        fn = getattr(self.sync, name)
        if not callable(fn):
            return fn

        async def method(*args, **kw):
            return await _in_thread(fn, *args, **kw)
        method.__name__ = name
        method.__doc__ = fn.__doc__
        return method

    async def aclose(self) -> None:
        await _in_thread(self.sync.close)

    async def __aenter__(self) -> "AsyncNexus":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()


async def aconnect(path=None, **kw) -> AsyncNexus:
    """``connect`` for async callers (trio or asyncio)."""
    return AsyncNexus(await _in_thread(connect, path, **kw))
