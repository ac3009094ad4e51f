"""A HistoryService stand-in for control-plane tests: canned data, recorded calls, injectable
failures and a gate that holds a call until released. No store, no mount."""
from __future__ import annotations

import errno

import trio

from nexusfs.history.service import HistoryService
from nexusfs.types import Caller, FsError

T0 = 1_763_750_000 * 10**9          # a fixed time for canned records

SNAPSHOTS = [{"name": "before", "seq": 10, "path": "/", "created_ns": T0},
             {"name": "src-ok", "seq": 20, "path": "/src", "created_ns": T0 + 10**9}]

CONTENT = {("/src/app.py", 5): b"print(1)\nprint(2)\n",
           ("/src/app.py", 9): b"print(1)\nprint(3)\nprint(4)",
           ("/bin.dat", 7): b"\x00\xff\xfe binary \x80",
           ("/same.txt", 1): b"x\n", ("/same.txt", 2): b"x\n"}

LOG = [{"seq": 5, "time": "2025-11-21T17:53:20.000000Z", "time_ns": T0, "uid": 1000, "gid": 1000,
        "pid": 42, "process": "python3", "agent": "bot-1", "op": "write", "path": "/src/app.py",
        "result": 0},
       {"seq": 6, "time": "2025-11-21T17:53:21.000000Z", "time_ns": T0 + 10**9, "uid": 0,
        "gid": 0, "pid": 43, "process": "mv", "agent": None, "op": "rename", "path": "/a",
        "path2": "/b", "result": 0},
       {"seq": 7, "time": "2025-11-21T17:53:22.000000Z", "time_ns": T0 + 2 * 10**9, "uid": 0,
        "gid": 0, "pid": 44, "process": "rm", "agent": None, "op": "unlink", "path": "/gone",
        "result": errno.ENOENT},
       {"seq": 8, "time": "2025-11-21T17:53:23.000000Z", "time_ns": T0 + 3 * 10**9, "uid": 0,
        "gid": 0, "pid": 45, "process": "nexus", "agent": None, "op": "undo", "path": "/a",
        "result": 0, "undo_of": 6}]


class FakeHistory(HistoryService):
    def __init__(self):
        super().__init__(fs=None)
        self.calls: list[tuple[str, tuple, dict]] = []
        self.callers: list[Caller] = []
        self.fail: dict[str, BaseException] = {}
        self.gates: dict[str, trio.Event] = {}        # method -> event the call waits for
        self.entered: dict[str, trio.Event] = {}      # method -> set when the call started
        self.finished: list[str] = []
        self.log_records: list[dict] = [dict(r) for r in LOG]

    async def _call(self, name: str, *args, caller: Caller | None = None, **kw):
        self.calls.append((name, args, kw))
        if caller is not None:
            self.callers.append(caller)
        if name in self.entered:
            self.entered[name].set()
        if name in self.gates:
            await self.gates[name].wait()
        if name in self.fail:
            raise self.fail[name]
        self.finished.append(name)

    def last(self, name: str | None = None):
        for call in reversed(self.calls):
            if name is None or call[0] == name:
                return call
        raise AssertionError(f"no call of {name}")

    # -- snapshots --------------------------------------------------------------------------
    async def snapshot_create(self, name, path, caller):
        await self._call("snapshot_create", name, path, caller=caller)
        return {"name": name, "seq": 41, "path": path}

    async def snapshot_list(self):
        await self._call("snapshot_list")
        return [dict(s) for s in SNAPSHOTS]

    async def snapshot_delete(self, name, caller):
        await self._call("snapshot_delete", name, caller=caller)
        if name not in {s["name"] for s in SNAPSHOTS}:
            raise FsError(errno.ENOENT, f"no snapshot {name}")

    async def snapshot_rename(self, old, new, caller):
        await self._call("snapshot_rename", old, new, caller=caller)

    async def snapshot_restore(self, name, path, caller):
        await self._call("snapshot_restore", name, path, caller=caller)
        return {"seq": 50, "changed": 3, "snapshot": name, "path": path or "/"}

    async def snapshot_diff(self, name, path, caller=None):
        await self._call("snapshot_diff", name, path)
        return [{"change": "added", "path": "/src/new.py"},
                {"change": "deleted", "path": "/old.txt"},
                {"change": "modified", "path": "/src/app.py"}]

    # -- log and undo -----------------------------------------------------------------------
    async def log(self, *, agent=None, uid=None, path=None, op=None, since_seq=None,
                  since_ns=None, limit=None, caller=None):
        await self._call("log", agent=agent, uid=uid, path=path, op=op, since_seq=since_seq,
                         since_ns=since_ns, limit=limit, caller=caller)
        recs = [r for r in self.log_records if (agent is None or r["agent"] == agent)
                and (op is None or r["op"] == op)]
        return recs[-limit:] if limit else recs

    async def undo(self, caller, *, count=1, seq=None, agent=None, path=None, force=False):
        await self._call("undo", count=count, seq=seq, agent=agent, path=path, force=force,
                         caller=caller)
        if seq == 999:
            raise FsError(errno.ENOENT, "no operation 999")
        targets = [seq] if seq is not None else list(range(7, 7 - count, -1))
        return [{"undone": s, "seq": 60 + i, "op": "write", "path": "/src/app.py"}
                for i, s in enumerate(targets)]

    # -- versions and time travel -----------------------------------------------------------
    async def versions_list(self, path, caller=None):
        await self._call("versions_list", path)
        seqs = sorted(s for p, s in CONTENT if p == path)
        if not seqs:
            raise FsError(errno.ENOENT, f"{path} never existed")
        return [{"seq": s, "name": f"{s:010d}-20251121T175320Z", "size": len(CONTENT[path, s]),
                 "mtime_ns": T0, "time_ns": T0} for s in seqs]

    async def version_read(self, path, seq, caller=None):
        await self._call("version_read", path, seq)
        if (path, seq) not in CONTENT:
            raise FsError(errno.ENOENT, f"{path} has no version {seq}")
        return CONTENT[path, seq]

    async def versions_rollback(self, path, seq, caller):
        await self._call("versions_rollback", path, seq, caller=caller)
        return {"seq": 70, "path": path, "version": seq}

    async def cat_at(self, path, seq, caller=None):
        await self._call("cat_at", path, seq)
        for (p, s), data in sorted(CONTENT.items(), key=lambda kv: -kv[0][1]):
            if p == path and s <= seq:
                return data
        raise FsError(errno.ENOENT, f"{path} did not exist at {seq}")

    async def ls_at(self, path, seq, caller=None):
        await self._call("ls_at", path, seq)
        if path == "/empty":
            return []
        return [{"name": "app.py", "type": "file", "size": 18, "mode": 0o100644,
                 "mtime_ns": T0},
                {"name": "lib", "type": "dir", "size": 0, "mode": 0o755, "mtime_ns": T0}]

    # -- the store --------------------------------------------------------------------------
    async def stats(self):
        await self._call("stats")
        return {"files": 12, "logical_bytes": 3 * 1024 * 1024, "dedup": {"ratio": 1.5}}

    async def gc(self):
        await self._call("gc")
        return {"chunks_freed": 4, "bytes_freed": 2048}
