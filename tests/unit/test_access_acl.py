"""POSIX ACLs without a mount (nexusfs/access/acl.py): the xattr wire format and its validation,
chmod and inheritance, and permits() — the kernel's decision — checked against a table of the
Linux rules and, where this machine allows, against the kernel itself on a local ext4 file."""
from __future__ import annotations

import errno
import grp
import os
import pwd
import shutil
import struct
import subprocess
import tempfile

import pytest

from nexusfs.access import acl as A
from nexusfs.types import FsError

E = A.Entry
NO = A.NO_ID


def raw(entries, version: int = 2) -> bytes:
    """An xattr value exactly as given (no sorting, no checks)."""
    return struct.pack("<I", version) + b"".join(struct.pack("<HHI", t, p, i) for t, p, i in entries)


def acl(*entries: E) -> tuple:
    return tuple(sorted(entries, key=A._order))


MINIMAL = acl(E(A.USER_OBJ, 6), E(A.GROUP_OBJ, 4), E(A.OTHER, 4))
FULL = acl(E(A.USER_OBJ, 7), E(A.USER, 5, 1001), E(A.USER, 4, 1002), E(A.GROUP_OBJ, 5),
           E(A.GROUP, 6, 1001), E(A.MASK, 7), E(A.OTHER, 0))


# -- wire format ------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [MINIMAL, FULL], ids=["minimal", "named"])
def test_encode_decode_round_trip(value):
    data = A.encode(value)
    assert data[:4] == struct.pack("<I", 2) and len(data) == 4 + 8 * len(value)
    assert A.decode(data) == value
    assert A.encode(A.decode(data)) == data


def test_decode_sorts_entries_and_ignores_ids_of_unnamed_tags():
    value = raw([(A.OTHER, 0, NO), (A.USER, 4, 1002), (A.MASK, 6, 17), (A.USER_OBJ, 6, 5),
                 (A.GROUP_OBJ, 4, NO), (A.USER, 2, 1001)])
    got = A.decode(value)
    assert [e.tag for e in got] == [A.USER_OBJ, A.USER, A.USER, A.GROUP_OBJ, A.MASK, A.OTHER]
    assert [e.id for e in got if e.tag == A.USER] == [1001, 1002]
    assert all(e.id == NO for e in got if e.tag not in (A.USER, A.GROUP))


BASE = [(A.USER_OBJ, 6, NO), (A.GROUP_OBJ, 4, NO), (A.OTHER, 4, NO)]
MALFORMED = {
    "empty": b"",
    "short header": b"\x02\x00",
    "truncated entry": raw(BASE)[:-3],
    "version 1": raw(BASE, version=1),
    "version 3": raw(BASE, version=3),
    "unknown tag": raw(BASE + [(0x40, 4, NO)]),
    "perm bits > 7": raw([(A.USER_OBJ, 8, NO)] + BASE[1:]),
    "perm 0xffff": raw(BASE + [(A.USER, 0xFFFF, 1001), (A.MASK, 7, NO)]),
    "duplicate named user": raw(BASE + [(A.USER, 4, 1001), (A.USER, 6, 1001), (A.MASK, 7, NO)]),
    "duplicate named group": raw(BASE + [(A.GROUP, 4, 9), (A.GROUP, 4, 9), (A.MASK, 7, NO)]),
    "named user without mask": raw(BASE + [(A.USER, 4, 1001)]),
    "named group without mask": raw(BASE + [(A.GROUP, 4, 1001)]),
    "two masks": raw(BASE + [(A.MASK, 4, NO), (A.MASK, 6, NO)]),
    "no other": raw(BASE[:2]),
    "no owner": raw(BASE[1:]),
    "two owners": raw(BASE + [(A.USER_OBJ, 4, NO)]),
    "two owning groups": raw(BASE + [(A.GROUP_OBJ, 4, NO)]),
    "header only": raw([]),
}


