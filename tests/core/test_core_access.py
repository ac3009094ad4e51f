"""Access control without a mount: POSIX ACL xattrs kept in step with the mode, default-ACL
inheritance, relationship grants through the `rebac` control commands (and what they compile
into: the effective ACL, the mode the kernel is shown, the daemon's own checks), expiry, and
who may use history (undo, restore, versions, the log)."""
from __future__ import annotations

import errno
import grp
import pwd
import stat as st
import time

import pytest
from corelib import ROOT, make_file, mkdir

from nexusfs.access import acl as A
from nexusfs.control.commands import execute
from nexusfs.history.service import HistoryService
from nexusfs.types import ROOT_INO, Caller, FsError

E = A.Entry


def user(name: str) -> Caller:
    pw = pwd.getpwnam(name)
    groups = tuple(g for g in __import__("os").getgrouplist(name, pw.pw_gid) if g != pw.pw_gid)
    return Caller(uid=pw.pw_uid, gid=pw.pw_gid, pid=100 + pw.pw_uid, groups=groups)


ALICE, BOB, CAROL = user("alice"), user("bob"), user("carol")
ENG = grp.getgrnam("eng").gr_gid
HOUR = 3600 * 10**9


def acl(*entries: E) -> bytes:
    return A.encode(tuple(entries))


def errno_of(exc_info) -> int:
    return exc_info.value.errno


@pytest.fixture
def svc(fs):
    return HistoryService(fs)


async def run(svc, line: str, caller: Caller = ROOT):
    return (await execute(svc, line, caller)).data


async def fails(svc, line: str, caller: Caller = ROOT) -> FsError:
    with pytest.raises(FsError) as e:
        await execute(svc, line, caller)
    return e.value


async def chown(fs, ino, who: Caller, mode: int | None = None):
    await fs.setattr(ino, ROOT, uid=who.uid, gid=who.gid)
    if mode is not None:
        await fs.setattr(ino, ROOT, mode=mode)


@pytest.fixture
async def tree(fs):
    """/p (root, 0700) holding /p/f (root, 0600) and /p/sub/g; /q (root, 0755)."""
    p = await mkdir(fs, ROOT_INO, b"p", 0o700)
    f = await make_file(fs, b"f", b"secret\n", parent=p)
    await fs.setattr(f, ROOT, mode=0o600)
    sub = await mkdir(fs, p, b"sub", 0o700)
    g = await make_file(fs, b"g", b"deep\n", parent=sub)
    await fs.setattr(g, ROOT, mode=0o600)
    q = await mkdir(fs, ROOT_INO, b"q", 0o755)
    return {"p": p, "f": f, "sub": sub, "g": g, "q": q}


def may(fs, caller, ino, want) -> bool:
    return fs.access.may_access(caller, ino, want)


# -- ACL xattrs -------------------------------------------------------------------------------
async def test_setfacl_by_non_owner_is_eperm(fs, tree):
    value = acl(E(A.USER_OBJ, 6), E(A.USER, 4, ALICE.uid), E(A.GROUP_OBJ, 0), E(A.MASK, 4),
                E(A.OTHER, 0))
    with pytest.raises(FsError) as e:
        await fs.setxattr(tree["f"], A.ACL_ACCESS, value, ALICE)
    assert errno_of(e) == errno.EPERM
    with pytest.raises(FsError) as e:
        await fs.removexattr(tree["f"], A.ACL_ACCESS, ALICE)
    assert errno_of(e) == errno.EPERM
    await chown(fs, tree["f"], ALICE)
    await fs.setxattr(tree["f"], A.ACL_ACCESS, value, ALICE)       # the owner may


