"""The access caches (core/access.py: effective ACLs per shape, anchors, grant bits per anchor,
ACL values read once per listing) never show a stale answer: after each change that can alter
access, every entry of a listing, getattr and the ACL xattr agree with a reference computed
here from first principles (the grants on each inode and every directory above any of its
names, team expansion, and the POSIX.1e composition of docs/access.md), with no cache."""
from __future__ import annotations

import grp
import os
import pwd
import stat as st
import time

import pytest
from corelib import ROOT, make_file, mkdir

from nexusfs.access import acl as A
from nexusfs.access import rebac as R
from nexusfs.control.commands import execute
from nexusfs.history.service import HistoryService
from nexusfs.types import ROOT_INO, Caller, FsError

E = A.Entry
HOUR = 3600 * 10**9


def user(name: str) -> Caller:
    pw = pwd.getpwnam(name)
    return Caller(uid=pw.pw_uid, gid=pw.pw_gid, pid=100 + pw.pw_uid)


ALICE, BOB = user("alice"), user("bob")
ENG = grp.getgrnam("eng").gr_gid


def acl(*entries: E) -> bytes:
    return A.encode(tuple(entries))


async def run(svc, line: str, caller: Caller = ROOT):
    return (await execute(svc, line, caller)).data


# -- the reference ------------------------------------------------------------------------------
def grants_above(fs, ino: int) -> list:
    out = list(fs.access.by_obj.get(ino, ()))
    if ino != ROOT_INO:
        for parent, _name in fs.meta.names(ino):
            out += grants_above(fs, parent)
    return out


def reference(fs, ino: int) -> tuple[int, A.Acl | None]:
    """(mode shown, effective access ACL) of a real inode, computed without any cache."""
    attr = fs.meta.get_attr(ino)
    value = fs.meta.get_xattr(ino, A.ACL_ACCESS)
    stored = A.decode(value) if value else None
    grants: dict[tuple[int, int], int] = {}
    for t in grants_above(fs, ino):
        subjects = ([s for s, _c in fs.access.graph.expand(t.subject.id)]
                    if t.subject.kind == "team" else [t.subject])
        for s in subjects:
            key = (A.USER if s.kind == "user" else A.GROUP, int(s.id))
            grants[key] = grants.get(key, 0) | R.perms(t.relation, st.S_ISDIR(attr.mode),
                                                         attr.mode)
    base = stored or A.from_mode(attr.mode)
    named = {(e.tag, e.id) for e in base if e.tag in (A.USER, A.GROUP)}
    extra = {k: b for k, b in grants.items()
             if k not in named and k != (A.USER, attr.uid)}
    if not extra:
        eff = stored
    else:
        old = (A.get(base, A.MASK) or A.get(base, A.GROUP_OBJ)).perm
        eff = [E(e.tag, e.perm & old, e.id) if e.tag in (A.GROUP_OBJ, A.USER, A.GROUP) else e
               for e in base if e.tag != A.MASK]
        eff += [E(tag, b, qid) for (tag, qid), b in extra.items()]
        eff.append(E(A.MASK, old | _or(extra.values())))
        eff = tuple(sorted(eff, key=lambda e: (e.tag, e.id if e.tag in (A.USER, A.GROUP) else 0)))
    mode = attr.mode
    if eff is not None and fs.access.active:
        mask = A.get(eff, A.MASK) or A.get(eff, A.GROUP_OBJ)
        mode = (mode & ~0o070) | (mask.perm << 3)
    return mode, eff


def _or(values) -> int:
    out = 0
    for v in values:
        out |= v
    return out


async def listing(fs, d: int) -> dict[bytes, int]:
    fh = await fs.opendir(d, ROOT)
    out, start = {}, 0
    while True:
        entries = await fs.readdir(fh, start)
        if not entries:
            break
        for e in entries:
            out[e.name] = (e.attr.ino, e.attr.mode)
            start = e.next_id
    await fs.releasedir(fh)
    return out


async def agree(fs, *dirs: int) -> None:
    """Every entry of these directories (and the directories themselves): what a listing,
    getattr and getxattr show (and the ACL the kernel's reads get from memory, when known)
    is what the reference says."""
    for d in dirs:
        for _id, name, attr in fs.meta.list_dir(d, -1, 100000):      # before a new listing
            want_acl = reference(fs, attr.ino)[1]
            known = fs.access.known_acl(attr.ino)
            assert known is None or known == (A.encode(want_acl) if want_acl else b""), name
        for name, (ino, mode) in (await listing(fs, d)).items():
            want_mode, want_acl = reference(fs, ino)
            assert mode == want_mode, (name, oct(mode), oct(want_mode))
            assert (await fs.getattr(ino, ROOT)).mode == want_mode, name
            try:
                got = A.decode(await fs.getxattr(ino, A.ACL_ACCESS, ROOT))
            except FsError:
                got = None
            assert got == want_acl, name
            known = fs.access.known_acl(ino)
            assert known is None or known == (A.encode(want_acl) if want_acl else b""), name


@pytest.fixture
def svc(fs):
    return HistoryService(fs)


