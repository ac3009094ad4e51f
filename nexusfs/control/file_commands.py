"""File-operation commands of the control registry (``file info|read|write|upload|batch|discard|
ls|mkdir|rm|rmdir|mv|cp``): the daemon's door for the nexus API and file verbs.

Each runs nexusfs.api.service.FileService on the daemon's FileSystem as the caller the socket
names (SO_PEERCRED), so permissions, the log and versions are as through the mount. Contents
travel as base64 in the command's words (``file write PATH DATA``) up to the 64 KiB limit of
a command; larger contents are staged first with ``file upload TOKEN PATH DATA`` (repeated,
each appending) into memory, or anonymous temporary files in DATA_DIR/tmp past 1 MiB, then committed whole by
``file write PATH --upload TOKEN`` or, for many files in one transaction, ``file batch
TOKEN``. Staged data is private to the uid that staged it, and dropped by ``file discard``,
after a commit, after ten idle minutes, and by a restart: an interrupted client leaves
nothing half-written. Reads return at most ``--size`` bytes (the client pages large files,
passing ``--if-match`` so that the pages belong to one content).

Concurrency: handlers run on the trio thread; staging state is touched only between awaits.
"""
from __future__ import annotations

import base64
import binascii
import errno
import secrets
import tempfile
import time
import weakref

from ..api.service import FileService
from ..types import Caller, FsError
from .commands import Reply, command

UPLOAD_TTL = 600.0                      # seconds an untouched upload is kept
SPOOL = 1 << 20                         # staged bytes of one file kept in memory, then on disk
_state: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # fs -> (service, uploads)


class Upload:
    def __init__(self, uid: int):
        self.uid = uid
        self.files: dict[str, object] = {}            # path -> temporary file, in order
        self.mtimes: dict[str, int] = {}              # path -> modification time to give it
        self.touched = time.monotonic()

    def close(self) -> None:
        for f in self.files.values():
            f.close()
        self.files.clear()


def _service(svc) -> tuple[FileService, dict[str, Upload]]:
    fs = svc.fs
    state = _state.get(fs)
    if state is None:
        state = _state[fs] = (FileService(fs), {})
    uploads = state[1]
    limit = time.monotonic() - UPLOAD_TTL
    for token in [t for t, u in uploads.items() if u.touched < limit]:
        uploads.pop(token).close()
    return state


def _b64(text: str | None) -> bytes:
    if not text:
        return b""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise FsError(errno.EINVAL, "DATA is not base64") from None


def _mode(a) -> int:
    value = a["--mode"]
    if value is None:
        return 0o666
    try:
        return int(value, 8) & 0o7777
    except ValueError:
        raise a.cmd.error(f"--mode is octal (644), not {value!r}") from None


def _mtime(a) -> int | None:
    """--mtime NS: nanoseconds since the epoch (19 digits: more than Args.int takes)."""
    value = a["--mtime"]
    if value is None:
        return None
    if not value.isdigit() or len(value) > 20:
        raise a.cmd.error(f"--mtime takes nanoseconds since the epoch, not {value!r}")
    return int(value)


def _upload(uploads: dict[str, Upload], token: str, caller: Caller) -> Upload:
    up = uploads.get(token)
    if up is None or up.uid != caller.uid:
        raise FsError(errno.ENOENT, f"no upload {token} (expired, committed or not yours)")
    up.touched = time.monotonic()
    return up


def _rewound(f):
    f.seek(0)
    return f


@command("file info PATH", "a file's or directory's attributes; files also etag and version")
async def _info(svc, a, caller):
    fsvc, _ = _service(svc)
    info = await fsvc.run("info", a["PATH"], caller)
    return Reply("".join(f"{k}: {v}\n" for k, v in info.items()), info)


@command("file read PATH [--offset N] [--size N] [--if-match E]",
         "a file's bytes (or SIZE of them from OFFSET), with its info")
async def _read(svc, a, caller):
    fsvc, _ = _service(svc)
    data, info = await fsvc.run("read", a["PATH"], caller, offset=a.int("--offset") or 0,
                                size=a.int("--size"), if_match=a["--if-match"])
    return Reply(data.decode(errors="replace"),
                 {"info": info, "offset": a.int("--offset") or 0, "size": len(data),
                  "base64": base64.b64encode(data).decode("ascii")})


@command("file write PATH [DATA] [--upload T] [--if-match E] [--if-none-match] [--mode M] "
         "[--no-parents] [--mtime NS]",
         "make DATA (base64) or the content staged under upload T the whole content of PATH")