async def test_acl_naming_an_unknown_uid_or_gid_is_einval(fs, tree):
    for tag in (A.USER, A.GROUP):
        value = acl(E(A.USER_OBJ, 6), E(tag, 4, 424242), E(A.GROUP_OBJ, 0), E(A.MASK, 4),
                    E(A.OTHER, 0))
        with pytest.raises(FsError) as e:
            await fs.setxattr(tree["f"], A.ACL_ACCESS, value, ROOT)
        assert errno_of(e) == errno.EINVAL
    with pytest.raises(FsError) as e:
        await fs.setxattr(tree["f"], A.ACL_ACCESS, b"\x02\x00\x00\x00garbage!", ROOT)
    assert errno_of(e) == errno.EINVAL
    assert fs.access.stored(tree["f"]) is None


async def test_minimal_acl_stores_nothing_and_sets_the_mode(fs, tree):
    await fs.setxattr(tree["f"], A.ACL_ACCESS, acl(E(A.USER_OBJ, 7), E(A.GROUP_OBJ, 5),
                                                  E(A.OTHER, 1)), ROOT)
    assert fs.access.stored(tree["f"]) is None
    assert st.S_IMODE(fs.meta.get_attr(tree["f"]).mode) == 0o751
    assert A.ACL_ACCESS not in await fs.listxattr(tree["f"], ROOT)
    with pytest.raises(FsError) as e:
        await fs.getxattr(tree["f"], A.ACL_ACCESS, ROOT)
    assert errno_of(e) == errno.ENODATA


async def test_named_acl_is_stored_and_decides(fs, tree):
    await fs.setattr(tree["p"], ROOT, mode=0o755)
    value = acl(E(A.USER_OBJ, 6), E(A.USER, 6, ALICE.uid), E(A.GROUP_OBJ, 0), E(A.MASK, 4),
                E(A.OTHER, 0))
    await fs.setxattr(tree["f"], A.ACL_ACCESS, value, ROOT)
    assert await fs.getxattr(tree["f"], A.ACL_ACCESS, ROOT) == value
    assert st.S_IMODE(fs.meta.get_attr(tree["f"]).mode) == 0o640
    assert may(fs, ALICE, tree["f"], A.R) and not may(fs, ALICE, tree["f"], A.W)   # masked
    assert not may(fs, BOB, tree["f"], A.R)
    await fs.removexattr(tree["f"], A.ACL_ACCESS, ROOT)
    assert fs.access.stored(tree["f"]) is None and not may(fs, ALICE, tree["f"], A.R)


async def test_a_mask_without_named_entries_still_narrows_the_owning_group(fs, tree):
    """Linux keeps such an ACL (posix_acl_equiv_mode: a mask is not equivalent to a mode):
    the owning group gets group:: & mask, not the mask."""
    await fs.setattr(tree["p"], ROOT, mode=0o755)
    await fs.setattr(tree["f"], ROOT, gid=ENG)
    value = acl(E(A.USER_OBJ, 6), E(A.GROUP_OBJ, 4), E(A.MASK, 6), E(A.OTHER, 0))
    await fs.setxattr(tree["f"], A.ACL_ACCESS, value, ROOT)
    assert may(fs, ALICE, tree["f"], A.R)                 # alice is in eng
    assert not may(fs, ALICE, tree["f"], A.W)             # group::r-- whatever the mask


async def test_chmod_keeps_the_stored_mask_in_step(fs, tree):
    value = acl(E(A.USER_OBJ, 6), E(A.USER, 7, ALICE.uid), E(A.GROUP_OBJ, 4), E(A.MASK, 7),
                E(A.OTHER, 0))
    await fs.setxattr(tree["f"], A.ACL_ACCESS, value, ROOT)
    await fs.setattr(tree["f"], ROOT, mode=0o654)
    stored = fs.access.stored(tree["f"])
    assert A.get(stored, A.MASK).perm == 5 and A.get(stored, A.OTHER).perm == 4
    assert A.get(stored, A.USER_OBJ).perm == 6 and A.get(stored, A.GROUP_OBJ).perm == 4
    assert [e.perm for e in stored if e.tag == A.USER] == [7]
    assert A.mode_bits(stored) == st.S_IMODE(fs.meta.get_attr(tree["f"]).mode) == 0o654


