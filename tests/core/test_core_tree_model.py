"""Property test of the namespace: random mkdir/create/link/symlink/unlink/rmdir/rename(+flags)
sequences against an in-memory tree model; the tree, link counts and contents must match after
every step, after a restart, and fsck must stay clean."""
from __future__ import annotations

import errno
import stat as st
import tempfile
from pathlib import Path

import trio
from corelib import ROOT, fsck, make_file, read_file, start_fs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hst

from nexusfs import config
from nexusfs.core.fs import RENAME_EXCHANGE, RENAME_NOREPLACE
from nexusfs.types import ROOT_INO, FsError

NAMES = [b"a", b"b", b"c", b"d"]


class Model:
    def __init__(self):
        self.kind = {ROOT_INO: "dir"}
        self.children: dict[int, dict[bytes, int]] = {ROOT_INO: {}}
        self.parent = {ROOT_INO: ROOT_INO}
        self.data: dict[int, bytes] = {}

    def dirs(self) -> list[int]:
        return sorted(i for i, k in self.kind.items() if k == "dir")

    def files(self) -> list[int]:
        return sorted(i for i, k in self.kind.items() if k == "file")

    def links(self, ino: int) -> int:
        return sum(1 for c in self.children.values() for i in c.values() if i == ino)

    def nlink(self, ino: int) -> int:
        if self.kind[ino] == "dir":
            return 2 + sum(1 for i in self.children[ino].values() if self.kind[i] == "dir")
        return self.links(ino)

    def inside(self, ino: int, top: int) -> bool:
        """True if ``ino`` is ``top`` or below it."""
        while True:
            if ino == top:
                return True
            if ino == ROOT_INO:
                return False
            ino = self.parent[ino]

    def drop_if_unlinked(self, ino: int) -> None:
        if ino in self.kind and ino != ROOT_INO and self.links(ino) == 0:
            kind = self.kind.pop(ino)
            self.data.pop(ino, None)
            if kind == "dir":
                del self.children[ino]
                del self.parent[ino]


ops = hst.lists(
    hst.tuples(
        hst.sampled_from(["mkdir", "create", "create", "symlink", "link", "unlink", "rmdir",
                          "rename", "rename", "rename"]),
        hst.integers(0, 50), hst.sampled_from(NAMES),      # directory index, name
        hst.integers(0, 50), hst.sampled_from(NAMES),      # second directory / file, name
        hst.sampled_from([0, 0, RENAME_NOREPLACE, RENAME_EXCHANGE, 4]),
    ),
    min_size=1, max_size=30)


async def expect(call, errnos: set[int]) -> bool:
    """Run ``call``; True when it succeeded. With ``errnos``, it must fail with one of them."""
    try:
        await call
    except FsError as e:
        assert errnos, f"unexpected {e}"
        assert e.errno in errnos, f"{e} not in {sorted(errno.errorcode[x] for x in errnos)}"
        return False
    assert not errnos, f"succeeded, expected one of {sorted(errno.errorcode[x] for x in errnos)}"
    return True


async def step(fs, m: Model, op, counter: list[int]) -> None:
    kind, i, name, j, name2, flags = op
    dirs = m.dirs()
    parent = dirs[i % len(dirs)]
    parent2 = dirs[j % len(dirs)]
    existing = m.children[parent].get(name)
    if kind in ("mkdir", "create", "symlink"):
        errs = {errno.EEXIST} if existing is not None else set()
        if kind == "mkdir":
            call = fs.mkdir(parent, name, 0o755, ROOT)
        elif kind == "symlink":
            call = fs.symlink(parent, name, b"target-" + name, ROOT)
        else:
            counter[0] += 1
            data = bytes([counter[0] % 251]) * (counter[0] * 37 % 5000)
            if errs:
                await expect(fs.create(parent, name, 0o644, 0, ROOT), errs)
                return
            ino = await make_file(fs, name, data, parent=parent)
            m.kind[ino] = "file"
            m.data[ino] = data
            m.children[parent][name] = ino
            return
        try:
            attr = await call
        except FsError as e:
            assert errs and e.errno in errs, e
            return
        assert not errs
        fs.forget([(attr.ino, 1)])
        m.kind[attr.ino] = "dir" if kind == "mkdir" else "link"
        m.children[parent][name] = attr.ino
        if kind == "mkdir":
            m.children[attr.ino] = {}
            m.parent[attr.ino] = parent
    elif kind == "link":
        files = m.files()
        if not files:
            return
        target = files[j % len(files)]
        errs = {errno.EEXIST} if existing is not None else set()
        try:
            attr = await fs.link(target, parent, name, ROOT)
        except FsError as e:
            assert errs and e.errno in errs, e
            return
        assert not errs
        fs.forget([(attr.ino, 1)])
        m.children[parent][name] = target
    elif kind == "unlink":
        errs = set()
        if existing is None:
            errs.add(errno.ENOENT)
        elif m.kind[existing] == "dir":
            errs.add(errno.EISDIR)
        if await expect(fs.unlink(parent, name, ROOT), errs):
            del m.children[parent][name]
            m.drop_if_unlinked(existing)
    elif kind == "rmdir":
        errs = set()
        if existing is None:
            errs.add(errno.ENOENT)
        elif m.kind[existing] != "dir":
            errs.add(errno.ENOTDIR)
        elif m.children[existing]:
            errs.add(errno.ENOTEMPTY)
        if await expect(fs.rmdir(parent, name, ROOT), errs):
            del m.children[parent][name]
            m.drop_if_unlinked(existing)
    else:
        await rename(fs, m, parent, name, parent2, name2, flags)