@pytest.fixture
async def tree(fs):
    """/p (granted later) with /p/f, /p/h, /p/sub/g; /q (not granted) with /q/k; all 0750 /
    0640, group eng; /p/f and /q/k carry the same named-user ACL, /p/h another."""
    p = await mkdir(fs, ROOT_INO, b"p", 0o750)
    sub = await mkdir(fs, p, b"sub", 0o750)
    q = await mkdir(fs, ROOT_INO, b"q", 0o750)
    ino = {"p": p, "sub": sub, "q": q}
    for name, parent in ((b"f", p), (b"h", p), (b"g", sub), (b"k", q)):
        ino[name.decode()] = await make_file(fs, name, b"data\n", parent=parent)
    for i in ino.values():
        await fs.setattr(i, ROOT, gid=ENG)
    for name in ("f", "h", "g", "k"):
        await fs.setattr(ino[name], ROOT, mode=0o640)
    carol = pwd.getpwnam("carol").pw_uid
    same = acl(E(A.USER_OBJ, 6), E(A.USER, 4, carol), E(A.GROUP_OBJ, 4), E(A.MASK, 4),
               E(A.OTHER, 0))
    await fs.setxattr(ino["f"], A.ACL_ACCESS, same, ROOT)
    await fs.setxattr(ino["k"], A.ACL_ACCESS, same, ROOT)
    await fs.setxattr(ino["h"], A.ACL_ACCESS, acl(E(A.USER_OBJ, 6), E(A.USER, 0, ALICE.uid),
                                                  E(A.GROUP_OBJ, 4), E(A.MASK, 4),
                                                  E(A.OTHER, 0)), ROOT)
    return ino


# -- grants made, deleted, expired --------------------------------------------------------------
async def test_grant_create_and_delete_reach_listings(fs, svc, tree):
    await agree(fs, ROOT_INO, tree["p"], tree["sub"], tree["q"])
    g = await run(svc, "rebac create user:alice editor-of /p")
    await agree(fs, ROOT_INO, tree["p"], tree["sub"], tree["q"])
    assert st.S_IMODE((await listing(fs, tree["sub"]))[b"g"][1]) == 0o660     # widened
    assert st.S_IMODE((await listing(fs, tree["p"]))[b"h"][1]) == 0o640       # alice: explicit
    await run(svc, "rebac create user:bob viewer-of /p/sub")
    await agree(fs, tree["p"], tree["sub"])
    await run(svc, f"rebac delete {g['id']}")
    await agree(fs, ROOT_INO, tree["p"], tree["sub"], tree["q"])
    assert st.S_IMODE((await listing(fs, tree["p"]))[b"f"][1]) == 0o640


async def test_team_membership_changes_reach_listings(fs, svc, tree):
    await run(svc, "rebac create team:x editor-of /p")
    await agree(fs, tree["p"], tree["sub"])
    await run(svc, "rebac create user:bob member-of team:x")
    await agree(fs, tree["p"], tree["sub"])
    assert st.S_IMODE((await listing(fs, tree["p"]))[b"f"][1]) == 0o660
    await run(svc, "rebac delete user:bob member-of team:x")
    await agree(fs, tree["p"], tree["sub"])


async def test_expiry_reaches_listings(fs, svc, tree):
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    await run(svc, f"rebac create user:alice editor-of /p --expires {until}")
    await run(svc, "rebac create user:bob viewer-of /p")
    await agree(fs, tree["p"], tree["sub"])
    assert fs.access.tick(time.time_ns() + 2 * HOUR)
    await agree(fs, tree["p"], tree["sub"])
    assert st.S_IMODE((await listing(fs, tree["p"]))[b"h"][1]) == 0o640       # bob: r only


# -- the inode changes ------------------------------------------------------------------------
async def test_chmod_chown_and_setfacl_reach_listings(fs, svc, tree):
    await run(svc, "rebac create user:bob viewer-of /p")
    await agree(fs, tree["p"])
    await fs.setattr(tree["f"], ROOT, mode=0o600)                  # mask --- : bob widens it
    await agree(fs, tree["p"], tree["q"])
    assert st.S_IMODE((await listing(fs, tree["p"]))[b"f"][1]) == 0o640
    await fs.setattr(tree["f"], ROOT, uid=BOB.uid)                 # bob owns it: no entry
    await agree(fs, tree["p"])
    assert st.S_IMODE((await listing(fs, tree["p"]))[b"f"][1]) == 0o600
    await fs.setattr(tree["f"], ROOT, uid=0)
    await fs.setxattr(tree["f"], A.ACL_ACCESS, acl(E(A.USER_OBJ, 6), E(A.USER, 0, BOB.uid),
                                                  E(A.GROUP_OBJ, 0), E(A.MASK, 0),
                                                  E(A.OTHER, 0)), ROOT)     # explicit: wins
    await agree(fs, tree["p"], tree["q"])
    assert st.S_IMODE((await listing(fs, tree["p"]))[b"f"][1]) == 0o600
    await fs.removexattr(tree["f"], A.ACL_ACCESS, ROOT)
    await agree(fs, tree["p"], tree["q"])
    await fs.setattr(tree["f"], ROOT, mode=0o604)                  # x bits: none, r for all
    await fs.setattr(tree["g"], ROOT, mode=0o750)                  # an x bit: grants get x
    await agree(fs, tree["p"], tree["sub"])