async def test_default_acl_is_inherited_by_files_and_subdirectories(fs, tree):
    d = tree["q"]
    default = acl(E(A.USER_OBJ, 7), E(A.USER, 7, ALICE.uid), E(A.GROUP_OBJ, 5), E(A.MASK, 7),
                  E(A.OTHER, 5))
    await fs.setxattr(d, A.ACL_DEFAULT, default, ROOT)
    assert await fs.getxattr(d, A.ACL_DEFAULT, ROOT) == default
    f = await make_file(fs, b"new", b"x", parent=d)                  # created 0644
    got = fs.access.stored(f)
    assert got is not None and A.get(got, A.MASK).perm == 4          # narrowed by the mode
    assert [(e.id, e.perm) for e in got if e.tag == A.USER] == [(ALICE.uid, 7)]
    assert st.S_IMODE(fs.meta.get_attr(f).mode) == 0o644
    with pytest.raises(FsError) as e:
        await fs.getxattr(f, A.ACL_DEFAULT, ROOT)                    # files have no default
    assert errno_of(e) == errno.ENODATA
    sub = await mkdir(fs, d, b"sub", 0o777)
    assert await fs.getxattr(sub, A.ACL_DEFAULT, ROOT) == default      # dirs pass it on
    assert fs.access.stored(sub) == A.decode(default)
    deeper = await make_file(fs, b"h", b"", parent=sub)
    assert fs.access.stored(deeper) is not None
    assert may(fs, ALICE, deeper, A.R) and not may(fs, BOB, deeper, A.W)


async def test_default_acl_on_a_file_is_refused(fs, tree):
    with pytest.raises(FsError) as e:
        await fs.setxattr(tree["f"], A.ACL_DEFAULT, acl(E(A.USER_OBJ, 7), E(A.GROUP_OBJ, 5),
                                                        E(A.OTHER, 5)), ROOT)
    assert errno_of(e) == errno.EACCES


async def test_may_access_needs_search_on_every_ancestor(fs, tree):
    await fs.setattr(tree["g"], ROOT, mode=0o644)
    assert not may(fs, ALICE, tree["g"], A.R)              # /p is 0700
    await fs.setattr(tree["p"], ROOT, mode=0o711)
    assert not may(fs, ALICE, tree["g"], A.R)              # /p/sub is 0700
    await fs.setattr(tree["sub"], ROOT, mode=0o751)
    assert may(fs, ALICE, tree["g"], A.R) and not may(fs, ALICE, tree["g"], A.W)
    await fs.setattr(tree["p"], ROOT, mode=0o744)          # readable but not searchable
    assert not may(fs, ALICE, tree["g"], A.R)
    assert may(fs, ROOT, tree["g"], A.R | A.W)


# -- grants through the control commands ------------------------------------------------------
async def test_grant_on_a_directory_covers_files_below(fs, svc, tree):
    assert not (await run(svc, "rebac check user:alice write /p/f"))["allowed"]
    g = await run(svc, "rebac create user:alice editor-of /p")
    assert g["subject"] == "user:alice" and g["object"] == "/p" and g["expires"] is None
    r = await run(svc, "rebac check user:alice write /p/sub/g")
    assert r["allowed"] and "editor-of /p" in " ".join(r["why"])
    assert may(fs, ALICE, tree["g"], A.R | A.W)
    assert not may(fs, ALICE, tree["g"], A.X)              # a file without x bits: no x
    assert not (await run(svc, "rebac check user:bob read /p/f"))["allowed"]
    assert not may(fs, BOB, tree["f"], A.R)
    rows = await run(svc, "rebac expand editor-of /p/f")
    assert {r["subject"] for r in rows} == {"user:root", "user:alice"}
    assert await run(svc, "rebac expand owner-of /p/f") == [
        {"subject": "user:root", "via": ["POSIX owner"]}]


