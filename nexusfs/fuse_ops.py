"""The pyfuse3 adapter: the only module that imports pyfuse3.

Turns RequestContext into Caller, Attr into EntryAttributes and FsError into FUSEError; no SQL
and no policy. Every handler is wrapped so that an unexpected exception is logged and becomes
EIO instead of killing the trio loop (and with it the mount).
"""
from __future__ import annotations

import errno
import functools
import logging
import os
import time
from bisect import bisect_left

import pyfuse3
from cachetools import TTLCache

from .core.fs import FileSystem
from .access.acl import ACL_ACCESS
from .core.vtree import is_virtual
from .core.xattrs import UNSUPPORTED_XATTRS
from .metrics import LATENCY_BOUNDS
from .types import Attr, Caller, FsError

log = logging.getLogger("nexusfs.fuse")


class OpStats:
    """Per-operation request counts, failures and latencies (total, maximum and a histogram
    over LATENCY_BOUNDS), for stats, the metrics endpoint and benchmarks. Kept as one list
    per operation (a single dict lookup per request: this runs on every request)."""

    def __init__(self):
        self._ops: dict[str, list] = {}     # op -> [count, seconds, max, errors, buckets]

    def add(self, op: str, seconds: float, failed: bool) -> None:
        rec = self._ops.get(op)
        if rec is None:
            rec = self._ops[op] = [0, 0.0, 0.0, 0, [0] * (len(LATENCY_BOUNDS) + 1)]
        rec[0] += 1
        rec[1] += seconds
        if seconds > rec[2]:
            rec[2] = seconds
        rec[4][bisect_left(LATENCY_BOUNDS, seconds)] += 1
        if failed:
            rec[3] += 1

    def snapshot(self) -> dict[str, dict]:
        """A copy: {op: {"count", "errors", "seconds", "max_seconds", "buckets"}}, where
        ``buckets[i]`` counts the requests that took at most LATENCY_BOUNDS[i] seconds but more
        than the bound before (the last one: longer than every bound)."""
        return {op: {"count": n, "errors": errs, "seconds": secs, "max_seconds": mx,
                     "buckets": list(buckets)}
                for op, (n, secs, mx, errs, buckets) in self._ops.items()}


def _guard(fn):
    name = fn.__name__
    clock = time.perf_counter

    @functools.wraps(fn)
    async def wrapper(self, *args):
        started = clock()
        try:
            result = await fn(self, *args)
        except FsError as e:
            self.op_stats.add(name, clock() - started, True)
            raise pyfuse3.FUSEError(e.errno) from None
        except pyfuse3.FUSEError:
            self.op_stats.add(name, clock() - started, True)
            raise
        except OSError as e:
            self.op_stats.add(name, clock() - started, True)
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                log.warning("%s: %s", fn.__name__, e)
                raise pyfuse3.FUSEError(errno.ENOSPC) from None
            log.exception("%s%r failed", fn.__name__, args[:2])
            raise pyfuse3.FUSEError(errno.EIO) from None
        except BaseException as e:
            self.op_stats.add(name, clock() - started, True)
            if not isinstance(e, Exception):
                raise                     # cancellation, KeyboardInterrupt: not ours to turn
            log.exception("%s%r failed", fn.__name__, args[:2])
            raise pyfuse3.FUSEError(errno.EIO) from None
        self.op_stats.add(name, clock() - started, False)
        return result
    return wrapper


def _groups_of(pid: int) -> tuple[int, ...]:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Groups:"):
                    return tuple(int(g) for g in line.split()[1:])
    except OSError:
        pass
    return ()


