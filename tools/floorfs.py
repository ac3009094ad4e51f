#!/usr/bin/env python3
"""floorfs: the cheapest pyfuse3 + trio file system we can write, to measure the floor.

A measuring instrument for tools/bench --floor, NOT part of nexusfs. It stores nothing:
every inode, name and byte lives in this process's memory (file contents in bytearrays) and
is gone when it unmounts. What it shows is the price of FUSE itself as nexusfs runs it -- the
kernel round trip, libfuse, pyfuse3's Cython glue, trio's scheduling and one Python coroutine
per request -- so that a benchmark can say which part of a slowdown any pyfuse3 file system
pays and which part is nexusfs's own work. (For the 1 GiB sequential workloads it therefore
measures the FUSE transfer floor: memcpy into a bytearray, no disk.)

It mounts with the settings nexusfs uses (nexusfs/fuse_ops.py, nexusfs/config.py):
pyfuse3.default_options plus fsname/subtype, no allow_other, the writeback cache, POSIX ACL
support (the kernel then checks permissions itself, default_permissions), 300 s attribute
and entry timeouts, negative lookups cached, readdirplus entries with "." and "..", and the
kernel's read-ahead raised to 1024 KiB on the mount (nexusfs's readahead_kb).

    python tools/floorfs.py MOUNTPOINT [--stats FILE] [--readahead-kb N]

Runs in the foreground; prints "ready" on stdout (flushed) once the kernel's INIT request is
answered, i.e. the mount serves. Unmount with ``fusermount3 -u MOUNTPOINT``; SIGTERM and
SIGINT unmount too. With --stats, SIGUSR1 writes {op: requests served} as JSON to FILE.

Concurrency: one trio thread; no handler awaits anything, so each request runs to its end
before the next starts and the tables need no locks.
"""
from __future__ import annotations

import argparse
import errno
import functools
import json
import os
import re
import signal
import stat
import sys
import time
from bisect import bisect_right

import pyfuse3
import trio

ROOT = pyfuse3.ROOT_INODE
TIMEOUT = 300.0                      # nexusfs's attr_timeout and entry_timeout defaults
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2


def err(code: int) -> pyfuse3.FUSEError:
    return pyfuse3.FUSEError(code)


class Node:
    __slots__ = ("ino", "mode", "nlink", "uid", "gid", "rdev", "atime", "mtime", "ctime",
                 "data", "target", "parent", "children", "cookie", "cookies", "names",
                 "next_cookie", "xattrs", "lookups", "opens")

    def __init__(self, ino: int, mode: int, uid: int, gid: int, rdev: int = 0):
        now = time.time_ns()
        self.ino, self.mode, self.uid, self.gid, self.rdev = ino, mode, uid, gid, rdev
        self.atime = self.mtime = self.ctime = now
        self.nlink = 1
        self.data = bytearray() if stat.S_ISREG(mode) else None
        self.target = b""
        self.xattrs: dict[bytes, bytes] = {}
        self.lookups = self.opens = 0
        self.parent = 0
        if stat.S_ISDIR(mode):
            self.nlink = 2
            self.children: dict[bytes, int] = {}     # name -> inode
            self.cookie: dict[bytes, int] = {}       # name -> readdir cookie (3, 4, ...)
            self.cookies: list[int] = []             # append-only, sorted; stale ones skipped
            self.names: list[bytes] = []
            self.next_cookie = 3

    @property
    def size(self) -> int:
        if self.data is not None:
            return len(self.data)
        if stat.S_ISLNK(self.mode):
            return len(self.target)
        return 0

    # directory entries: cookies only grow, so a listing resumes after the last entry it
    # returned even while entries are removed (rm -rf) or added meanwhile
    def add(self, name: bytes, ino: int) -> None:
        c = self.next_cookie
        self.next_cookie += 1
        self.children[name] = ino
        self.cookie[name] = c
        self.cookies.append(c)
        self.names.append(name)

    def remove(self, name: bytes) -> None:
        del self.children[name]
        del self.cookie[name]
        if len(self.cookies) > 64 + 2 * len(self.children):
            live = [(c, n) for c, n in zip(self.cookies, self.names) if self.cookie.get(n) == c]
            self.cookies = [c for c, _ in live]
            self.names = [n for _, n in live]

    def after(self, start: int):
        """(cookie, name, inode) of the entries after cookie ``start``, in order."""
        cookies, names, cookie, children = self.cookies, self.names, self.cookie, self.children
        for i in range(bisect_right(cookies, start), len(cookies)):
            c, name = cookies[i], names[i]
            if cookie.get(name) == c:
                yield c, name, children[name]


def counted(fn):
    name = fn.__name__

    @functools.wraps(fn)
    async def wrapper(self, *args):
        self.counts[name] = self.counts.get(name, 0) + 1
        return await fn(self, *args)
    return wrapper


