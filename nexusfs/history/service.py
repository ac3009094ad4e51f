"""The history service: what the control plane (ctl file, socket, CLI) asks of history.

Every method runs on the trio thread of the daemon (or of an embedded store), takes the
``Caller`` on whose behalf it acts, and raises ``FsError(errno, message)`` on failure; the
message is one line meant for the user. Return values are plain data (dicts, lists, bytes)
that the control plane serialises.

Paths are absolute store paths ("/src/app.py"), given as ``str``.
"""
from __future__ import annotations

from ..types import Caller


class HistoryService:
    def __init__(self, fs):
        self.fs = fs

    # -- snapshots ----------------------------------------------------------------------------
    async def snapshot_create(self, name: str, path: str, caller: Caller) -> dict:
        """Name the current state of the subtree at ``path``. Returns {"name", "seq", "path"}.
        EINVAL bad name ([A-Za-z0-9._-]{1,128}), EEXIST taken, ENOENT/ENOTDIR bad path."""
        raise NotImplementedError

    async def snapshot_list(self) -> list[dict]:
        """[{"name", "seq", "path", "created_ns"}] sorted by seq."""
        raise NotImplementedError

    async def snapshot_delete(self, name: str, caller: Caller) -> None:
        raise NotImplementedError

    async def snapshot_rename(self, old: str, new: str, caller: Caller) -> None:
        raise NotImplementedError

    async def snapshot_restore(self, name: str, path: str | None, caller: Caller) -> dict:
        """Make the subtree (the snapshot's, or ``path`` inside it) look as it did; a logged,
        undoable operation. Returns {"seq", "changed": number of entries changed}."""
        raise NotImplementedError

    async def snapshot_diff(self, name: str, path: str | None) -> list[dict]:
        """[{"change": "added"|"deleted"|"modified", "path"}] from the snapshot to now."""
        raise NotImplementedError

    # -- the log and undo ---------------------------------------------------------------------
    async def log(self, *, agent: str | None = None, uid: int | None = None,
                  path: str | None = None, op: str | None = None, since_seq: int | None = None,
                  since_ns: int | None = None, limit: int | None = None,
                  caller: Caller | None = None) -> list[dict]:
        """Log records, oldest first: {"seq", "time", "time_ns", "uid", "gid", "pid",
        "process", "agent", "op", "path", "path2", "result", "undo_of"}."""
        raise NotImplementedError

    async def undo(self, caller: Caller, *, count: int = 1, seq: int | None = None,
                   agent: str | None = None, path: str | None = None,
                   force: bool = False) -> list[dict]:
        """Undo the caller's last ``count`` operations (or op ``seq``, or the last of ``agent``
        or on ``path``). Each undo is itself logged and undoable. EBUSY with the conflicting
        op named when a later change conflicts (unless ``force``); ENOENT unknown seq;
        EINVAL nothing to undo or past retention. Returns [{"undone", "seq", "op", "path"}]."""
        raise NotImplementedError

    # -- versions and time travel -------------------------------------------------------------
    async def versions_list(self, path: str) -> list[dict]:
        """[{"seq", "name", "size", "mtime_ns", "time_ns"}] oldest first; works for deleted
        paths too. ENOENT when the path never existed."""
        raise NotImplementedError

    async def version_read(self, path: str, seq: int) -> bytes:
        raise NotImplementedError

    async def versions_rollback(self, path: str, seq: int, caller: Caller) -> dict:
        """Write version ``seq`` back as the file's content (a new version; nothing lost)."""
        raise NotImplementedError

    async def cat_at(self, path: str, seq: int) -> bytes:
        raise NotImplementedError

    async def ls_at(self, path: str, seq: int) -> list[dict]:
        """[{"name", "type": "file"|"dir"|"symlink"|"other", "size", "mode", "mtime_ns"}]."""
        raise NotImplementedError

    # -- the store ----------------------------------------------------------------------------
    async def stats(self) -> dict:
        raise NotImplementedError

    async def gc(self) -> dict:
        raise NotImplementedError