def _comm_of(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().strip().decode(errors="replace")
    except OSError:
        return None


def _agent_of(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            for item in f.read().split(b"\0"):
                if item.startswith(b"NEXUS_AGENT="):
                    return item[12:].decode(errors="replace")
    except OSError:
        pass
    return None


class Operations(pyfuse3.Operations):
    enable_writeback_cache = True
    # the kernel enforces POSIX ACLs (read with getxattr of system.posix_acl_access; implies
    # default_permissions); relationship grants reach it as ACL entries (core/access.py)
    enable_acl = True

    def __init__(self, fs: FileSystem):
        super().__init__()
        self.fs = fs
        self.cfg = fs.cfg
        fs.kernel_cmtime = self.enable_writeback_cache
        self._callers: TTLCache = TTLCache(maxsize=4096, ttl=5.0)
        self.op_stats = OpStats()
        self.on_init = None              # called when the kernel's INIT request is handled
        fs.invalidate_hook = self._invalidate
        # (grants changed: attributes and ACLs only, cached pages stay)
        fs.invalidate_attrs_hook = lambda inodes: self._invalidate(inodes, (), attr_only=True)

    def init(self) -> None:
        """pyfuse3 calls this (on the trio thread) while it handles the kernel's INIT request:
        from here on the mount answers. Must not raise."""
        if self.on_init is not None:
            try:
                self.on_init()
            except Exception:
                log.exception("INIT hook failed")

    async def _invalidate(self, inodes, entries, attr_only: bool = False) -> None:
        """Drop the kernel's cached entries, attributes and pages of what changed behind its
        back. Never from the trio thread (the kernel may wait for a request we would then not
        answer): from a worker thread, while the loop keeps serving."""
        import trio

        def work():
            for parent, name in entries:
                try:
                    pyfuse3.invalidate_entry(parent, name)
                except OSError:
                    pass
            for ino in inodes:
                try:
                    pyfuse3.invalidate_inode(ino, attr_only=attr_only)
                except OSError:
                    pass

        await trio.to_thread.run_sync(work)

    # -- conversions --------------------------------------------------------------------------
    def _caller(self, ctx) -> Caller:
        """Who asks. /proc is read once per process and uid for a few seconds (groups, agent,
        name); the umask comes with each request (and is 0 on requests that have none, so it
        must not invalidate what was read)."""
        key = (ctx.pid, ctx.uid, ctx.gid)
        c = self._callers.get(key)
        if c is None:
            c = Caller(uid=ctx.uid, gid=ctx.gid, pid=ctx.pid, umask=ctx.umask,
                       groups=_groups_of(ctx.pid), agent=_agent_of(ctx.pid),
                       process=_comm_of(ctx.pid))
            self._callers[key] = c
        elif c.umask != ctx.umask:
            c = Caller(uid=c.uid, gid=c.gid, pid=c.pid, umask=ctx.umask, groups=c.groups,
                       agent=c.agent, process=c.process)
        return c

    def _ea(self, a: Attr) -> pyfuse3.EntryAttributes:
        e = pyfuse3.EntryAttributes()
        e.st_ino = a.ino
        e.generation = a.generation
        e.st_mode = a.mode
        e.st_nlink = a.nlink
        e.st_uid = a.uid
        e.st_gid = a.gid
        e.st_rdev = a.rdev
        e.st_size = a.size
        e.st_blksize = 65536
        e.st_blocks = a.blocks
        e.st_atime_ns = a.atime_ns
        e.st_mtime_ns = a.mtime_ns
        e.st_ctime_ns = a.ctime_ns
        if a.volatile:
            e.attr_timeout = e.entry_timeout = 0.0 if a.uncached else 1.0
        else:
            e.attr_timeout = self.cfg.attr_timeout
            e.entry_timeout = self.cfg.entry_timeout
        return e

    # -- handlers -----------------------------------------------------------------------------
    @_guard
    async def lookup(self, parent_inode, name, ctx):
        try:
            return self._ea(await self.fs.lookup(parent_inode, name, self._caller(ctx)))
        except FsError as e:
            if e.errno != errno.ENOENT or is_virtual(parent_inode):
                raise
        # a negative entry (inode 0): the kernel caches "no such name" until it creates one
        e = pyfuse3.EntryAttributes()
        e.st_ino = 0
        e.entry_timeout = self.cfg.entry_timeout
        return e

    @_guard
    async def forget(self, inode_list):
        self.fs.forget(inode_list)

    @_guard
    async def getattr(self, inode, ctx):
        return self._ea(await self.fs.getattr(inode, self._caller(ctx)))

    @_guard
    async def setattr(self, inode, attr, fields, fh, ctx):
        a = await self.fs.setattr(
            inode, self._caller(ctx),
            mode=attr.st_mode if fields.update_mode else None,
            uid=attr.st_uid if fields.update_uid else None,
            gid=attr.st_gid if fields.update_gid else None,
            size=attr.st_size if fields.update_size else None,
            atime_ns=attr.st_atime_ns if fields.update_atime else None,
            mtime_ns=attr.st_mtime_ns if fields.update_mtime else None,
            ctime_ns=attr.st_ctime_ns if fields.update_ctime else None,
            fh=fh)
        return self._ea(a)

    @_guard
    async def readlink(self, inode, ctx):
        return await self.fs.readlink(inode, self._caller(ctx))

    @_guard
    async def mknod(self, parent_inode, name, mode, rdev, ctx):
        return self._ea(await self.fs.mknod(parent_inode, name, mode, rdev, self._caller(ctx)))

    @_guard
    async def mkdir(self, parent_inode, name, mode, ctx):
        return self._ea(await self.fs.mkdir(parent_inode, name, mode, self._caller(ctx)))

    @_guard
    async def unlink(self, parent_inode, name, ctx):
        await self.fs.unlink(parent_inode, name, self._caller(ctx))

    @_guard
    async def rmdir(self, parent_inode, name, ctx):
        await self.fs.rmdir(parent_inode, name, self._caller(ctx))

    @_guard
    async def symlink(self, parent_inode, name, target, ctx):
        return self._ea(await self.fs.symlink(parent_inode, name, target, self._caller(ctx)))

    @_guard
    async def rename(self, parent_inode_old, name_old, parent_inode_new, name_new, flags, ctx):
        await self.fs.rename(parent_inode_old, name_old, parent_inode_new, name_new, flags,
                             self._caller(ctx))

    @_guard
    async def link(self, inode, new_parent_inode, new_name, ctx):
        return self._ea(await self.fs.link(inode, new_parent_inode, new_name, self._caller(ctx)))

    def _strip(self, flags: int) -> int:
        # with the writeback cache the kernel positions appends itself; O_APPEND here would
        # move its write-back of earlier pages to the end of the file
        return flags & ~os.O_APPEND if self.enable_writeback_cache else flags

    @_guard
    async def open(self, inode, flags, ctx):
        fh = await self.fs.open(inode, self._strip(flags), self._caller(ctx))
        if self.fs.direct_io.get(fh):
            return pyfuse3.FileInfo(fh=fh, direct_io=True, keep_cache=False)
        return pyfuse3.FileInfo(fh=fh, keep_cache=True)

    @_guard
    async def create(self, parent_inode, name, mode, flags, ctx):
        fh, attr = await self.fs.create(parent_inode, name, mode, self._strip(flags),
                                        self._caller(ctx))
        return pyfuse3.FileInfo(fh=fh, keep_cache=True), self._ea(attr)

    @_guard
    async def read(self, fh, off, size):
        return await self.fs.read(fh, off, size)

    @_guard
    async def write(self, fh, off, buf):
        return await self.fs.write(fh, off, buf)

    @_guard
    async def flush(self, fh):
        await self.fs.flush(fh)

    @_guard
    async def release(self, fh):
        await self.fs.release(fh)

    @_guard
    async def fsync(self, fh, datasync):
        await self.fs.fsync(fh, datasync)

    @_guard
    async def opendir(self, inode, ctx):
        return await self.fs.opendir(inode, self._caller(ctx))

    @_guard
    async def readdir(self, fh, start_id, token):
        while True:
            entries = await self.fs.readdir(fh, start_id)
            if not entries:
                return
            for entry in entries:
                if not pyfuse3.readdir_reply(token, entry.name, self._ea(entry.attr),
                                             entry.next_id):
                    return
                self.fs.entry_reported(entry)
                start_id = entry.next_id

    @_guard
    async def releasedir(self, fh):
        await self.fs.releasedir(fh)

    @_guard
    async def fsyncdir(self, fh, datasync):
        await self.fs.sync(durable=True)

    @_guard
    async def statfs(self, ctx):
        s = await self.fs.statfs(self._caller(ctx))
        d = pyfuse3.StatvfsData()
        d.f_bsize, d.f_frsize = s.bsize, s.frsize
        d.f_blocks, d.f_bfree, d.f_bavail = s.blocks, s.bfree, s.bavail
        d.f_files, d.f_ffree, d.f_favail = s.files, s.ffree, s.favail
        d.f_namemax = s.namemax
        return d

    @_guard
    async def setxattr(self, inode, name, value, ctx):
        await self.fs.setxattr(inode, name, value, self._caller(ctx))

    async def getxattr(self, inode, name, ctx):
        if name in UNSUPPORTED_XATTRS:      # (ls -l asks every name once, until told this)
            raise pyfuse3.FUSEError(errno.EOPNOTSUPP)
        rare = self.fs.rare_xattrs.get(name)
        if rare is not None and inode not in rare and not (
                name == ACL_ACCESS and (self.fs.access.active or is_virtual(inode))):
            # asked before every write(), by ls and by the kernel's ACL checks: answered here,
            # without the handler's cost (grants and virtual stand-ins go to the handler)
            raise pyfuse3.FUSEError(errno.ENODATA)
        if name == ACL_ACCESS and self.fs.access.active:
            # the kernel's ACL check after a listing or lookup: the effective ACL, when
            # already known, from the access cache (core/access.py known_acl)
            known = self.fs.access.known_acl(inode)
            if known is not None:
                if not known:
                    raise pyfuse3.FUSEError(errno.ENODATA)
                return known
        return await self._getxattr(inode, name, ctx)

    @_guard
    async def _getxattr(self, inode, name, ctx):
        return await self.fs.getxattr(inode, name, self._caller(ctx))

    @_guard
    async def listxattr(self, inode, ctx):
        return await self.fs.listxattr(inode, self._caller(ctx))

    @_guard
    async def removexattr(self, inode, name, ctx):
        await self.fs.removexattr(inode, name, self._caller(ctx))

    @_guard
    async def access(self, inode, mode, ctx):
        await self.fs.getattr(inode)


def init(ops: Operations, mountpoint: str, options: set[str]) -> None:
    pyfuse3.init(ops, mountpoint, options)


async def serve() -> None:
    await pyfuse3.main()


def terminate() -> None:
    pyfuse3.terminate()


def close(unmount: bool) -> None:
    pyfuse3.close(unmount=unmount)


def base_options(fsname: str) -> set[str]:
    return set(pyfuse3.default_options) | {f"fsname={fsname}", "subtype=nexusfs"}