async def test_a_file_moved_in_or_out_of_a_granted_directory(fs, svc, tree):
    await run(svc, "rebac create user:alice editor-of /p")
    await agree(fs, tree["p"], tree["q"])                          # answers cached
    await fs.rename(tree["q"], b"k", tree["p"], b"k", 0, ROOT)
    await fs.rename(tree["p"], b"f", tree["q"], b"f", 0, ROOT)
    await agree(fs, tree["p"], tree["q"])
    assert st.S_IMODE((await listing(fs, tree["q"]))[b"f"][1]) == 0o640
    assert st.S_IMODE((await listing(fs, tree["p"]))[b"k"][1]) == 0o660


async def test_a_directory_moved_under_a_granted_one(fs, svc, tree):
    await run(svc, "rebac create user:alice viewer-of /q")
    await agree(fs, tree["p"], tree["sub"], tree["q"])
    await fs.rename(tree["p"], b"sub", tree["q"], b"sub", 0, ROOT)
    await agree(fs, tree["p"], tree["sub"], tree["q"])
    assert st.S_IMODE((await listing(fs, tree["sub"]))[b"g"][1]) == 0o640     # r: within mask
    await fs.rename(ROOT_INO, b"p", tree["q"], b"p", 0, ROOT)
    await agree(fs, tree["p"], tree["q"])


async def test_hard_links_take_the_grants_of_every_name(fs, svc, tree):
    await run(svc, "rebac create user:alice editor-of /p")
    await agree(fs, tree["p"], tree["q"])
    await fs.link(tree["f"], tree["q"], b"f2", ROOT)
    await agree(fs, tree["p"], tree["q"])
    assert st.S_IMODE((await listing(fs, tree["q"]))[b"f2"][1]) == 0o660
    await fs.unlink(tree["p"], b"f", ROOT)                         # only the /q name is left
    await agree(fs, tree["p"], tree["q"])
    assert st.S_IMODE((await listing(fs, tree["q"]))[b"f2"][1]) == 0o640


async def test_an_open_file_unlinked_from_a_granted_directory_loses_the_grant(fs, svc, tree):
    await run(svc, "rebac create user:bob viewer-of /p")
    fh = await fs.open(tree["f"], os.O_RDONLY, ROOT)
    await fs.setattr(tree["f"], ROOT, mode=0o600)
    await agree(fs, tree["p"])                                     # shown, ACL known
    assert st.S_IMODE((await listing(fs, tree["p"]))[b"f"][1]) == 0o640
    await fs.getxattr(tree["f"], A.ACL_ACCESS, ROOT)
    await fs.unlink(tree["p"], b"f", ROOT)
    want_mode, want_acl = reference(fs, tree["f"])
    assert fs.access.known_acl(tree["f"]) in (None, A.encode(want_acl))
    assert (await fs.getattr(tree["f"], ROOT)).mode == want_mode
    assert st.S_IMODE(want_mode) == 0o600
    assert A.decode(await fs.getxattr(tree["f"], A.ACL_ACCESS, ROOT)) == want_acl
    await fs.release(fh)


async def test_undo_brings_back_names_with_their_grants(fs, svc, tree):
    await run(svc, "rebac create user:alice editor-of /p")
    await agree(fs, tree["p"], tree["q"])                          # answers cached
    await fs.unlink(tree["p"], b"h", ROOT)
    await fs.rename(tree["p"], b"f", tree["q"], b"f", 0, ROOT)
    await agree(fs, tree["p"], tree["q"])
    for op in ("rename", "unlink"):
        seq = [r for r in await svc.log() if r["op"] == op][-1]["seq"]
        await run(svc, f"undo --seq {seq}")
    assert fs.meta.lookup(tree["p"], b"f") == tree["f"] and fs.meta.lookup(tree["p"], b"h")
    await agree(fs, tree["p"], tree["q"])
    assert st.S_IMODE((await listing(fs, tree["p"]))[b"f"][1]) == 0o660


async def test_many_files_of_one_shape_and_a_few_others(fs, svc, tree):
    """A listing longer than one query batch, files sharing ACL values and anchors."""
    d = await mkdir(fs, tree["p"], b"many", 0o755)
    same = await fs.getxattr(tree["f"], A.ACL_ACCESS, ROOT)
    for i in range(300):
        f = await make_file(fs, b"f%03d" % i, b"", parent=d)
        if i % 3:
            await fs.setxattr(f, A.ACL_ACCESS, same, ROOT)
        if i % 7 == 0:
            await fs.setattr(f, ROOT, mode=0o600)
    await run(svc, "rebac create user:bob editor-of /p")
    await run(svc, "rebac create group:eng viewer-of /p/many/f010")
    await agree(fs, d)
