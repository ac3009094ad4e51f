"""Permission checks for an unprivileged user on a mount made with ``-o allow_other``.

The commands run as the system user ``nexustest`` (created when missing) through
``runuser -u nexustest -- ...``: reading a 0644 file but not writing it, not reading a 0600
file of root, not creating in root's 0755 directory, creating in a 1777 sticky directory but not
deleting root's file there, plus ownership rules (chmod/chown of others' files, chgrp to a
foreign group) and xattr writes on files the user cannot write.
"""
from __future__ import annotations

import os
import pwd

import pytest
from fusehelp import as_user

pytestmark = pytest.mark.fuse


@pytest.fixture
def tree(work, test_user):
    """Root-owned fixtures in a 0755 directory the test user can traverse."""
    (work / "public.txt").write_text("everyone may read this\n")
    os.chmod(work / "public.txt", 0o644)
    (work / "secret.txt").write_text("root only\n")
    os.chmod(work / "secret.txt", 0o600)
    (work / "rootdir").mkdir(mode=0o755)
    (work / "sticky").mkdir()
    os.chmod(work / "sticky", 0o1777)
    (work / "sticky/roots-file").write_text("mine, says root\n")
    os.chmod(work / "sticky/roots-file", 0o666)
    return work


def denied(r, what="Permission denied"):
    return r.returncode != 0 and what in r.stderr


def test_the_test_user_reaches_the_mount(tree, test_user):
    r = as_user(["ls", str(tree)])
    assert r.returncode == 0, r.stderr
    assert set(r.stdout.split()) == {"public.txt", "secret.txt", "rootdir", "sticky"}
    r = as_user(["id", "-u"])
    assert int(r.stdout) == pwd.getpwnam(test_user).pw_uid != 0


def test_user_can_read_a_0644_file_but_not_write_it(tree):
    r = as_user(["cat", str(tree / "public.txt")])
    assert r.returncode == 0 and r.stdout == "everyone may read this\n", r.stderr
    r = as_user(["sh", "-c", f"echo vandal >> '{tree}/public.txt'"])
    assert denied(r), (r.returncode, r.stderr)
    r = as_user(["python3", "-c", f"open('{tree}/public.txt', 'r+')"])
    assert "PermissionError" in r.stderr
    r = as_user(["truncate", "-s", "0", str(tree / "public.txt")])
    assert denied(r), r.stderr
    assert (tree / "public.txt").read_text() == "everyone may read this\n"


def test_user_cannot_read_a_0600_root_file(tree):
    r = as_user(["cat", str(tree / "secret.txt")])
    assert denied(r), (r.returncode, r.stdout, r.stderr)
    assert "root only" not in r.stdout
    # but stat works (the directory is searchable)
    r = as_user(["stat", "-c", "%a %U", str(tree / "secret.txt")])
    assert r.stdout.split() == ["600", "root"]


def test_user_cannot_create_in_a_0755_root_directory(tree):
    for cmd in (["touch", f"{tree}/rootdir/new"], ["mkdir", f"{tree}/rootdir/newdir"],
                ["ln", "-s", "x", f"{tree}/rootdir/link"], ["mkfifo", f"{tree}/rootdir/fifo"],
                ["mv", f"{tree}/public.txt", f"{tree}/rootdir/moved"]):
        r = as_user(cmd)
        assert denied(r), (cmd, r.returncode, r.stderr)
    assert os.listdir(tree / "rootdir") == []
    assert (tree / "public.txt").exists()
    r = as_user(["rm", "-f", str(tree / "public.txt")])      # unlink needs write on the dir
    assert denied(r), r.stderr
    assert (tree / "public.txt").exists()


def test_user_in_a_sticky_directory(tree, test_user):
    uid = pwd.getpwnam(test_user).pw_uid
    sticky = tree / "sticky"
    r = as_user(["sh", "-c", f"echo user-data > '{sticky}/users-file'"])
    assert r.returncode == 0, r.stderr
    st = os.stat(sticky / "users-file")
    assert st.st_uid == uid and (sticky / "users-file").read_text() == "user-data\n"
    r = as_user(["mkdir", str(sticky / "users-dir")])
    assert r.returncode == 0, r.stderr
    # root's file is world-writable, so the user may change its content ...
    r = as_user(["sh", "-c", f"echo appended >> '{sticky}/roots-file'"])
    assert r.returncode == 0, r.stderr
    # ... but the sticky bit forbids deleting or renaming it
    r = as_user(["rm", "-f", str(sticky / "roots-file")])
    assert denied(r, "Operation not permitted"), (r.returncode, r.stderr)
    r = as_user(["mv", str(sticky / "roots-file"), str(sticky / "stolen")])
    assert denied(r, "Operation not permitted"), (r.returncode, r.stderr)
    assert (sticky / "roots-file").read_text() == "mine, says root\nappended\n"
    # the user's own entries can go
    r = as_user(["rm", "-r", str(sticky / "users-file"), str(sticky / "users-dir")])
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(sticky)) == ["roots-file"]
    # root may delete anything
    (sticky / "x").write_text("x")
    os.chown(sticky / "x", uid, -1)
    os.unlink(sticky / "x")


