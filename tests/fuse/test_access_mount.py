"""Access control through a real mount, with real users and the real tools.

The session creates (when missing) the Unix group ``nxeng`` and the users ``nxalice`` (in
nxeng), ``nxbob`` and ``nxcarol``; commands run as them with ``runuser``. Covered: POSIX
ACLs with getfacl/setfacl (mask follows chmod, default ACLs inherit, malformed and unknown
entries refused), relationship grants through ``nexus rebac`` and the ctl file (a Unix group
edits with vim, a user reads until the expiry and not after, grants follow renames), every
side channel (views, /.raw/, history, at/, snapshots, the log, the CLI's history commands)
and the authorization of control commands (undo, snapshot delete, grants, a forged
NEXUS_AGENT).
"""
from __future__ import annotations

import errno
import json
import os
import pwd
import struct
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from fusehelp import NEXUS, require_tools, run, skip_or_fail

pytestmark = pytest.mark.fuse

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "views"))
import docgen  # noqa: E402

GROUP, ALICE, BOB, CAROL = "nxeng", "nxalice", "nxbob", "nxcarol"


@pytest.fixture(scope="session")
def people():
    """The test's users and group (created when missing)."""
    require_tools("runuser", "useradd", "groupadd", "getfacl", "setfacl", "vim")
    steps = [["groupadd", "-f", GROUP]]
    for user, extra in ((ALICE, ["-G", GROUP]), (BOB, []), (CAROL, [])):
        if subprocess.run(["id", "-u", user], capture_output=True).returncode != 0:
            steps.append(["useradd", "-r", "-M", "-s", "/bin/sh", *extra, user])
    for cmd in steps:
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            skip_or_fail(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return {"alice": ALICE, "bob": BOB, "carol": CAROL}


def as_(user: str, cmd, env: dict | None = None) -> subprocess.CompletedProcess:
    e = dict(os.environ, **(env or {}))
    if isinstance(cmd, str):
        cmd = ["sh", "-c", cmd]
    return run(["runuser", "-u", user, "--", *cmd], check=False, env=e)


MOUNT: list = []          # the module's mount point: every nexus call names it


def nexus(*args, user: str | None = None) -> subprocess.CompletedProcess:
    """The nexus CLI, as root or as ``user``. (As a user: in a forked child that drops to
    the user's uid, gid and groups, because the test's interpreter may live where users
    cannot execute it; the daemon identifies the caller by SO_PEERCRED all the same.)"""
    if MOUNT and "--mount" not in args and args[0] in ("rebac", "log", "undo", "snapshot",
                                                        "versions", "cat"):
        args = (*args, "--mount", str(MOUNT[-1]))
    if not user:
        return run([NEXUS, *args], check=False)
    from click.testing import CliRunner

    from nexusfs import cli, config, runtime  # noqa: F401  (imported before dropping rights)
    from nexusfs.control import cli_commands, cli_rebac, client  # noqa: F401
    pw = pwd.getpwnam(user)
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:                                           # the child: become the user
        try:
            os.close(rd)
            os.setgroups(os.getgrouplist(user, pw.pw_gid))
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
            res = CliRunner().invoke(cli.main, list(args), prog_name="nexus")
            out = json.dumps({"rc": res.exit_code, "out": res.stdout, "err": res.stderr})
            os.write(wr, out.encode())
        finally:
            os._exit(0)
    os.close(wr)
    chunks = []
    while True:
        b = os.read(rd, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(rd)
    os.waitpid(pid, 0)
    got = json.loads(b"".join(chunks) or b'{"rc": 99, "out": "", "err": "child failed"}')
    return subprocess.CompletedProcess(["nexus", *args], got["rc"], got["out"], got["err"])


def ok(r):
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return r


def denied(r):
    assert r.returncode != 0, (r.stdout, r.stderr)
    return r


@pytest.fixture
def area(work, people, mount):
    os.chmod(work, 0o755)
    MOUNT[:] = [mount.mnt]
    return work


# -- POSIX ACLs ------------------------------------------------------------------------------
def test_setfacl_getfacl_and_the_mask_following_chmod(area):
    f = area / "plan.md"
    f.write_text("the plan\n")
    os.chmod(f, 0o640)
    denied(as_(BOB, ["cat", str(f)]))
    ok(run(["setfacl", "-m", f"u:{BOB}:rw", str(f)]))
    acl = ok(run(["getfacl", "-p", str(f)])).stdout
    assert f"user:{BOB}:rw-" in acl and "mask::rw-" in acl
    assert "+" in ok(run(["ls", "-l", str(f)])).stdout.split()[0]
    assert ok(as_(BOB, ["cat", str(f)])).stdout == "the plan\n"
    ok(as_(BOB, f"echo more >> '{f}'"))
    denied(as_(CAROL, ["cat", str(f)]))
    # chmod narrows the mask, and with it every named entry
    os.chmod(f, 0o600)
    assert "mask::---" in ok(run(["getfacl", "-p", str(f)])).stdout
    denied(as_(BOB, ["cat", str(f)]))
    os.chmod(f, 0o660)
    ok(as_(BOB, ["cat", str(f)]))
    # removing the ACL leaves the mode
    ok(run(["setfacl", "-b", str(f)]))
    assert "user:" + BOB not in ok(run(["getfacl", "-p", str(f)])).stdout
    denied(as_(BOB, ["cat", str(f)]))


def test_default_acls_are_inherited(area):
    d = area / "projects"
    d.mkdir()
    ok(run(["setfacl", "-m", f"g:{GROUP}:rwx", "-d", "-m", f"g:{GROUP}:rwx", str(d)]))
    ok(run(f"umask 002 && echo hello > '{d}/notes.txt' && mkdir '{d}/sub'"))
    acl = ok(run(["getfacl", "-p", str(d / "notes.txt")])).stdout
    assert f"group:{GROUP}:rwx" in acl and "default:" not in acl
    sub = ok(run(["getfacl", "-p", str(d / "sub")])).stdout
    assert f"default:group:{GROUP}:rwx" in sub
    # alice (in the group) writes; carol cannot
    ok(as_(ALICE, f"echo from-alice >> '{d}/notes.txt'"))
    ok(as_(ALICE, f"echo new > '{d}/sub/by-alice.txt'"))
    denied(as_(CAROL, f"echo x >> '{d}/notes.txt'"))
    assert (d / "notes.txt").read_text() == "hello\nfrom-alice\n"
    # a file alice creates inherits too
    assert f"group:{GROUP}:rwx" in ok(run(["getfacl", "-p", str(d / "sub/by-alice.txt")])).stdout


def _acl(entries) -> bytes:
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", t, p, i) for t, p, i in entries)


def test_bad_acls_are_refused(area):
    f = area / "f"
    f.write_text("x")
    # (an unknown version is EOPNOTSUPP, from the kernel, as on ext4)
    for value, code in ((struct.pack("<I", 2) + b"xyz", errno.EINVAL),
                        (struct.pack("<I", 3), errno.EOPNOTSUPP),
                        (_acl([(1, 6, 0), (4, 4, 0)]), errno.EINVAL)):
        with pytest.raises(OSError) as e:
            os.setxattr(f, "system.posix_acl_access", value)
        assert e.value.errno == code, value
    unknown = 3_999_999
    with pytest.raises(OSError) as e:
        os.setxattr(f, "system.posix_acl_access",
                    _acl([(1, 6, 0xFFFFFFFF), (2, 6, unknown), (4, 4, 0xFFFFFFFF),
                          (0x10, 6, 0xFFFFFFFF), (0x20, 4, 0xFFFFFFFF)]))
    assert e.value.errno == errno.EINVAL
    r = run(["setfacl", "-m", "u:no-such-user-here:rw", str(f)], check=False)
    assert r.returncode != 0
    assert f.read_text() == "x"


def test_a_non_owner_cannot_set_acls(area, people):
    f = area / "roots"
    f.write_text("x")
    os.chmod(f, 0o666)
    denied(as_(CAROL, ["setfacl", "-m", f"u:{CAROL}:rwx", str(f)]))


# -- relationship grants ---------------------------------------------------------------------
def test_a_group_grant_lets_alice_edit_with_vim(area, mount):
    backend = area / "projects/backend"
    backend.mkdir(parents=True)
    api = backend / "api.py"
    api.write_text("print('v1')\n")
    os.chmod(api, 0o644)
    vim = ["vim", "-N", "-u", "NONE", "-i", "NONE", "-n", "-es", "-c", "%s/v1/v2/", "-c", "wq",
           str(api)]
    denied(as_(ALICE, vim))
    assert api.read_text() == "print('v1')\n"
    ok(nexus("rebac", "create", f"group:{GROUP}", "editor-of", str(area / "projects/backend")))
    ok(as_(ALICE, vim))
    assert api.read_text() == "print('v2')\n"
    denied(as_(CAROL, f"echo x >> '{api}'"))
    r = ok(nexus("rebac", "check", f"user:{ALICE}", "write", str(api)))
    assert r.stdout.startswith("allowed") and GROUP in r.stdout
    r = nexus("rebac", "check", f"user:{CAROL}", "write", str(api))
    assert r.returncode == 3 and r.stdout.startswith("denied")
    r = ok(nexus("rebac", "expand", "editor-of", str(backend)))
    assert f"group:{GROUP}" in r.stdout and "editor-of" in r.stdout
    # the grant follows the directory through a rename
    os.rename(area / "projects", area / "projects2")
    ok(as_(ALICE, f"echo moved >> '{area}/projects2/backend/api.py'"))


def test_a_grant_until_an_expiry(area):
    reports = area / "reports"
    reports.mkdir()
    q4 = reports / "q4.pdf"
    q4.write_bytes(docgen.pdf([["Quarter four revenue"]]))
    os.chmod(q4, 0o600)
    until = (datetime.now(timezone.utc) + timedelta(seconds=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    ok(nexus("rebac", "create", f"user:{BOB}", "viewer-of", str(q4), "--expires", until))
    ok(as_(BOB, f"cat '{q4}' > /dev/null"))
    assert "revenue" in ok(as_(BOB, ["cat", str(reports / "q4.pdf.txt")])).stdout
    denied(as_(CAROL, f"cat '{q4}' > /dev/null"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and as_(BOB, f"cat '{q4}' > /dev/null").returncode == 0:
        time.sleep(0.5)
    denied(as_(BOB, f"cat '{q4}' > /dev/null"))
    denied(as_(BOB, ["cat", str(reports / "q4.pdf.txt")]))
    assert "expired" in ok(nexus("rebac", "list")).stdout


def test_the_kernel_sees_every_change_after_a_listing(area, mount):
    """The daemon answers the kernel's ACL reads from what it showed last (listings): a
    setfacl, a rename out of the granted directory and a grant deletion all count."""
    d = area / "shared"
    d.mkdir()
    for i in range(5):
        (d / f"other{i}.txt").write_text("x\n")              # files of the same shape
    f = d / "notes.txt"
    f.write_text("notes\n")
    for p in d.iterdir():
        os.chmod(p, 0o600)
    ok(nexus("rebac", "create", f"user:{BOB}", "viewer-of", str(d)))
    assert "notes.txt" in ok(as_(BOB, ["ls", "-l", str(d)])).stdout
    assert ok(as_(BOB, ["cat", str(f)])).stdout == "notes\n"
    ok(run(["setfacl", "-m", f"u:{BOB}:---", str(f)]))        # an explicit entry beats it
    denied(as_(BOB, ["cat", str(f)]))
    ok(as_(BOB, ["cat", str(d / "other1.txt")]))
    ok(run(["setfacl", "-x", f"u:{BOB}", str(f)]))
    ok(as_(BOB, ["ls", "-l", str(d)]))
    assert ok(as_(BOB, ["cat", str(f)])).stdout == "notes\n"
    os.rename(f, area / "notes.txt")                           # out of the granted directory
    denied(as_(BOB, ["cat", str(area / "notes.txt")]))
    os.rename(area / "notes.txt", f)
    ok(as_(BOB, ["cat", str(f)]))
    ok(nexus("rebac", "delete", f"user:{BOB}", "viewer-of", str(d)))
    denied(as_(BOB, ["cat", str(f)]))
    denied(as_(BOB, ["cat", str(d / "other2.txt")]))


def test_grants_through_the_ctl_file_and_teams(area, mount):
    d = area / "teamdir"
    d.mkdir()
    (d / "doc.txt").write_text("team doc\n")
    os.chmod(d / "doc.txt", 0o600)
    ctl = mount.mnt / ".nexus/ctl"
    for line in (f"rebac create user:{CAROL} member-of team:writers",
                 "rebac create team:writers member-of team:all",
                 "rebac create team:all member-of team:writers",          # a cycle
                 f"rebac create team:all viewer-of {'/' + str(d.relative_to(mount.mnt))}"):
        ok(run(["sh", "-c", f"echo '{line}' > '{ctl}'"]))
    assert ok(as_(CAROL, ["cat", str(d / "doc.txt")])).stdout == "team doc\n"
    denied(as_(BOB, ["cat", str(d / "doc.txt")]))
    ok(run(["sh", "-c", f"echo 'rebac expand viewer-of team:all' > '{ctl}'"]))
    assert f"user:{CAROL}" in (mount.mnt / ".nexus/ctl.last").read_text()
    # unknown relations, paths and users: a clear error, nothing granted
    for line in ("rebac create user:nxbob knows-of /", "rebac create user:nxbob viewer-of /nope",
                 "rebac create user:no-such-user viewer-of /"):
        r = run(["sh", "-c", f"echo '{line}' > '{ctl}'"], check=False)
        assert r.returncode != 0
        assert "error" in (mount.mnt / ".nexus/ctl.last").read_text()
    denied(as_(BOB, ["cat", str(d / "doc.txt")]))


def test_only_owners_change_grants(area, mount):
    f = area / "roots.txt"
    f.write_text("x")
    os.chmod(f, 0o600)
    r = nexus("rebac", "create", f"user:{CAROL}", "viewer-of", str(f), user=CAROL)
    assert r.returncode == 1 and "owner" in r.stderr
    ctl = mount.mnt / ".nexus/ctl"
    r = as_(CAROL, f"echo 'rebac create user:{CAROL} viewer-of /{f.relative_to(mount.mnt)}' > '{ctl}'",
            env={"NEXUS_AGENT": "root"})
    assert r.returncode != 0
    denied(as_(CAROL, ["cat", str(f)]))
    mine = area / "carols"
    ok(as_(CAROL, "true"))
    os.chmod(area, 0o777)
    ok(as_(CAROL, f"echo hers > '{mine}' && chmod 600 '{mine}'"))
    ok(nexus("rebac", "create", f"user:{BOB}", "viewer-of", str(mine), user=CAROL))
    assert ok(as_(BOB, ["cat", str(mine)])).stdout == "hers\n"
    r = nexus("rebac", "delete", f"user:{BOB}", "viewer-of", str(mine), user=BOB)
    assert r.returncode == 1
    ok(nexus("rebac", "delete", f"user:{BOB}", "viewer-of", str(mine), user=CAROL))
    denied(as_(BOB, ["cat", str(mine)]))


# -- no side channels ------------------------------------------------------------------------
def test_no_side_channel_reveals_an_unreadable_file(area, mount):
    secret = area / "vault"
    secret.mkdir()
    doc = secret / "plans.pdf"
    doc.write_bytes(docgen.pdf([["launch codes zebra"]]))
    (secret / "notes.txt").write_text("zebra notes\n")
    os.chmod(doc, 0o600)
    os.chmod(secret / "notes.txt", 0o600)
    assert "zebra" in (secret / "plans.pdf.txt").read_text()
    snap = f"s-{os.getpid()}-{time.monotonic_ns()}"
    ok(nexus("snapshot", "create", snap, "--mount", str(mount.mnt)))
    seq = json.loads(ok(nexus("log", "--mount", str(mount.mnt), "--json", "--limit", "1")).stdout)[0]["seq"]
    rel = secret.relative_to(mount.mnt)
    nx = mount.mnt / ".nexus"
    for path in (doc, secret / "plans.pdf.txt", secret / "plans.pdf.md", secret / "notes.txt",
                 nx / "snapshots" / snap / rel / "notes.txt", nx / "at" / str(seq) / rel / "notes.txt",
                 nx / "at" / str(seq) / rel / "plans.pdf"):
        r = as_(CAROL, ["cat", str(path)])
        assert r.returncode != 0 and "zebra" not in r.stdout, path
    r = as_(CAROL, f"cat '{nx}/history/{rel}/notes.txt'/* ; ls '{nx}/history/{rel}/notes.txt'")
    assert "zebra" not in r.stdout and "000" not in r.stdout
    # the CLI's history commands
    for args in (("versions", "list", str(secret / "notes.txt")),
                 ("cat", "--at", str(seq), str(secret / "notes.txt"))):
        r = nexus(*args, "--mount", str(mount.mnt), user=CAROL)
        assert r.returncode != 0 and "zebra" not in r.stdout, args
    # a private directory hides names in the log; the owner still sees everything
    os.chmod(secret, 0o700)
    log = ok(nexus("log", "--mount", str(mount.mnt), "--json", user=CAROL)).stdout
    assert "vault/notes.txt" not in log and "vault/plans.pdf" not in log
    assert "vault/notes.txt" in ok(nexus("log", "--mount", str(mount.mnt), "--json")).stdout
    # a grant opens the live file; the past keeps the permissions of its time as well
    os.chmod(secret, 0o755)
    ok(nexus("rebac", "create", f"user:{CAROL}", "viewer-of", str(secret)))
    assert ok(as_(CAROL, ["cat", str(secret / "notes.txt")])).stdout == "zebra notes\n"
    denied(as_(CAROL, ["cat", str(nx / "snapshots" / snap / rel / "notes.txt")]))
    # and what was public then but is private now stays private in the past
    pub = area / "was-public.txt"
    pub.write_text("zebra once public\n")
    os.chmod(pub, 0o644)
    snap2 = snap + "-2"
    ok(nexus("snapshot", "create", snap2))
    os.chmod(pub, 0o600)
    r = as_(CAROL, ["cat", str(nx / "snapshots" / snap2 / pub.relative_to(mount.mnt))])
    assert r.returncode != 0 and "zebra" not in r.stdout
    ok(nexus("rebac", "delete", f"user:{CAROL}", "viewer-of", str(secret)))
    denied(as_(CAROL, ["cat", str(secret / "notes.txt")]))


def test_raw_tree_in_auto_parse_mode_keeps_permissions(mount_factory, people):
    m = mount_factory(mount=False)
    r = run([NEXUS, "mount", str(m.mnt), "--data-dir", str(m.data), "--auto-parse",
             "-o", "allow_other"], check=False, timeout=60)
    assert r.returncode == 0, r.stderr
    d = m.mnt / "docs"
    d.mkdir()
    doc = d / "secret.pdf"
    doc.write_bytes(docgen.pdf([["quokka budget"]]))
    os.chmod(doc, 0o600)
    time.sleep(0.2)
    for path in (doc, m.mnt / ".raw/docs/secret.pdf"):
        r = as_(CAROL, f"cat '{path}' > /dev/null")
        assert "Permission denied" in r.stderr, path
    r = as_(CAROL, ["grep", "-r", "quokka", str(m.mnt / "docs")])
    assert "quokka" not in r.stdout
    ok(nexus("rebac", "create", f"user:{CAROL}", "viewer-of", str(doc), "--mount", str(m.mnt)))
    assert "quokka" in ok(as_(CAROL, ["cat", str(doc)])).stdout


# -- control authorization -------------------------------------------------------------------
def test_control_commands_check_their_caller(area, mount):
    f = area / "roots-work.txt"
    f.write_text("root's\n")
    seq = json.loads(ok(nexus("log", "--mount", str(mount.mnt), "--json", "--limit", "1")).stdout)[0]["seq"]
    r = nexus("undo", "--seq", str(seq), "--mount", str(mount.mnt), user=CAROL)
    assert r.returncode == 1 and "root" in r.stderr
    r = as_(CAROL, f"echo 'undo --seq {seq}' > '{mount.mnt}/.nexus/ctl'",
            env={"NEXUS_AGENT": "admin"})
    assert r.returncode != 0
    assert f.read_text() == "root's\n"
    snap = f"rootsnap-{os.getpid()}-{time.monotonic_ns()}"
    ok(nexus("snapshot", "create", snap, "--mount", str(mount.mnt)))
    r = nexus("snapshot", "delete", snap, "--mount", str(mount.mnt), user=CAROL)
    assert r.returncode == 1
    r = as_(CAROL, ["rmdir", str(mount.mnt / ".nexus/snapshots" / snap)])
    assert r.returncode != 0
    assert (mount.mnt / ".nexus/snapshots" / snap).is_dir()
    r = nexus("snapshot", "restore", snap, str(area), "--mount", str(mount.mnt), user=CAROL)
    assert r.returncode == 1
    # a user undoes their own work where they may write
    os.chmod(area, 0o777)
    ok(as_(CAROL, f"mkdir '{area}/carols-dir'"))
    ok(nexus("undo", "--mount", str(mount.mnt), user=CAROL))
    assert not (area / "carols-dir").exists()
