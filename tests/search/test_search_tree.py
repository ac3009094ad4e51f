"""/.nexus/search/QUERY/ without a mount: lookups run the query for the caller, the directory
holds results.txt and relative symlinks, bad names are the right errno."""
from __future__ import annotations

import errno

import pytest
from corelib import ROOT, USER
from searchlib import put

from nexusfs.core.searchtree import link_name
from nexusfs.core.vtree import NEXUS, SEARCH
from nexusfs.types import ROOT_INO, FsError


async def listing(fs, qvino, caller):
    fh = await fs.opendir(qvino, caller)
    entries = await fs.readdir(fh, 0)
    await fs.releasedir(fh)
    return {e.name: e.attr for e in entries}


async def read_all(fs, vino, caller):
    fh = await fs.open(vino, 0, caller)
    data = await fs.read(fh, 0, 1 << 20)
    await fs.release(fh)
    return data


async def test_query_directory(fs):
    await put(fs, "/src/auth.py", b"x = 1\n# token refresh here\n")
    await put(fs, "/docs/notes.txt", b"token refresh notes\n")
    await put(fs, "/other.txt", b"unrelated\n")
    nexus = await fs.lookup(ROOT_INO, b".nexus", ROOT)
    assert nexus.ino == NEXUS
    search = await fs.lookup(NEXUS, b"search", ROOT)
    assert search.ino == SEARCH
    q = await fs.lookup(SEARCH, b"token refresh", ROOT)
    names = await listing(fs, q.ino, ROOT)
    assert set(names) == {b"results.txt", b"src%2Fauth.py", b"docs%2Fnotes.txt"}
    link = await fs.lookup(q.ino, b"src%2Fauth.py", ROOT)
    assert await fs.readlink(link.ino) == b"../../../src/auth.py"
    text = (await read_all(fs, (await fs.lookup(q.ino, b"results.txt", ROOT)).ino, ROOT)).decode()
    assert "/src/auth.py:2: # token refresh here\n" in text
    assert "/docs/notes.txt:1: token refresh notes\n" in text
    # a rename and a delete show at the next lookup
    src = fs.meta.lookup(ROOT_INO, b"src")
    await fs.rename(src, b"auth.py", ROOT_INO, b"moved.py", 0, ROOT)
    await fs.unlink(fs.meta.lookup(ROOT_INO, b"docs"), b"notes.txt", ROOT)
    q = await fs.lookup(SEARCH, b"token refresh", ROOT)
    assert set(await listing(fs, q.ino, ROOT)) == {b"results.txt", b"moved.py"}
    with pytest.raises(FsError) as e:
        await fs.lookup(q.ino, b"src%2Fauth.py", ROOT)
    assert e.value.errno == errno.ENOENT


async def test_per_caller_and_bad_names(fs):
    await put(fs, "/mine.txt", b"shared word\n", caller=USER)
    await put(fs, "/root.txt", b"shared word\n")
    await fs.setattr(fs.meta.lookup(ROOT_INO, b"root.txt"), ROOT, mode=0o600)
    q = await fs.lookup(SEARCH, b"shared", USER)
    assert set(await listing(fs, q.ino, USER)) == {b"results.txt", b"mine.txt"}
    assert set(await listing(fs, q.ino, ROOT)) == {b"results.txt", b"mine.txt", b"root.txt"}
    text = await read_all(fs, (await fs.lookup(q.ino, b"results.txt", USER)).ino, USER)
    assert b"root.txt" not in text
    for name, code in ((b"x" * 256, errno.ENAMETOOLONG), (b'"open', errno.EINVAL),
                       (b"...", errno.EINVAL)):
        with pytest.raises(FsError) as e:
            await fs.lookup(SEARCH, name, ROOT)
        assert e.value.errno == code
    for name in (b"\xff\xfe bytes", b"a%2Fb", b"x" * 255, "caf\u00e9".encode(), b"NOT"):
        try:
            await fs.lookup(SEARCH, name, ROOT)
        except FsError as e:
            assert e.errno == errno.EINVAL
    q = await fs.lookup(SEARCH, b"nothing%2Fmatches", ROOT)
    assert set(await listing(fs, q.ino, ROOT)) == {b"results.txt"}


def test_link_names():
    assert link_name("/a/b%c.txt") == b"a%2Fb%25c.txt"
    long = link_name("/" + "d/" * 200 + "f")
    assert len(long) == 255