class FloorOps(pyfuse3.Operations):
    enable_writeback_cache = True
    enable_acl = True

    def __init__(self, mountpoint: str, readahead_kb: int = 1024):
        super().__init__()
        self.mountpoint = os.path.realpath(mountpoint)
        self.readahead_kb = readahead_kb
        root = Node(ROOT, stat.S_IFDIR | 0o755, os.getuid(), os.getgid())
        root.parent = ROOT
        self.nodes: dict[int, Node] = {ROOT: root}
        self.next_ino = ROOT + 1
        self.handles: dict[int, Node] = {}
        self.next_fh = 1
        self.counts: dict[str, int] = {}
        self.inited = trio.Event()

    def init(self):
        self.inited.set()               # serve() finishes the mount once INIT is answered

    def raise_readahead(self) -> None:
        """As nexusfs does after INIT (the kernel sets the window from INIT's reply, so not
        before): the mount's read-ahead window, through sysfs; best effort."""
        try:
            with open("/proc/self/mountinfo") as f:
                for line in f:
                    fields = line.split()
                    point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
                    if point == self.mountpoint:
                        with open(f"/sys/class/bdi/{fields[2]}/read_ahead_kb", "w") as ra:
                            ra.write(str(self.readahead_kb))
                        return
        except OSError as e:
            print(f"floorfs: read-ahead left as is: {e}", file=sys.stderr)

    # -- helpers ------------------------------------------------------------------------------
    def node(self, ino: int) -> Node:
        n = self.nodes.get(ino)
        if n is None:
            raise err(errno.ENOENT)
        return n

    def dir(self, ino: int) -> Node:
        n = self.node(ino)
        if not stat.S_ISDIR(n.mode):
            raise err(errno.ENOTDIR)
        return n

    def ea(self, n: Node) -> pyfuse3.EntryAttributes:
        e = pyfuse3.EntryAttributes()
        e.st_ino = n.ino
        e.st_mode = n.mode
        e.st_nlink = n.nlink
        e.st_uid, e.st_gid, e.st_rdev = n.uid, n.gid, n.rdev
        e.st_size = size = n.size
        e.st_blksize = 65536
        e.st_blocks = (size + 511) // 512
        e.st_atime_ns, e.st_mtime_ns, e.st_ctime_ns = n.atime, n.mtime, n.ctime
        e.attr_timeout = e.entry_timeout = TIMEOUT
        return e

    def looked_up(self, n: Node) -> pyfuse3.EntryAttributes:
        n.lookups += 1
        return self.ea(n)

    def maybe_free(self, n: Node) -> None:
        if n.nlink <= 0 and n.lookups <= 0 and n.opens <= 0:
            self.nodes.pop(n.ino, None)

    def touch(self, n: Node) -> None:
        n.mtime = n.ctime = time.time_ns()

    def new(self, parent: int, name: bytes, mode: int, ctx, rdev: int = 0) -> Node:
        d = self.dir(parent)
        if name in d.children:
            raise err(errno.EEXIST)
        gid = d.gid if d.mode & stat.S_ISGID else ctx.gid
        if stat.S_ISDIR(mode) and d.mode & stat.S_ISGID:
            mode |= stat.S_ISGID
        n = Node(self.next_ino, mode, ctx.uid, gid, rdev)
        self.next_ino += 1
        self.nodes[n.ino] = n
        d.add(name, n.ino)
        if stat.S_ISDIR(mode):
            n.parent = d.ino
            d.nlink += 1
        self.touch(d)
        return n

    def open_fh(self, n: Node) -> int:
        fh = self.next_fh
        self.next_fh += 1
        self.handles[fh] = n
        n.opens += 1
        return fh

    # -- names --------------------------------------------------------------------------------
    @counted
    async def lookup(self, parent_inode, name, ctx):
        d = self.dir(parent_inode)
        if name == b".":
            return self.looked_up(d)
        if name == b"..":
            return self.looked_up(self.node(d.parent))
        ino = d.children.get(name)
        if ino is None:
            e = pyfuse3.EntryAttributes()        # negative entry, cached like nexusfs does
            e.st_ino = 0
            e.entry_timeout = TIMEOUT
            return e
        return self.looked_up(self.nodes[ino])

    @counted
    async def forget(self, inode_list):
        for ino, nlookup in inode_list:
            n = self.nodes.get(ino)
            if n is not None and ino != ROOT:
                n.lookups -= nlookup
                self.maybe_free(n)

    @counted
    async def getattr(self, inode, ctx):
        return self.ea(self.node(inode))

    @counted
    async def setattr(self, inode, attr, fields, fh, ctx):
        n = self.node(inode)
        if fields.update_size:
            if n.data is None:
                raise err(errno.EINVAL)
            size = attr.st_size
            if size < len(n.data):
                del n.data[size:]
            else:
                n.data.extend(bytes(size - len(n.data)))
            n.mtime = time.time_ns()
        if fields.update_mode:
            n.mode = stat.S_IFMT(n.mode) | stat.S_IMODE(attr.st_mode)
        if fields.update_uid:
            n.uid = attr.st_uid
        if fields.update_gid:
            n.gid = attr.st_gid
        if fields.update_atime:          # pyfuse3 turns UTIME_NOW into the current time;
            n.atime = attr.st_atime_ns   # UTIME_OMIT never gets here (the field is not set)
        if fields.update_mtime:
            n.mtime = attr.st_mtime_ns
        n.ctime = attr.st_ctime_ns if fields.update_ctime else time.time_ns()
        return self.ea(n)

    @counted
    async def mknod(self, parent_inode, name, mode, rdev, ctx):
        return self.looked_up(self.new(parent_inode, name, mode, ctx, rdev))

    @counted
    async def mkdir(self, parent_inode, name, mode, ctx):
        return self.looked_up(self.new(parent_inode, name, stat.S_IFDIR | stat.S_IMODE(mode), ctx))

    @counted
    async def symlink(self, parent_inode, name, target, ctx):
        n = self.new(parent_inode, name, stat.S_IFLNK | 0o777, ctx)
        n.target = bytes(target)
        return self.looked_up(n)

    @counted
    async def readlink(self, inode, ctx):
        n = self.node(inode)
        if not stat.S_ISLNK(n.mode):
            raise err(errno.EINVAL)
        return n.target

    @counted
    async def link(self, inode, new_parent_inode, new_name, ctx):
        n = self.node(inode)
        d = self.dir(new_parent_inode)
        if new_name in d.children:
            raise err(errno.EEXIST)
        d.add(new_name, n.ino)
        n.nlink += 1
        n.ctime = time.time_ns()
        self.touch(d)
        return self.looked_up(n)

    def drop_name(self, d: Node, name: bytes) -> None:
        n = self.nodes[d.children[name]]
        d.remove(name)
        if stat.S_ISDIR(n.mode):
            d.nlink -= 1
            n.nlink = 0
        else:
            n.nlink -= 1
        n.ctime = time.time_ns()
        self.touch(d)
        self.maybe_free(n)

    @counted
    async def unlink(self, parent_inode, name, ctx):
        d = self.dir(parent_inode)
        ino = d.children.get(name)
        if ino is None:
            raise err(errno.ENOENT)
        if stat.S_ISDIR(self.nodes[ino].mode):
            raise err(errno.EISDIR)
        self.drop_name(d, name)

    @counted
    async def rmdir(self, parent_inode, name, ctx):
        d = self.dir(parent_inode)
        ino = d.children.get(name)
        if ino is None:
            raise err(errno.ENOENT)
        n = self.nodes[ino]
        if not stat.S_ISDIR(n.mode):
            raise err(errno.ENOTDIR)
        if n.children:
            raise err(errno.ENOTEMPTY)
        self.drop_name(d, name)

    @counted
    async def rename(self, parent_inode_old, name_old, parent_inode_new, name_new, flags, ctx):
        old, new = self.dir(parent_inode_old), self.dir(parent_inode_new)
        ino = old.children.get(name_old)
        if ino is None:
            raise err(errno.ENOENT)
        n = self.nodes[ino]
        other = new.children.get(name_new)
        if flags & RENAME_EXCHANGE:
            if other is None:
                raise err(errno.ENOENT)
            o = self.nodes[other]
            old.children[name_old], new.children[name_new] = other, ino
            for moved, src, dst in ((n, old, new), (o, new, old)):
                if stat.S_ISDIR(moved.mode) and src is not dst:
                    moved.parent = dst.ino
                    src.nlink -= 1
                    dst.nlink += 1
                moved.ctime = time.time_ns()
            self.touch(old)
            self.touch(new)
            return
        if other == ino:
            return                       # two names of one inode: nothing to do
        if other is not None:
            if flags & RENAME_NOREPLACE:
                raise err(errno.EEXIST)
            o = self.nodes[other]
            if stat.S_ISDIR(o.mode):
                if not stat.S_ISDIR(n.mode):
                    raise err(errno.EISDIR)
                if o.children:
                    raise err(errno.ENOTEMPTY)
            elif stat.S_ISDIR(n.mode):
                raise err(errno.ENOTDIR)
            self.drop_name(new, name_new)
        old.remove(name_old)
        new.add(name_new, ino)
        if stat.S_ISDIR(n.mode) and old is not new:
            n.parent = new.ino
            old.nlink -= 1
            new.nlink += 1
        n.ctime = time.time_ns()
        self.touch(old)
        self.touch(new)

    # -- files --------------------------------------------------------------------------------
    @counted
    async def open(self, inode, flags, ctx):
        n = self.node(inode)
        if flags & os.O_TRUNC and n.data is not None:
            del n.data[:]
        return pyfuse3.FileInfo(fh=self.open_fh(n), keep_cache=True)

    @counted
    async def create(self, parent_inode, name, mode, flags, ctx):
        n = self.new(parent_inode, name, stat.S_IFREG | stat.S_IMODE(mode), ctx)
        return pyfuse3.FileInfo(fh=self.open_fh(n), keep_cache=True), self.looked_up(n)

    @counted
    async def read(self, fh, off, size):
        return bytes(self.handles[fh].data[off:off + size])

    @counted
    async def write(self, fh, off, buf):
        data = self.handles[fh].data
        if off > len(data):
            data.extend(bytes(off - len(data)))
        data[off:off + len(buf)] = buf
        return len(buf)

    @counted
    async def flush(self, fh):
        pass

    @counted
    async def fsync(self, fh, datasync):
        pass

    @counted
    async def release(self, fh):
        n = self.handles.pop(fh)
        n.opens -= 1
        self.maybe_free(n)

    # -- directories --------------------------------------------------------------------------
    @counted
    async def opendir(self, inode, ctx):
        return self.open_fh(self.dir(inode))

    @counted
    async def readdir(self, fh, start_id, token):
        d = self.handles[fh]
        if start_id < 1:
            if not pyfuse3.readdir_reply(token, b".", self.ea(d), 1):
                return
        if start_id < 2:
            parent = self.nodes.get(d.parent, d)
            if not pyfuse3.readdir_reply(token, b"..", self.ea(parent), 2):
                return
        for cookie, name, ino in d.after(start_id):
            n = self.nodes[ino]
            if not pyfuse3.readdir_reply(token, name, self.ea(n), cookie):
                return
            n.lookups += 1                  # readdirplus: the kernel holds a lookup now

    @counted
    async def releasedir(self, fh):
        n = self.handles.pop(fh)
        n.opens -= 1
        self.maybe_free(n)

    @counted
    async def fsyncdir(self, fh, datasync):
        pass

    @counted
    async def statfs(self, ctx):
        s = pyfuse3.StatvfsData()
        s.f_bsize = s.f_frsize = 4096
        s.f_blocks = s.f_bfree = s.f_bavail = 1 << 28          # 1 TiB, all free
        s.f_files = s.f_ffree = s.f_favail = 1 << 24
        s.f_namemax = 255
        return s

    @counted
    async def access(self, inode, mode, ctx):
        self.node(inode)

    # -- extended attributes ------------------------------------------------------------------
    @counted
    async def getxattr(self, inode, name, ctx):
        v = self.node(inode).xattrs.get(name)
        if v is None:
            raise err(errno.ENODATA)
        return v

    @counted
    async def listxattr(self, inode, ctx):
        return list(self.node(inode).xattrs)

    @counted
    async def setxattr(self, inode, name, value, ctx):
        n = self.node(inode)
        n.xattrs[name] = bytes(value)
        n.ctime = time.time_ns()

    @counted
    async def removexattr(self, inode, name, ctx):
        n = self.node(inode)
        if n.xattrs.pop(name, None) is None:
            raise err(errno.ENODATA)
        n.ctime = time.time_ns()


