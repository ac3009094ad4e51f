"""The history service: what the control plane (ctl file, socket, CLI) asks of history.

Every method runs on the trio thread of the daemon (or of an embedded store), takes the
``Caller`` on whose behalf it acts, and raises ``FsError(errno, message)`` on failure; the
message is one line meant for the user. Return values are plain data (dicts, lists, bytes)
that the control plane serialises.

Paths are absolute store paths ("/src/app.py"), given as ``str``.
"""
from __future__ import annotations

import errno
import posixpath
import re
import stat as st
import time

from ..types import Caller, FsError
from . import authz
from . import restore as restore_mod
from . import undo as undo_mod
from .paths import resolve_any, resolve_at, resolve_live

SNAPSHOT_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")


def check_snapshot_name(name: str) -> None:
    if not SNAPSHOT_NAME.fullmatch(name or "") or name in (".", ".."):
        raise FsError(errno.EINVAL, f"invalid snapshot name {name!r}: use [A-Za-z0-9._-], 1 to 128 characters")


def version_name(seq: int, time_ns: int) -> str:
    """Sortable version file name: the sequence number, then the UTC time."""
    return f"{seq:010d}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(time_ns / 1e9))}"


def _kind(mode: int) -> str:
    return ("dir" if st.S_ISDIR(mode) else "file" if st.S_ISREG(mode) else
            "symlink" if st.S_ISLNK(mode) else "other")


def log_record(row) -> dict:
    seq, t, uid, gid, pid, proc, agent, op, path, path2, ino, result, undo_of = row
    rec = {"seq": seq, "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t / 1e9)) +
           f".{t % 1_000_000_000 // 1000:06d}Z", "time_ns": t, "uid": uid, "gid": gid, "pid": pid,
           "process": proc, "agent": agent, "op": op, "path": path, "result": result}
    if path2 is not None:
        rec["path2"] = path2
    if undo_of is not None:
        rec["undo_of"] = undo_of
    return rec