@pytest.mark.parametrize("value", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_values_are_einval(value):
    with pytest.raises(FsError) as e:
        A.decode(value)
    assert e.value.errno == errno.EINVAL


def test_same_id_as_user_and_as_group_is_not_a_duplicate():
    value = raw(BASE + [(A.USER, 4, 1001), (A.GROUP, 4, 1001), (A.MASK, 4, NO)])
    assert len(A.decode(value)) == 6


def test_mask_without_named_entries_is_valid_and_not_minimal():
    value = acl(E(A.USER_OBJ, 6), E(A.GROUP_OBJ, 6), E(A.MASK, 4), E(A.OTHER, 0))
    assert A.decode(A.encode(value)) == value
    assert not A.is_minimal(value) and A.is_minimal(MINIMAL)
    assert A.mode_bits(value) == 0o640                 # the mask is the group class


# -- the mode and the ACL ---------------------------------------------------------------------
def test_from_mode_and_mode_bits():
    assert A.from_mode(0o100751) == acl(E(A.USER_OBJ, 7), E(A.GROUP_OBJ, 5), E(A.OTHER, 1))
    assert A.mode_bits(A.from_mode(0o751)) == 0o751
    assert A.mode_bits(FULL) == 0o770


def test_chmod_with_mask_rewrites_owner_mask_other_only():
    got = A.chmod(FULL, 0o100640)
    assert A.get(got, A.USER_OBJ).perm == 6 and A.get(got, A.OTHER).perm == 0
    assert A.get(got, A.MASK).perm == 4
    assert A.get(got, A.GROUP_OBJ).perm == 5                  # the owning group keeps its entry
    assert [e for e in got if e.tag in (A.USER, A.GROUP)] == \
        [e for e in FULL if e.tag in (A.USER, A.GROUP)]       # named entries untouched
    assert A.mode_bits(got) == 0o640


def test_chmod_without_mask_rewrites_the_owning_group():
    got = A.chmod(MINIMAL, 0o751)
    assert got == acl(E(A.USER_OBJ, 7), E(A.GROUP_OBJ, 5), E(A.OTHER, 1))


def test_inherit_narrows_owner_mask_and_other_by_the_mode():
    default = acl(E(A.USER_OBJ, 7), E(A.USER, 7, 1001), E(A.GROUP_OBJ, 5), E(A.MASK, 7),
                  E(A.OTHER, 5))
    access, bits = A.inherit(default, 0o100640)
    assert access == acl(E(A.USER_OBJ, 6), E(A.USER, 7, 1001), E(A.GROUP_OBJ, 5), E(A.MASK, 4),
                         E(A.OTHER, 0))
    assert bits == 0o640
    access, bits = A.inherit(default, 0o040777)               # mkdir 0777: nothing narrowed
    assert access == default and bits == 0o775


def test_inherit_without_mask_narrows_the_owning_group():
    default = acl(E(A.USER_OBJ, 7), E(A.GROUP_OBJ, 7), E(A.OTHER, 5))
    access, bits = A.inherit(default, 0o644)
    assert access == acl(E(A.USER_OBJ, 6), E(A.GROUP_OBJ, 4), E(A.OTHER, 4)) and bits == 0o644


def test_to_text_names_users_and_groups():
    text = A.to_text(acl(E(A.USER_OBJ, 6), E(A.USER, 4, 1001), E(A.GROUP_OBJ, 4),
                         E(A.MASK, 4), E(A.OTHER, 0)), user_name=lambda i: f"u{i}")
    assert text.splitlines() == ["user::rw-", "user:u1001:r--", "group::r--", "mask::r--",
                                 "other::---"]


# -- permits(): the Linux rules ---------------------------------------------------------------
OWNER, GRP = 500, 600                 # the file's owner and owning group
ALICE, BOB, CAROL = 1001, 1002, 1003  # ids in the table below (nothing is looked up)
ENG = 700


def P(entries, mode, uid, gids, want, owner=OWNER):
    return A.permits(entries, mode, owner, GRP, uid, frozenset(gids), want)


def test_owner_uses_owner_bits_only_even_if_an_entry_grants_more():
    entries = acl(E(A.USER_OBJ, 0), E(A.USER, 7, OWNER), E(A.GROUP_OBJ, 7), E(A.GROUP, 7, GRP),
                  E(A.MASK, 7), E(A.OTHER, 7))
    for want in (A.R, A.W, A.X):
        assert not P(entries, 0o077, OWNER, {GRP}, want)
    assert P(None, 0o400, OWNER, {GRP}, A.R) and not P(None, 0o400, OWNER, {GRP}, A.W)


def test_named_user_is_masked_and_decides_before_groups():
    entries = acl(E(A.USER_OBJ, 7), E(A.USER, 6, BOB), E(A.GROUP_OBJ, 0), E(A.GROUP, 7, ENG),
                  E(A.MASK, 4), E(A.OTHER, 7))
    mode = A.mode_bits(entries)
    assert P(entries, mode, BOB, {ENG}, A.R)
    assert not P(entries, mode, BOB, {ENG}, A.W)          # rw- & mask r--; the group is not asked
    assert not P(entries, mode, BOB, {ENG}, A.X)          # and other (rwx) is not asked either


def test_group_entries_any_one_that_allows_allows():
    entries = acl(E(A.USER_OBJ, 7), E(A.GROUP_OBJ, 4), E(A.GROUP, 2, ENG), E(A.MASK, 7),
                  E(A.OTHER, 7))
    mode = A.mode_bits(entries)
    gids = {GRP, ENG}
    assert P(entries, mode, ALICE, gids, A.R) and P(entries, mode, ALICE, gids, A.W)
    assert not P(entries, mode, ALICE, gids, A.R | A.W)   # no single entry has both
    assert not P(entries, mode, ALICE, gids, A.X)         # a matching group: other is not asked
    assert P(entries, mode, CAROL, {999}, A.R | A.W | A.X)   # no match: other


def test_group_entries_are_masked_owning_group_too():
    entries = acl(E(A.USER_OBJ, 7), E(A.GROUP_OBJ, 6), E(A.GROUP, 6, ENG), E(A.MASK, 4),
                  E(A.OTHER, 0))
    mode = A.mode_bits(entries)
    assert P(entries, mode, ALICE, {GRP}, A.R) and not P(entries, mode, ALICE, {GRP}, A.W)
    assert P(entries, mode, BOB, {ENG}, A.R) and not P(entries, mode, BOB, {ENG}, A.W)


def test_acl_is_consulted_only_when_the_mode_has_group_bits():
    entries = acl(E(A.USER_OBJ, 6), E(A.USER, 6, BOB), E(A.GROUP_OBJ, 4), E(A.MASK, 0),
                  E(A.OTHER, 4))
    mode = A.mode_bits(entries)                           # 0o604: group class empty
    assert mode == 0o604
    assert P(entries, mode, BOB, {999}, A.R)              # falls to the mode: other r--
    assert not P(entries, mode, ALICE, {GRP}, A.R)        # owning group: group bits (none)


def test_no_acl_is_the_classic_mode_check():
    assert P(None, 0o640, ALICE, {GRP}, A.R) and not P(None, 0o640, ALICE, {GRP}, A.W)
    assert not P(None, 0o604, ALICE, {GRP}, A.R)          # group class decides, not other
    assert P(None, 0o604, ALICE, {999}, A.R)
    assert P(None, 0o755, ALICE, set(), A.R | A.X) and not P(None, 0o755, ALICE, set(), A.W)
    assert P(None, 0o000, ALICE, set(), 0)                # asking for nothing


def test_want_is_limited_to_rwx():
    assert P(None, 0o644, ALICE, set(), A.R | 0o10)


# -- the same decisions, asked of the kernel (ext4 under /var/tmp, runuser) --------------------
PY = shutil.which("python3", path="/usr/bin:/bin")    # one the test users may run


def _users_ok() -> bool:
    try:
        return all(pwd.getpwnam(u) for u in ("alice", "bob", "carol")) and bool(grp.getgrnam("eng"))
    except KeyError:
        return False


KERNEL_CASES = {
    # name: (owner, group, entries or None, mode when no ACL)
    "owner-ignores-entries": ("alice", "eng", [(A.USER_OBJ, 0), (A.USER, 7, "alice"),
                                               (A.GROUP_OBJ, 7), (A.MASK, 7), (A.OTHER, 7)], None),
    "named-user-masked": ("root", "eng", [(A.USER_OBJ, 7), (A.USER, 7, "bob"), (A.GROUP_OBJ, 4),
                                          (A.MASK, 4), (A.OTHER, 0)], None),
    "named-group-any-of": ("root", "eng", [(A.USER_OBJ, 7), (A.GROUP_OBJ, 4),
                                           (A.GROUP, 2, "bob"), (A.USER, 5, "carol"),
                                           (A.MASK, 7), (A.OTHER, 4)], None),
    "empty-mask-skips-acl": ("root", "eng", [(A.USER_OBJ, 6), (A.USER, 6, "bob"),
                                             (A.GROUP_OBJ, 4), (A.MASK, 0), (A.OTHER, 4)], None),
    "named-user-before-group": ("root", "eng", [(A.USER_OBJ, 7), (A.USER, 4, "alice"),
                                                (A.GROUP_OBJ, 6), (A.MASK, 7), (A.OTHER, 7)], None),
    "group-class-not-other": ("root", "eng", None, 0o607),
    "exec-bits": ("carol", "eng", None, 0o615),
}


def _entries(spec):
    out = []
    for t in spec:
        tag, perm = t[0], t[1]
        qid = NO
        if tag == A.USER:
            qid = pwd.getpwnam(t[2]).pw_uid
        elif tag == A.GROUP:
            qid = grp.getgrnam(t[2]).gr_gid
        out.append(E(tag, perm, qid))
    return acl(*out)


@pytest.mark.skipif(os.geteuid() != 0 or not _users_ok() or not shutil.which("runuser") or not PY,
                    reason="needs root, runuser and the users alice, bob, carol and group eng")
def test_permits_agrees_with_the_kernel():
    top = tempfile.mkdtemp(dir="/var/tmp", prefix="nexus-acl-")
    try:
        os.chmod(top, 0o755)
        files = {}
        for name, (owner, group, spec, mode) in KERNEL_CASES.items():
            path = os.path.join(top, name)
            open(path, "w").close()
            os.chown(path, pwd.getpwnam(owner).pw_uid, grp.getgrnam(group).gr_gid)
            entries = None
            if spec is None:
                os.chmod(path, mode)
            else:
                entries = _entries(spec)
                try:
                    os.setxattr(path, A.ACL_ACCESS, A.encode(entries))
                except OSError as e:
                    pytest.skip(f"no POSIX ACLs on {top}: {e}")
            files[name] = (path, entries)
        probe = ("import os, sys, json\n"
                 "print(json.dumps({p: [os.access(p, m) for m in (os.R_OK, os.W_OK, os.X_OK)]"
                 " for p in sys.argv[1:]}))")
        mismatches = []
        for user in ("alice", "bob", "carol"):
            out = subprocess.run(["runuser", "-u", user, "--", PY, "-c", probe,
                                  *[p for p, _ in files.values()]],
                                 capture_output=True, text=True, check=True).stdout
            kernel = __import__("json").loads(out)
            pw = pwd.getpwnam(user)
            gids = frozenset(os.getgrouplist(user, pw.pw_gid))
            for name, (path, entries) in files.items():
                s = os.stat(path)
                for want, k in zip((A.R, A.W, A.X), kernel[path]):
                    ours = A.permits(entries, s.st_mode, s.st_uid, s.st_gid, pw.pw_uid, gids, want)
                    if ours != k:
                        mismatches.append((name, user, want, "kernel", k, "ours", ours))
        assert mismatches == []
    finally:
        shutil.rmtree(top)
