"""Who may use history: the checks behind every history command (ctl file and socket alike).

Rules (docs/access.md):
  * reading the past (versions, cat/ls --at, snapshot diff) needs read access to the thing
    today when it still exists, and its permissions of the time when it does not;
  * restoring, rolling back or undoing needs write access to what changes (write and search
    on each directory whose entries change, write on each file whose content changes,
    ownership for a change of mode or owner);
  * undoing another user's operation needs root;
  * deleting or renaming a snapshot needs its creator or root;
  * the log shows a non-root caller only the paths it could list now (its own operations'
    paths always); the rest is redacted.
Agents (``NEXUS_AGENT``) are labels: nothing here grants anything because of one.
Runs on the trio thread; nothing awaits.
"""
from __future__ import annotations

import errno
import stat as st

from ..access import acl as A
from ..types import ROOT_INO, Caller, FsError
from .paths import resolve_live

R, W, X = 4, 2, 1
META_OPS = {"chmod", "chown", "setfacl", "utimens", "setxattr", "removexattr"}


def _denied(what: str) -> FsError:
    return FsError(errno.EACCES, f"permission denied: {what}")


def live_ino(fs, path: str) -> int | None:
    try:
        return resolve_live(fs, path)
    except FsError:
        return None


def can_read_then(fs, caller: Caller, ino: int, seq: int, want: int = R) -> bool:
    """Access to ``ino`` as the caller may have it: today's if it is live, else the mode it
    had at ``seq``."""
    if caller.uid == 0:
        return True
    if fs.meta.get_attr(ino) is not None and (ino == ROOT_INO or fs.meta.name_of(ino)):
        return fs.access.may_access(caller, ino, want)
    attr = fs.tt.attr(ino, seq) or fs.tt.attr(ino, seq - 1)
    if attr is None:
        return False
    return A.permits(None, attr.mode, attr.uid, attr.gid, caller.uid,
                     frozenset((caller.gid, *caller.groups)), want)


def require_read(fs, caller: Caller, ino: int, seq: int, path: str, want: int = R) -> None:
    if not can_read_then(fs, caller, ino, seq, want):
        raise _denied(f"{path} is not readable by uid {caller.uid}")


def _parent_of_path(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


def require_change(fs, caller: Caller, path: str | None, *, content: bool = False,
                   entries: bool = True, meta_change: bool = False) -> None:
    """Write access to what a restore/undo changes at ``path``: its directory's entries,
    the file's content, or its mode/owner."""
    if caller.uid == 0 or not path or path.startswith("<"):
        return
    if entries:
        d = live_ino(fs, _parent_of_path(path))
        if d is not None and not fs.access.may_access(caller, d, W | X):
            raise _denied(f"{_parent_of_path(path)} is not writable by uid {caller.uid}")
    ino = live_ino(fs, path)
    if ino is None:
        return
    if content and not fs.access.may_access(caller, ino, W):
        raise _denied(f"{path} is not writable by uid {caller.uid}")
    if meta_change and fs.meta.get_attr(ino).uid != caller.uid:
        raise _denied(f"{path} is not owned by uid {caller.uid}")


def require_restore(fs, caller: Caller, changes: list[dict], target: str) -> None:
    """A restore changes the entries listed by its diff: check each."""
    if caller.uid == 0:
        return
    require_change(fs, caller, target, content=True, entries=False)
    for c in changes:
        require_change(fs, caller, c["path"], content=c["change"] == "modified",
                       entries=c["change"] != "modified")


def require_undo(fs, caller: Caller, rec: dict) -> None:
    if caller.uid == 0:
        return
    if rec.get("uid") != caller.uid:
        raise FsError(errno.EPERM, f"operation {rec.get('seq')} is uid {rec.get('uid')}'s: "
                                   "only root undoes another user's operations")
    op = rec.get("op") or ""
    meta_change = op in META_OPS
    content = op in ("write", "truncate", "rollback", "restore", "create")
    for p in (rec.get("path"), rec.get("path2") if op == "rename" else None):
        require_change(fs, caller, p, content=content and not meta_change,
                       entries=not meta_change, meta_change=meta_change)


def snapshot_creator(fs, name: str) -> int | None:
    rows = fs.tt.log(op="snapshot-create", newest_first=True, limit=1000)
    for row in rows:
        if row[9] == name:
            return row[2]
    return None


def require_snapshot_owner(fs, caller: Caller, name: str) -> None:
    if caller.uid == 0:
        return
    if snapshot_creator(fs, name) != caller.uid:
        raise FsError(errno.EPERM, f"snapshot {name} was made by another user: only its "
                                   "creator or root may change it")


def can_list_parent(fs, caller: Caller, path: str) -> bool:
    """Could ``caller`` see ``path`` in a listing of its directory now?"""
    if caller.uid == 0:
        return True
    d = live_ino(fs, _parent_of_path(path))
    return d is not None and fs.access.may_access(caller, d, R | X)


def redact_log(fs, caller: Caller | None, records: list[dict]) -> list[dict]:
    """Hide, from a non-root caller, the paths it could not list now (unless the operation
    was its own)."""
    if caller is None or caller.uid == 0:
        return records
    seen: dict[str, bool] = {}

    def visible(path: str | None) -> bool:
        if not path or not path.startswith("/"):
            return True
        if path not in seen:
            seen[path] = can_list_parent(fs, caller, path)
        return seen[path]

    out = []
    for r in records:
        if r.get("uid") != caller.uid:
            hidden = False
            for key in ("path", "path2"):
                if r.get(key) and r.get("op") != "snapshot-create" and not visible(r[key]):
                    r = dict(r, **{key: None})
                    hidden = True
            if hidden:
                r["redacted"] = True
        out.append(r)
    return out


def is_dir_then(fs, ino: int, seq: int) -> bool:
    a = fs.meta.get_attr(ino) or fs.tt.attr(ino, seq)
    return a is not None and st.S_ISDIR(a.mode)