def test_user_cannot_chmod_or_chown_what_it_does_not_own(tree, test_user):
    r = as_user(["chmod", "0666", str(tree / "public.txt")])
    assert denied(r, "Operation not permitted"), r.stderr
    assert os.stat(tree / "public.txt").st_mode & 0o777 == 0o644
    r = as_user(["touch", "-d", "2000-01-01", str(tree / "public.txt")])
    assert r.returncode != 0
    # its own file: chmod works, giving it away or to a foreign group does not
    r = as_user(["sh", "-c", f"echo x > '{tree}/sticky/own' && chmod 0600 '{tree}/sticky/own'"])
    assert r.returncode == 0, r.stderr
    assert os.stat(tree / "sticky/own").st_mode & 0o777 == 0o600
    r = as_user(["chown", "root", str(tree / "sticky/own")])
    assert denied(r, "Operation not permitted"), r.stderr
    r = as_user(["chgrp", "root", str(tree / "sticky/own")])
    assert denied(r, "Operation not permitted"), r.stderr
    r = as_user(["touch", "-d", "2000-01-01 00:00:00", str(tree / "sticky/own")])
    assert r.returncode == 0, r.stderr
    # root takes the file over: a chown drops its setuid bit
    os.chmod(tree / "sticky/own", 0o4755)
    os.chown(tree / "sticky/own", 0, 0)
    st = os.stat(tree / "sticky/own")
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, 0, 0o755)


def test_user_cannot_set_xattrs_on_files_it_cannot_write(tree):
    os.setxattr(tree / "public.txt", "user.tag", b"root")
    r = as_user(["getfattr", "-n", "user.tag", "--only-values", str(tree / "public.txt")])
    assert r.returncode == 0 and r.stdout == "root", r.stderr
    r = as_user(["setfattr", "-n", "user.tag", "-v", "user", str(tree / "public.txt")])
    assert denied(r), r.stderr
    r = as_user(["setfattr", "-x", "user.tag", str(tree / "public.txt")])
    assert denied(r), r.stderr
    r = as_user(["getfattr", "-n", "user.tag", str(tree / "secret.txt")])
    assert r.returncode != 0
    assert os.getxattr(tree / "public.txt", "user.tag") == b"root"
    os.setxattr(tree / "public.txt", "trusted.x", b"t")
    r = as_user(["getfattr", "-d", "-m", "-", str(tree / "public.txt")])
    assert "trusted.x" not in r.stdout and "user.tag" in r.stdout


def test_user_can_run_but_not_modify_root_scripts(tree):
    script = tree / "tool.sh"
    script.write_text("#!/bin/sh\nid -un\n")
    os.chmod(script, 0o755)
    r = as_user([str(script)])
    assert r.returncode == 0 and r.stdout.strip() == "nexustest", r.stderr
    os.chmod(script, 0o744)
    r = as_user([str(script)])
    assert denied(r), r.stderr
    os.mkdir(tree / "private", 0o700)
    (tree / "private/inside").write_text("x")
    assert denied(as_user(["ls", str(tree / "private")]))
    assert denied(as_user(["cat", str(tree / "private/inside")]))


def test_new_entries_belong_to_the_user_and_honour_its_umask(tree, test_user):
    pw = pwd.getpwnam(test_user)
    sticky = tree / "sticky"
    r = as_user(["sh", "-c", f"cd '{sticky}' && umask 077 && echo x > private && mkdir pdir"
                             f" && umask 022 && echo y > shared && ln -s shared link"])
    assert r.returncode == 0, r.stderr
    for name, mode in (("private", 0o600), ("pdir", 0o700), ("shared", 0o644)):
        s = os.stat(sticky / name)
        assert (s.st_uid, s.st_gid, s.st_mode & 0o7777) == (pw.pw_uid, pw.pw_gid, mode), name
    assert os.lstat(sticky / "link").st_uid == pw.pw_uid
    # the owner may read its own 0600 file
    assert as_user(["cat", str(sticky / "private")]).stdout == "x\n"