class HistoryService:
    def __init__(self, fs):
        self.fs = fs

    def _seq_ok(self, seq: int) -> int:
        if seq < 0 or seq > self.fs.meta.last_seq:
            raise FsError(errno.ENOENT, f"no sequence number {seq} (the last is {self.fs.meta.last_seq})")
        if seq < self.fs.tt.oldest_seq() and seq not in {s[1] for s in self.fs.tt.snapshots()}:
            raise FsError(errno.ENOENT, f"sequence number {seq} is past the retention of history"
                                        f" (the oldest kept is {self.fs.tt.oldest_seq()})")
        return seq

    async def _commit_all(self) -> None:
        for ino in list(self.fs.dirty):
            await self.fs.commit_file(ino)

    # -- snapshots ----------------------------------------------------------------------------
    async def snapshot_create(self, name: str, path: str, caller: Caller) -> dict:
        """Name the current state of the subtree at ``path`` (constant time: a row).
        EINVAL bad name ([A-Za-z0-9._-]{1,128}), EEXIST taken, ENOENT/ENOTDIR bad path."""
        check_snapshot_name(name)
        path = path or "/"
        ino = resolve_live(self.fs, path)
        authz.require_read(self.fs, caller, ino, self.fs.meta.last_seq, path, authz.R | authz.X)
        if not st.S_ISDIR(self.fs.meta.get_attr(ino).mode):
            raise FsError(errno.ENOTDIR, f"{path}: snapshots are of directories")
        if self.fs.tt.snapshot(name):
            raise FsError(errno.EEXIST, f"snapshot {name} exists")
        await self._commit_all()
        if self.fs.tt.snapshot(name):
            raise FsError(errno.EEXIST, f"snapshot {name} exists")
        seq = self.fs.meta.last_seq
        self.fs._begin("snapshot-create", caller, path=path, path2=name, ino=ino)
        self.fs.meta.add_snapshot(name, seq, ino, path, time.time_ns())
        return {"name": name, "seq": seq, "path": path}

    async def snapshot_list(self) -> list[dict]:
        """[{"name", "seq", "path", "created_ns"}] sorted by seq."""
        return [{"name": n, "seq": s, "path": p, "created_ns": c}
                for n, s, _ino, p, c in self.fs.tt.snapshots()]

    def _snapshot(self, name: str):
        snap = self.fs.tt.snapshot(name)
        if snap is None:
            raise FsError(errno.ENOENT, f"no snapshot {name}")
        return snap

    async def snapshot_delete(self, name: str, caller: Caller) -> None:
        snap = self._snapshot(name)
        authz.require_snapshot_owner(self.fs, caller, name)
        self.fs._begin("snapshot-delete", caller, path=snap[3], path2=name)
        self.fs.meta.delete_snapshot(name)

    async def snapshot_rename(self, old: str, new: str, caller: Caller) -> None:
        check_snapshot_name(new)
        snap = self._snapshot(old)
        authz.require_snapshot_owner(self.fs, caller, old)
        if self.fs.tt.snapshot(new):
            raise FsError(errno.EEXIST, f"snapshot {new} exists")
        self.fs._begin("snapshot-rename", caller, path=snap[3], path2=f"{old} -> {new}")
        self.fs.meta.rename_snapshot(old, new)

    def _snapshot_target(self, name: str, path: str | None) -> tuple[int, int, str]:
        """(inode, seq, path) a snapshot command acts on: the snapshot's directory, or ``path``
        inside it (a store path, or one relative to the snapshot's directory)."""
        _n, seq, root_ino, root_path, _c = self._snapshot(name)
        if not path or path == root_path:
            return root_ino, seq, root_path
        if not path.startswith(root_path.rstrip("/") + "/") and root_path != "/":
            path = root_path.rstrip("/") + "/" + path.lstrip("/")
        return resolve_at(self.fs, path, seq), seq, path

    async def snapshot_restore(self, name: str, path: str | None, caller: Caller) -> dict:
        """Make the subtree (the snapshot's, or ``path`` inside it) look as it did; a logged,
        undoable operation. Returns {"seq", "changed": number of entries changed}."""
        ino, seq, target = self._snapshot_target(name, path)
        await self._commit_all()
        if caller.uid != 0:
            authz.require_read(self.fs, caller, ino, seq, target, authz.R | authz.X)
            authz.require_restore(self.fs, caller, restore_mod.diff(self.fs, ino, seq, target),
                                  target)
        r = self.fs._begin("restore", caller, path=target, path2=name, ino=ino)
        changed = restore_mod.restore(self.fs, ino, seq, r)
        await self.fs.settle_kernel()
        return {"seq": r, "changed": changed, "snapshot": name, "path": target}

    async def snapshot_diff(self, name: str, path: str | None,
                            caller: Caller | None = None) -> list[dict]:
        """[{"change": "added"|"deleted"|"modified"|"replaced", "path"}] from the snapshot to now."""
        ino, seq, target = self._snapshot_target(name, path)
        if caller is not None:
            authz.require_read(self.fs, caller, ino, seq, target, authz.R | authz.X)
        await self._commit_all()
        changes = restore_mod.diff(self.fs, ino, seq, target)
        if caller is not None and caller.uid != 0:
            changes = [c for c in changes if authz.can_list_parent(self.fs, caller, c["path"])]
        return changes

    # -- the log and undo ---------------------------------------------------------------------
    async def log(self, *, agent: str | None = None, uid: int | None = None,
                  path: str | None = None, op: str | None = None, since_seq: int | None = None,
                  since_ns: int | None = None, limit: int | None = None,
                  caller: Caller | None = None) -> list[dict]:
        """Log records, oldest first (the newest ``limit`` when limited)."""
        rows = self.fs.tt.log(agent=agent, uid=uid, path=path, op=op, since_seq=since_seq,
                              since_ns=since_ns, limit=limit, newest_first=limit is not None)
        if limit is not None:
            rows.reverse()
        return authz.redact_log(self.fs, caller, [log_record(r) for r in rows])

    async def undo(self, caller: Caller, *, count: int = 1, seq: int | None = None,
                   agent: str | None = None, path: str | None = None,
                   force: bool = False) -> list[dict]:
        """Undo the caller's last ``count`` operations (or op ``seq``, or the last of ``agent``
        or on ``path``). Each undo is itself logged and undoable."""
        await self._commit_all()
        if seq is not None:
            targets = [seq]
        else:
            targets = undo_mod.pick(self.fs, caller, count=max(1, count), agent=agent, path=path)
        for s in targets:
            rec = self.fs.tt.op(s)
            if rec is not None:
                authz.require_undo(self.fs, caller, log_record(rec))
        done = []
        try:
            for s in targets:
                done.append(undo_mod.undo(self.fs, s, caller, force))
        finally:
            await self.fs.settle_kernel()
        return done

    # -- versions and time travel -------------------------------------------------------------
    async def versions_list(self, path: str, caller: Caller | None = None) -> list[dict]:
        """[{"seq", "name", "size", "mtime_ns", "time_ns"}] oldest first."""
        await self._commit_all()
        ino = resolve_any(self.fs, path)
        if caller is not None:
            authz.require_read(self.fs, caller, ino, self.fs.meta.last_seq, path)
        return [{"seq": s, "name": version_name(s, t), "size": size, "mtime_ns": m, "time_ns": t}
                for s, size, m, t, _ino in self._path_versions(path, ino)]

    def _path_versions(self, path: str, ino: int) -> list[tuple]:
        """The versions of every file ``path`` has named (editors' atomic saves and files made
        again replace the inode; the history of the path goes on)."""
        if path.rstrip("/") in ("", "."):
            return [(*v, ino) for v in self.fs.tt.versions(ino)]
        head, name = posixpath.split(path.rstrip("/"))
        parent = resolve_any(self.fs, head or "/")
        return self.fs.tt.path_versions(parent, name.encode(errors="surrogateescape"))

    def _version(self, path: str, seq: int) -> tuple[int, int]:
        """(the inode whose version ``seq`` is, seq)."""
        ino = resolve_any(self.fs, path)
        for v in self._path_versions(path, ino):
            if v[0] == seq:
                return v[4], seq
        raise FsError(errno.ENOENT, f"{path} has no version {seq}")

    async def version_read(self, path: str, seq: int, caller: Caller | None = None) -> bytes:
        ino, seq = self._version(path, seq)
        if caller is not None:
            authz.require_read(self.fs, caller, ino, seq, path)
        return await self.fs.read_at(ino, seq)

    async def versions_rollback(self, path: str, seq: int, caller: Caller) -> dict:
        """Make version ``seq`` the file's content again (a new version; nothing lost)."""
        await self._commit_all()
        ino, seq = self._version(path, seq)
        live = resolve_live(self.fs, path)
        authz.require_change(self.fs, caller, path, content=True, entries=False)
        r = self.fs._begin("rollback", caller, path=path, path2=str(seq), ino=live)
        if live == ino:
            restore_mod.restore(self.fs, ino, seq, r)
        else:                       # a version of a file the path named before: its content
            restore_mod.restore_content(self.fs, live, ino, seq, r)
        await self.fs.settle_kernel()
        return {"seq": r, "path": path, "version": seq}

    async def cat_at(self, path: str, seq: int, caller: Caller | None = None) -> bytes:
        self._seq_ok(seq)
        ino = resolve_at(self.fs, path, seq)
        if caller is not None:
            authz.require_read(self.fs, caller, ino, seq, path)
        attr = self.fs.tt.attr(ino, seq)
        if st.S_ISDIR(attr.mode):
            raise FsError(errno.EISDIR, f"{path} is a directory")
        return await self.fs.read_at(ino, seq)

    async def ls_at(self, path: str, seq: int, caller: Caller | None = None) -> list[dict]:
        self._seq_ok(seq)
        ino = resolve_at(self.fs, path, seq)
        if caller is not None:
            authz.require_read(self.fs, caller, ino, seq, path, authz.R | authz.X)
        attr = self.fs.tt.attr(ino, seq)
        if not st.S_ISDIR(attr.mode):
            return [{"name": path.rsplit("/", 1)[-1], "type": _kind(attr.mode), "size": attr.size,
                     "mode": attr.mode, "mtime_ns": attr.mtime_ns}]
        out = []
        for name, child in restore_mod._entries_at(self.fs, ino, seq).items():
            a = self.fs.tt.attr(child, seq)
            if a is not None:
                out.append({"name": name.decode(errors="surrogateescape"), "type": _kind(a.mode),
                            "size": a.size, "mode": a.mode, "mtime_ns": a.mtime_ns})
        return sorted(out, key=lambda e: e["name"])

    # -- the store ----------------------------------------------------------------------------
    async def stats(self) -> dict:
        return self.fs.stats()

    async def gc(self) -> dict:
        r = await self.fs.collect_garbage()
        return {"chunks_freed": r.chunks_freed, "packs_compacted": r.packs_compacted,
                "packs_deleted": r.packs_deleted, "bytes_freed": r.bytes_freed}