async def test_grant_follows_its_directory_through_a_rename(fs, svc, tree):
    await run(svc, "rebac create user:alice viewer-of /p")
    await fs.rename(ROOT_INO, b"p", tree["q"], b"moved", 0, ROOT)
    assert (await run(svc, "rebac check user:alice read /q/moved/f"))["allowed"]
    assert may(fs, ALICE, tree["f"], A.R)
    assert [r["object"] for r in await run(svc, "rebac list")] == ["/q/moved"]


async def test_a_file_moved_out_of_a_granted_directory_leaves_the_grant_behind(fs, svc, tree):
    await run(svc, "rebac create user:alice editor-of /p")
    await fs.setattr(tree["q"], ROOT, mode=0o711)
    assert may(fs, ALICE, tree["f"], A.W)                  # answers are cached now
    await fs.rename(tree["p"], b"f", tree["q"], b"f", 0, ROOT)
    assert not (await run(svc, "rebac check user:alice write /q/f"))["allowed"]
    assert not may(fs, ALICE, tree["f"], A.W)


async def test_explicit_acl_entry_beats_a_grant(fs, svc, tree):
    await fs.setxattr(tree["f"], A.ACL_ACCESS, acl(E(A.USER_OBJ, 6), E(A.USER, 0, ALICE.uid),
                                                  E(A.GROUP_OBJ, 0), E(A.MASK, 0),
                                                  E(A.OTHER, 0)), ROOT)
    await run(svc, "rebac create user:alice editor-of /p")
    r = await run(svc, "rebac check user:alice read /p/f")
    assert not r["allowed"] and "explicit ACL entry" in r["why"][0]
    assert not may(fs, ALICE, tree["f"], A.R)
    eff = A.decode(await fs.getxattr(tree["f"], A.ACL_ACCESS, ROOT))
    assert [e.perm for e in eff if e.tag == A.USER and e.id == ALICE.uid] == [0]
    assert may(fs, ALICE, tree["sub"], A.W)                # the grant still holds elsewhere


async def test_team_membership_carries_a_grant(fs, svc, tree):
    await run(svc, "rebac create user:alice member-of team:x")
    await run(svc, "rebac create team:x viewer-of /p")
    r = await run(svc, "rebac check user:alice read /p/f")
    assert r["allowed"] and "team:x" in r["why"][0]
    assert not (await run(svc, "rebac check user:alice write /p/f"))["allowed"]
    assert not (await run(svc, "rebac check user:bob read /p/f"))["allowed"]
    assert [r["subject"] for r in await run(svc, "rebac expand member-of team:x")] == ["user:alice"]
    assert "user:alice" in {r["subject"] for r in await run(svc, "rebac expand viewer-of /p/f")}
    await run(svc, "rebac delete user:alice member-of team:x")
    assert not (await run(svc, "rebac check user:alice read /p/f"))["allowed"]


async def test_group_subject_reaches_its_members(fs, svc, tree):
    await run(svc, "rebac create group:eng viewer-of /p")
    assert (await run(svc, "rebac check user:alice read /p/f"))["allowed"]
    assert may(fs, ALICE, tree["f"], A.R) and not may(fs, BOB, tree["f"], A.R)


async def test_member_of_cycle_terminates(fs, svc, tree):
    await run(svc, "rebac create team:a member-of team:b")
    await run(svc, "rebac create team:b member-of team:a")
    await run(svc, "rebac create user:alice member-of team:a")
    await run(svc, "rebac create team:b editor-of /p")
    assert (await run(svc, "rebac check user:alice write /p/f"))["allowed"]
    assert not (await run(svc, "rebac check user:carol write /p/f"))["allowed"]
    assert [r["subject"] for r in await run(svc, "rebac expand member-of team:b")] == ["user:alice"]
    assert "user:alice" in {r["subject"] for r in await run(svc, "rebac expand editor-of /p")}
    assert may(fs, ALICE, tree["f"], A.W)