async def _write(svc, a, caller):
    fsvc, uploads = _service(svc)
    if a["--upload"] is not None:
        if a["DATA"]:
            raise a.cmd.error("give DATA or --upload, not both")
        up = _upload(uploads, a["--upload"], caller)
        if list(up.files) != [a["PATH"]]:
            raise FsError(errno.EINVAL, f"upload {a['--upload']} does not hold exactly {a['PATH']}")
        source = _rewound(up.files[a["PATH"]])
    else:
        source, up = _b64(a["DATA"]), None
    try:
        info = await fsvc.run("write", a["PATH"], source, caller, if_match=a["--if-match"],
                              if_none_match=bool(a["--if-none-match"]), mode=_mode(a),
                              parents=not a["--no-parents"], mtime_ns=_mtime(a))
    finally:
        if up is not None:
            uploads.pop(a["--upload"], None)
            up.close()
    return Reply(f"{info['path']}: {info['size']} bytes, etag {info['etag']}\n", info)


@command("file upload T PATH [DATA] [--mtime NS]", "stage base64 DATA for PATH under upload T "
         "(new: start one); appends to what T already holds for PATH")
async def _upload_cmd(svc, a, caller):
    fsvc, uploads = _service(svc)
    token = a["T"]
    if token == "new":
        token = secrets.token_hex(8)
        uploads[token] = Upload(caller.uid)
    up = _upload(uploads, token, caller)
    path = a["PATH"]
    from ..api.service import check_path
    if check_path(path) != path:
        raise FsError(errno.EINVAL, f"{path!r}: give the normalised store path")
    f = up.files.get(path)
    if f is None:
        f = up.files[path] = tempfile.SpooledTemporaryFile(SPOOL, dir=fsvc.fs.cfg.spill_dir,
                                                           prefix="upload-")
    f.seek(0, 2)
    f.write(_b64(a["DATA"]))
    if a["--mtime"] is not None:
        up.mtimes[path] = _mtime(a)
    return Reply(f"{token}\n", {"token": token, "path": path, "size": f.tell()})


@command("file batch T [--mode M] [--no-parents]",
         "write every file staged under upload T, committed as one transaction")
async def _batch(svc, a, caller):
    fsvc, uploads = _service(svc)
    up = _upload(uploads, a["T"], caller)
    try:
        infos = await fsvc.run("write_batch", [(p, _rewound(f), up.mtimes.get(p))
                                             for p, f in up.files.items()],
                               caller, mode=_mode(a), parents=not a["--no-parents"])
    finally:
        uploads.pop(a["T"], None)
        up.close()
    return Reply(f"{len(infos)} files written\n", infos)


@command("file discard T", "drop upload T")
async def _discard(svc, a, caller):
    _fsvc, uploads = _service(svc)
    _upload(uploads, a["T"], caller)
    uploads.pop(a["T"]).close()
    return Reply(f"upload {a['T']} discarded\n", {"discarded": a["T"]})


@command("file ls PATH [--recursive]", "a directory's entries as the mount lists them")
async def _ls(svc, a, caller):
    fsvc, _ = _service(svc)
    entries = await fsvc.run("listdir", a["PATH"], caller, recursive=bool(a["--recursive"]))
    return Reply("".join(e["path"] + ("/" if e["type"] == "dir" else "") + "\n"
                         for e in entries), entries)


@command("file mkdir PATH [--parents] [--mode M]", "make a directory (--parents: and the "
         "missing ones above it, no error if it exists)")
async def _mkdir(svc, a, caller):
    fsvc, _ = _service(svc)
    mode = _mode(a) if a["--mode"] is not None else 0o777
    info = await fsvc.run("mkdir", a["PATH"], caller, parents=bool(a["--parents"]), mode=mode)
    return Reply(f"{info['path']}/\n", info)


@command("file rm PATH [--recursive]", "remove a file (--recursive: a directory and all below)")
async def _rm(svc, a, caller):
    fsvc, _ = _service(svc)
    n = await fsvc.run("remove", a["PATH"], caller, recursive=bool(a["--recursive"]))
    return Reply(f"{n} removed\n", {"removed": n})


@command("file rmdir PATH", "remove an empty directory")
async def _rmdir(svc, a, caller):
    fsvc, _ = _service(svc)
    await fsvc.run("rmdir", a["PATH"], caller)
    return Reply(f"{a['PATH']} removed\n", {"removed": 1})


@command("file mv SRC DST [--no-clobber]", "rename (into DST when it is a directory)")
async def _mv(svc, a, caller):
    fsvc, _ = _service(svc)
    dst = await fsvc.run("move", a["SRC"], a["DST"], caller, overwrite=not a["--no-clobber"])
    return Reply(f"{a['SRC']} -> {dst}\n", {"path": dst})


@command("file cp SRC DST [--recursive]", "copy inside the store (into DST when it is a "
         "directory)")
async def _cp(svc, a, caller):
    fsvc, _ = _service(svc)
    n = await fsvc.run("copy", a["SRC"], a["DST"], caller, recursive=bool(a["--recursive"]))
    return Reply(f"{n} copied\n", {"copied": n})