async def rename(fs, m: Model, p1: int, n1: bytes, p2: int, n2: bytes, flags: int) -> None:
    src = m.children[p1].get(n1)
    dst = m.children[p2].get(n2)
    errs: set[int] = set()
    if flags not in (0, RENAME_NOREPLACE, RENAME_EXCHANGE):
        errs.add(errno.EINVAL)
    elif src is None:
        errs.add(errno.ENOENT)
    elif flags == RENAME_EXCHANGE:
        if dst is None:
            errs.add(errno.ENOENT)
        else:
            if m.kind[src] == "dir" and m.inside(p2, src):
                errs.add(errno.EINVAL)
            if m.kind[dst] == "dir" and m.inside(p1, dst):
                errs.add(errno.EINVAL)
    else:
        if dst is not None and flags == RENAME_NOREPLACE:
            errs.add(errno.EEXIST)
        elif dst is not None and dst != src:
            if m.kind[src] == "dir" and m.kind[dst] != "dir":
                errs.add(errno.ENOTDIR)
            if m.kind[src] != "dir" and m.kind[dst] == "dir":
                errs.add(errno.EISDIR)
            if m.kind[dst] == "dir" and m.children[dst]:
                errs.add(errno.ENOTEMPTY)
        if dst != src and m.kind[src] == "dir" and m.inside(p2, src):
            errs.add(errno.EINVAL)
    if not await expect(fs.rename(p1, n1, p2, n2, flags, ROOT), errs):
        return
    if flags == RENAME_EXCHANGE:
        m.children[p1][n1], m.children[p2][n2] = dst, src
        for ino, parent in ((src, p2), (dst, p1)):
            if m.kind[ino] == "dir":
                m.parent[ino] = parent
        return
    if dst == src:
        return                                        # two names of one inode: nothing happens
    del m.children[p1][n1]
    m.children[p2][n2] = src
    if m.kind[src] == "dir":
        m.parent[src] = p2
    if dst is not None:
        m.drop_if_unlinked(dst)


async def compare(fs, m: Model, contents: bool = False) -> None:
    for d in m.dirs():
        fh = await fs.opendir(d, ROOT)
        try:
            entries = [e for e in await fs.readdir(fh, 0, 10_000) if e.name not in (b".", b"..")]
        finally:
            await fs.releasedir(fh)
        got = {e.name: e.attr.ino for e in entries}
        assert got == m.children[d], f"directory {d}"
        for e in entries:
            ino = e.attr.ino
            assert e.attr.nlink == m.nlink(ino), f"nlink of {ino}"
            kind = {"dir": st.S_ISDIR, "file": st.S_ISREG, "link": st.S_ISLNK}[m.kind[ino]]
            assert kind(e.attr.mode)
        parent = await fs.lookup(d, b"..", ROOT)
        fs.forget([(parent.ino, 1)])
        assert parent.ino == m.parent[d]
    assert (await fs.getattr(ROOT_INO)).nlink == m.nlink(ROOT_INO)
    if contents:
        for ino in m.files():
            assert await read_file(fs, ino) == m.data[ino]
    assert not fs.lookups, "a test step leaked a kernel reference"


async def run(data_dir: Path, sequence) -> None:
    cfg = config.load(data_dir, chunk_min=1024, chunk_avg=4096, chunk_max=16384, inline_max=2048)
    m = Model()
    counter = [0]
    fs = start_fs(cfg)
    try:
        for n, op in enumerate(sequence):
            await step(fs, m, op, counter)
            await compare(fs, m)
            if n % 10 == 9:
                await fs.sync(durable=False)
        await compare(fs, m, contents=True)
    finally:
        await fs.close()
    assert fsck(cfg) == []
    fs = start_fs(cfg)
    try:
        await compare(fs, m, contents=True)
    finally:
        await fs.close()
    assert fsck(cfg) == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_namespace_matches_model(sequence):
    with tempfile.TemporaryDirectory() as tmp:
        trio.run(run, Path(tmp) / "data", sequence)