async def serve(ops: FloorOps, stats_file: str | None) -> None:
    async def signals():
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGUSR1) as sigs:
            async for signum in sigs:
                if signum == signal.SIGUSR1:
                    if stats_file:
                        tmp = stats_file + ".tmp"
                        with open(tmp, "w") as f:
                            json.dump(ops.counts, f)
                        os.replace(tmp, stats_file)
                    continue
                pyfuse3.terminate()
                return

    async def ready():
        await ops.inited.wait()
        ops.raise_readahead()
        print("ready", flush=True)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(signals)
        nursery.start_soon(ready)
        await pyfuse3.main()
        nursery.cancel_scope.cancel()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mountpoint")
    p.add_argument("--stats", metavar="FILE", help="on SIGUSR1, write request counts here")
    p.add_argument("--readahead-kb", type=int, default=1024,
                   help="the mount's read-ahead window (default 1024, as nexusfs)")
    args = p.parse_args(argv)
    ops = FloorOps(args.mountpoint, args.readahead_kb)
    options = set(pyfuse3.default_options) | {"fsname=floorfs", "subtype=floorfs"}
    try:
        pyfuse3.init(ops, args.mountpoint, options)
    except RuntimeError as e:
        print(f"floorfs: cannot mount {args.mountpoint}: {e}", file=sys.stderr)
        return 1
    try:
        trio.run(serve, ops, args.stats)
    except BaseException:
        pyfuse3.close(unmount=True)
        raise
    pyfuse3.close(unmount=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