@pytest.mark.parametrize("line,code,words", [
    ("rebac create user:alice editor-of /p --expires 2001-01-01T00:00:00Z", errno.EINVAL, "past"),
    ("rebac create user:alice editor-of /p --expires tomorrow", errno.EINVAL, "ISO 8601"),
    ("rebac create user:alice writer-of /p", errno.EINVAL, "unknown relation"),
    ("rebac create user:alice editor-of /nope", errno.ENOENT, ""),
    ("rebac create user:alice member-of /p", errno.EINVAL, "team:NAME"),
    ("rebac create user:alice editor-of team:x", errno.EINVAL, "path"),
    ("rebac create user:nosuchuserxyz editor-of /p", errno.EINVAL, "nosuchuserxyz"),
    ("rebac create robot:x editor-of /p", errno.EINVAL, "unknown kind"),
    ("rebac check team:x read /p", errno.EINVAL, "user"),
    ("rebac check user:alice delete /p", errno.EINVAL, "unknown permission"),
    ("rebac check user:alice read /nope", errno.ENOENT, ""),
    ("rebac delete 999", errno.ENOENT, "999"),
    ("rebac delete user:alice editor-of /p", errno.ENOENT, "no grant"),
    ("rebac expand writer-of /p", errno.EINVAL, "unknown relation"),
])
async def test_bad_grant_commands_are_clear_errors(fs, svc, tree, line, code, words):
    e = await fails(svc, line)
    assert e.errno == code and words in e.message
    assert await run(svc, "rebac list") == []


async def test_who_may_create_and_delete_grants(fs, svc, tree):
    e = await fails(svc, "rebac create user:alice editor-of /p", BOB)
    assert e.errno == errno.EPERM
    await chown(fs, tree["p"], CAROL)
    g = await run(svc, "rebac create user:alice viewer-of /p", CAROL)      # the owner may
    e = await fails(svc, f"rebac delete {g['id']}", BOB)
    assert e.errno == errno.EPERM
    e = await fails(svc, "rebac delete user:alice viewer-of /p", ALICE)    # a viewer may not
    assert e.errno == errno.EPERM
    await run(svc, "rebac create user:bob owner-of /p", CAROL)
    g2 = await run(svc, "rebac create user:alice editor-of /p/sub", BOB)   # an owner-of holder
    await run(svc, f"rebac delete {g['id']}", BOB)
    await run(svc, f"rebac delete {g2['id']}")                              # root may
    assert [r["relation"] for r in await run(svc, "rebac list")] == ["owner-of"]


async def test_a_non_owner_cannot_join_a_team_others_were_granted_to(fs, svc, tree):
    """A team that only appears as a subject (root granted it something, no member yet) is not
    new: a user who is not its owner must not become its owner by joining it."""
    await run(svc, "rebac create team:ops editor-of /p")
    e = await fails(svc, "rebac create user:alice member-of team:ops", ALICE)
    assert e.errno == errno.EPERM
    assert not may(fs, ALICE, tree["f"], A.W)


async def test_team_owner_manages_members(fs, svc, tree):
    await run(svc, "rebac create user:bob member-of team:t", ALICE)         # new team: alice's
    await run(svc, "rebac create user:carol member-of team:t", ALICE)
    e = await fails(svc, "rebac create user:bob member-of team:t", CAROL)
    assert e.errno == errno.EPERM
    assert sorted(r["subject"] for r in await run(svc, "rebac expand member-of team:t")) == [
        "user:bob", "user:carol"]


async def test_shown_mode_has_the_widened_mask_stored_mode_unchanged(fs, svc, tree):
    await run(svc, "rebac create user:alice editor-of /p")
    attr = await fs.getattr(tree["f"], ROOT)
    assert st.S_IMODE(attr.mode) == 0o660
    assert st.S_IMODE(fs.meta.get_attr(tree["f"]).mode) == 0o600
    assert st.S_IMODE((await fs.getattr(tree["p"], ROOT)).mode) == 0o770
    assert st.S_IMODE((await fs.getattr(tree["q"], ROOT)).mode) == 0o755   # not covered


