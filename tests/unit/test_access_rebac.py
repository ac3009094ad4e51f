"""Relationship grants without a store (nexusfs/access/rebac.py): subjects and relations, the
bits each relation grants, and team expansion through nested and cyclic memberships."""
from __future__ import annotations

import errno
import grp
import pwd
import subprocess
import sys

import pytest

from nexusfs.access import rebac as R
from nexusfs.types import FsError


def einval(fn, *args):
    with pytest.raises(FsError) as e:
        fn(*args)
    assert e.value.errno == errno.EINVAL
    return e.value.message


# -- subjects ---------------------------------------------------------------------------------
def test_parse_subject_users_groups_teams():
    alice = pwd.getpwnam("alice").pw_uid
    eng = grp.getgrnam("eng").gr_gid
    assert R.parse_subject("user:alice") == R.Subject("user", alice)
    assert R.parse_subject(f"user:{alice}") == R.Subject("user", alice)
    assert R.parse_subject("user:424242") == R.Subject("user", 424242)   # a number is taken as is
    assert R.parse_subject("group:eng") == R.Subject("group", eng)
    assert R.parse_subject("team:dev-ops.2") == R.Subject("team", "dev-ops.2")
    assert R.parse_subject("user:alice").show() == "user:alice"
    assert R.parse_subject("group:eng").key() == f"group:{eng}"


@pytest.mark.parametrize("text", ["user:no-such-user-xyz", "group:no-such-group-xyz", "robot:x",
                                  "alice", "user:", ":alice", "team:", "team:bad name",
                                  "team:-leading", "team:" + "x" * 65, "USER:alice"])
def test_parse_subject_errors_are_einval(text):
    msg = einval(R.parse_subject, text)
    assert msg                                                 # a reason, not a bare errno


def test_unknown_user_message_names_it():
    assert "no-such-user-xyz" in einval(R.parse_subject, "user:no-such-user-xyz")
    assert "unknown kind" in einval(R.parse_subject, "robot:x")


def test_subject_key_round_trip():
    for text in ("user:alice", "group:eng", "team:t1"):
        s = R.parse_subject(text)
        assert R.subject_from_key(s.key()) == s


def test_show_of_an_unknown_uid_is_the_number():
    assert R.Subject("user", 424242).show() == "user:424242"
    assert R.Subject("group", 424242).show() == "group:424242"


# -- relations --------------------------------------------------------------------------------
def test_check_relation():
    assert R.check_relation("member-of", True) == "member-of"
    for rel in R.PATH_RELATIONS:
        assert R.check_relation(rel, False) == rel
    assert "team:NAME" in einval(R.check_relation, "member-of", False)
    assert "path" in einval(R.check_relation, "editor-of", True)
    assert "unknown relation" in einval(R.check_relation, "writer-of", False)
    einval(R.check_relation, "", False)


@pytest.mark.parametrize("relation,is_dir,mode,bits", [
    ("viewer-of", True, 0o040700, 5), ("editor-of", True, 0o040700, 7),
    ("owner-of", True, 0o040000, 7),
    ("viewer-of", False, 0o100644, 4), ("editor-of", False, 0o100644, 6),
    ("owner-of", False, 0o100600, 6),
    ("viewer-of", False, 0o100744, 5), ("editor-of", False, 0o100701, 7),   # any x bit: X
    ("member-of", True, 0o040755, 0), ("member-of", False, 0o100755, 0),
])
def test_perms(relation, is_dir, mode, bits):
    assert R.perms(relation, is_dir, mode) == bits


def test_want_bits():
    assert R.want_bits("read") == 4 and R.want_bits("write") == 2
    assert R.want_bits("execute") == 1 and R.want_bits("list") == 5
    assert "unknown permission" in einval(R.want_bits, "delete")


def test_tuple_live():
    t = R.Tuple(1, R.Subject("user", 1), "viewer-of", "ino", 5, 100, 0, 0)
    assert t.live(99) and not t.live(100) and not t.live(101)
    assert R.Tuple(1, R.Subject("user", 1), "viewer-of", "ino", 5, None, 0, 0).live(10**20)