async def test_chmod_through_the_shown_mode_does_not_widen_the_owning_group(fs, svc, tree):
    """chmod(1) computes the new mode from st_mode, which shows the widened mask: the owning
    group must not end up with the grant's bits (Linux: chmod sets the mask, not group::)."""
    await fs.setattr(tree["p"], ROOT, mode=0o755)
    await fs.setattr(tree["f"], ROOT, gid=ENG)
    g = await run(svc, "rebac create user:bob editor-of /p/f")
    shown = st.S_IMODE((await fs.getattr(tree["f"], ROOT)).mode)
    await fs.setattr(tree["f"], ROOT, mode=shown | 0o004)                     # chmod o+r
    await run(svc, f"rebac delete {g['id']}")
    assert not may(fs, ALICE, tree["f"], A.W)             # alice (eng) had no write before


async def test_effective_acl_and_setfacl_round_trip(fs, svc, tree):
    await run(svc, "rebac create user:alice editor-of /p")
    value = await fs.getxattr(tree["f"], A.ACL_ACCESS, ROOT)
    eff = A.decode(value)
    assert E(A.USER, 6, ALICE.uid) in eff and A.get(eff, A.MASK).perm == 6
    assert A.get(eff, A.GROUP_OBJ).perm == 0
    assert A.ACL_ACCESS in await fs.listxattr(tree["f"], ROOT)
    await fs.setxattr(tree["f"], A.ACL_ACCESS, value, ROOT)                # setfacl writes back
    assert fs.access.stored(tree["f"]) is None
    assert st.S_IMODE(fs.meta.get_attr(tree["f"]).mode) == 0o600
    # with an explicit entry too: only that one is kept
    bob = acl(*[e for e in eff if e.tag != A.MASK], E(A.USER, 4, BOB.uid), E(A.MASK, 6))
    await fs.setxattr(tree["f"], A.ACL_ACCESS, bob, ROOT)
    assert [e.id for e in fs.access.stored(tree["f"]) if e.tag == A.USER] == [BOB.uid]
    await run(svc, "rebac delete user:alice editor-of /p")
    eff = A.decode(await fs.getxattr(tree["f"], A.ACL_ACCESS, ROOT))
    assert [e.id for e in eff if e.tag == A.USER] == [BOB.uid]
    assert not may(fs, ALICE, tree["p"], A.X)


async def test_rebac_list_hides_grants_the_caller_cannot_reach(fs, svc, tree):
    await run(svc, "rebac create user:bob viewer-of /p/sub")
    await run(svc, "rebac create user:alice viewer-of /q")
    assert [r["object"] for r in await run(svc, "rebac list", ALICE)] == ["/q"]
    assert len(await run(svc, "rebac list")) == 2


# -- expiry -----------------------------------------------------------------------------------
def iso_in(ns_from_now: int) -> str:
    t = (time.time_ns() + ns_from_now) / 1e9
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


async def test_tick_after_the_expiry_removes_the_grant(fs, svc, tree):
    await run(svc, f"rebac create user:alice editor-of /p --expires {iso_in(HOUR)}")
    assert may(fs, ALICE, tree["f"], A.W)
    assert not fs.access.tick(time.time_ns())               # not yet
    assert fs.access.tick(time.time_ns() + 2 * HOUR)
    assert not may(fs, ALICE, tree["f"], A.W)
    assert not (await run(svc, "rebac check user:alice write /p/f"))["allowed"]
    assert st.S_IMODE((await fs.getattr(tree["f"], ROOT)).mode) == 0o600