# -- the team graph ---------------------------------------------------------------------------
class Tuples:
    def __init__(self):
        self.items: list[R.Tuple] = []

    def member(self, subject: str, team: str) -> R.Tuple:
        kind, _, ident = subject.partition(":")
        t = R.Tuple(len(self.items) + 1, R.Subject(kind, ident if kind == "team" else int(ident)),
                    "member-of", "team", team, None, 0, 0)
        self.items.append(t)
        return t

    def graph(self) -> R.Graph:
        return R.Graph(self.items)


def test_expand_through_nested_teams_gives_the_chain():
    ts = Tuples()
    a_alice = ts.member("user:1001", "a")
    b_in_a = ts.member("team:b", "a")
    c_in_b = ts.member("team:c", "b")
    bob_in_c = ts.member("user:1002", "c")
    eng_in_b = ts.member("group:1001", "b")
    got = {s.key(): chain for s, chain in ts.graph().expand("a")}
    assert got == {"user:1001": [a_alice], "user:1002": [b_in_a, c_in_b, bob_in_c],
                   "group:1001": [b_in_a, eng_in_b]}
    assert {s.key() for s, _ in ts.graph().expand("c")} == {"user:1002"}
    assert ts.graph().expand("nobody") == []


def test_graph_ignores_other_relations():
    t = R.Tuple(1, R.Subject("user", 1001), "viewer-of", "ino", 7, None, 0, 0)
    assert R.Graph([t]).members == {}


def test_two_team_cycle_is_cut_and_reported():
    ts = Tuples()
    ts.member("team:b", "a")
    ts.member("team:a", "b")
    ts.member("user:1001", "a")
    ts.member("user:1002", "b")
    g = ts.graph()
    assert sorted(s.key() for s, _ in g.expand("a")) == ["user:1001", "user:1002"]
    assert sorted(s.key() for s, _ in g.expand("b")) == ["user:1001", "user:1002"]
    cycles = g.cycles()
    assert len(cycles) == 1
    assert sorted(cycles[0][:-1]) == ["a", "b"] and cycles[0][0] == cycles[0][-1]


def test_self_membership_and_three_cycle():
    ts = Tuples()
    ts.member("team:s", "s")
    ts.member("user:1003", "s")
    ts.member("team:y", "x")
    ts.member("team:z", "y")
    ts.member("team:x", "z")
    g = ts.graph()
    assert [s.key() for s, _ in g.expand("s")] == ["user:1003"]
    assert g.expand("x") == []
    found = sorted(sorted(c[:-1]) for c in g.cycles())
    assert found == [["s"], ["x", "y", "z"]]


def test_no_cycle_no_report():
    ts = Tuples()
    ts.member("team:b", "a")
    ts.member("team:c", "b")
    ts.member("team:c", "a")                                # a diamond is not a cycle
    assert ts.graph().cycles() == []


_DENSE = """
from nexusfs.access import rebac as R
n = {n}
names = [f"t{{k}}" for k in range(n)]
ts = []
for a in names:
    for b in names:
        if a != b:
            ts.append(R.Tuple(len(ts) + 1, R.Subject("team", b), "member-of", "team", a, None, 0, 0))
    ts.append(R.Tuple(len(ts) + 1, R.Subject("user", 5000 + len(ts)), "member-of", "team", a,
                      None, 0, 0))
g = R.Graph(ts)
out = g.expand("t0")
print(len(out), len({{s for s, _ in out}}))
g.cycles()
print("done")
"""


def test_densely_connected_teams_do_not_hang():
    """Every team a member of every other (a user may build this: each new team is its
    creator's). Expanding one team must list each member once and finish, and so must the
    cycle report; a walk over every simple path never ends."""
    n = 14
    try:
        out = subprocess.run([sys.executable, "-c", _DENSE.format(n=n)], capture_output=True,
                             text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"Graph.expand/cycles over {n} fully connected teams did not finish "
                    "in 30 s (exponential walk)")
    assert out.returncode == 0, out.stderr
    total, distinct = map(int, out.stdout.split()[:2])
    assert distinct == n and total == n, "each member should be listed once"
    assert out.stdout.split()[2] == "done"