async def test_expired_grant_is_listed_as_expired_and_gives_nothing(fs, svc, tree, monkeypatch):
    await run(svc, f"rebac create user:alice editor-of /p --expires {iso_in(HOUR)}")
    later = time.time_ns() + 2 * HOUR
    monkeypatch.setattr(time, "time_ns", lambda: later)
    assert fs.access.tick(later)
    assert not may(fs, ALICE, tree["f"], A.W)
    assert [r["expired"] for r in await run(svc, "rebac list")] == [True]
    assert not fs.access.tick(later)                          # nothing left to expire


# -- history ----------------------------------------------------------------------------------
async def test_undo_of_another_users_operation_needs_root(fs, svc, tree):
    await fs.setattr(tree["q"], ROOT, mode=0o777)
    ino = await make_file(fs, b"bobs", b"", parent=tree["q"], caller=BOB)
    seq = [r for r in await svc.log() if r["path"] == "/q/bobs"][-1]["seq"]
    e = await fails(svc, f"undo --seq {seq}", ALICE)
    assert e.errno == errno.EPERM
    e = await fails(svc, f"undo --seq {seq}", Caller(uid=ALICE.uid, gid=ALICE.gid, agent="root"))
    assert e.errno == errno.EPERM                             # an agent label is no one
    assert fs.meta.lookup(tree["q"], b"bobs") == ino
    await run(svc, f"undo --seq {seq}")                       # root may
    assert fs.meta.lookup(tree["q"], b"bobs") is None


async def test_restore_over_a_directory_the_caller_cannot_write_is_eacces(fs, svc, tree):
    await fs.setattr(tree["p"], ROOT, mode=0o755)
    await fs.setattr(tree["sub"], ROOT, mode=0o755)
    await run(svc, "snapshot create before /p")
    await fs.unlink(tree["sub"], b"g", ROOT)
    e = await fails(svc, "snapshot restore before", ALICE)
    assert e.errno == errno.EACCES
    e = await fails(svc, "snapshot delete before", ALICE)
    assert e.errno == errno.EPERM
    await run(svc, "snapshot restore before")


async def test_the_past_of_a_file_unreadable_now_is_unreadable(fs, svc, tree):
    await fs.setattr(tree["p"], ROOT, mode=0o755)
    seq = (await run(svc, "versions list /p/f"))[-1]["seq"]
    agent = Caller(uid=ALICE.uid, gid=ALICE.gid, groups=ALICE.groups, agent="root")
    for who in (ALICE, agent):                            # an agent label changes nothing
        for line in ("versions list /p/f", f"cat --at {seq} /p/f", f"versions show /p/f {seq}",
                     f"versions diff /p/f {seq}"):
            e = await fails(svc, line, who)
            assert e.errno == errno.EACCES, line
    await fs.setattr(tree["f"], ROOT, mode=0o644)
    assert await run(svc, "versions list /p/f", ALICE)
    assert await svc.cat_at("/p/f", seq, caller=ALICE) == b"secret\n"


async def test_log_redacts_paths_in_directories_the_caller_cannot_list(fs, svc, tree):
    await fs.setattr(tree["q"], ROOT, mode=0o777)
    await make_file(fs, b"mine", b"a", parent=tree["q"], caller=ALICE)
    await make_file(fs, b"hidden", b"h", parent=tree["sub"])
    mine = await mkdir(fs, tree["q"], b"private", 0o700, caller=ALICE)
    await make_file(fs, b"own", b"o", parent=mine, caller=ALICE)
    await fs.setattr(mine, ALICE, mode=0o000)                 # alice cannot list it either
    seen = await svc.log(caller=ALICE)
    paths = {r["path"] for r in seen}
    assert "/p/sub/hidden" not in paths and "/p/f" not in paths
    assert any(r.get("redacted") for r in seen)
    assert {"/q/mine", "/q/private/own"} <= paths             # its own operations show
    assert "/p/sub/hidden" in {r["path"] for r in await svc.log(caller=ROOT)}
    agent = await svc.log(caller=Caller(uid=ALICE.uid, gid=ALICE.gid, groups=ALICE.groups,
                                        agent="root"))
    assert [r["path"] for r in agent] == [r["path"] for r in seen]
