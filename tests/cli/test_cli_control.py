"""The nexus subcommands that talk to the daemon (snapshot, log, undo, versions, cat, ls),
through click's CliRunner against a control server on a fake HistoryService."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner
from controlfake import LOG

from nexusfs import cli
from nexusfs.control.client import Target, locate


def nexus(*args, input=None):
    # click >= 8.2 keeps stderr apart from stdout
    return CliRunner().invoke(cli.main, [str(a) for a in args], input=input,
                              catch_exceptions=False)


@pytest.fixture
def at(data_dir, server):
    """The options that point a command at the test daemon."""
    return ["--data-dir", str(data_dir)]


def ok(result):
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return result


def failed(result, code=1):
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    return result


# -- snapshots --------------------------------------------------------------------------------
def test_snapshot_commands(at, fake):
    r = ok(nexus("snapshot", "create", "before", "/src", *at))
    assert r.stdout == "snapshot before of /src at seq 41\n"
    assert fake.last() == ("snapshot_create", ("before", "/src"), {})
    r = ok(nexus("snapshot", "list", *at))
    assert r.stdout.splitlines()[0].split() == ["NAME", "SEQ", "CREATED", "PATH"]
    ok(nexus("snapshot", "diff", "before", *at))
    assert fake.last() == ("snapshot_diff", ("before", None), {})
    r = ok(nexus("snapshot", "restore", "before", "/src/lib", *at))
    assert "3 entries changed" in r.stdout
    ok(nexus("snapshot", "rename", "before", "after", *at))
    assert fake.last() == ("snapshot_rename", ("before", "after"), {})
    ok(nexus("snapshot", "delete", "before", *at))
    assert fake.last() == ("snapshot_delete", ("before",), {})


def test_names_that_look_like_options_pass_through(at, fake):
    ok(nexus("snapshot", "create", *at, "--", "--weird"))
    assert fake.last() == ("snapshot_create", ("--weird", "/"), {})


def test_json_prints_the_data(at):
    r = ok(nexus("snapshot", "list", "--json", *at))
    assert [s["name"] for s in json.loads(r.stdout)] == ["before", "src-ok"]
    r = ok(nexus("log", "--json", *at))
    assert [rec["seq"] for rec in json.loads(r.stdout)] == [5, 6, 7, 8]


def test_service_error_is_one_line_and_exit_1(at):
    r = failed(nexus("snapshot", "delete", "nosuch", *at))
    assert r.stderr == "nexus: no snapshot nosuch\n" and r.stdout == ""


# -- log and undo -----------------------------------------------------------------------------
def test_log_with_filters(at, fake):
    r = ok(nexus("log", *at))
    lines = r.stdout.splitlines()
    assert len(lines) == 5 and lines[0].split()[0] == "SEQ"
    ok(nexus("log", "--agent", "bot-1", "--uid", 1000, "--path", "src", "--type", "write",
             "--since", "5", "--limit", 3, *at))
    assert fake.last("log")[2] == dict(agent="bot-1", uid=1000, path="/src", op="write",
                                       since_seq=5, since_ns=None, limit=3)
    ok(nexus("log", "--since", "10m", *at))
    assert fake.last("log")[2]["since_ns"] is not None


def test_log_usage_errors_are_exit_2(at, fake):
    failed(nexus("log", "--limit", 0, *at), 2)
    failed(nexus("log", "--uid", "root", *at), 2)
    r = failed(nexus("log", "--since", "yesterday", *at))   # the daemon judges --since
    assert r.stderr.startswith("nexus: log: --since takes")
    assert fake.calls == []


def test_undo_variants(at, fake):
    def last():
        return fake.last("undo")[2]
    r = ok(nexus("undo", *at))
    assert r.stdout.startswith("undid 7 (write /src/app.py), logged as 60")
    assert last() == dict(count=1, seq=None, agent=None, path=None, force=False)
    ok(nexus("undo", 3, *at))
    assert last()["count"] == 3
    ok(nexus("undo", "--seq", 6, "--force", *at))
    assert last() == dict(count=1, seq=6, agent=None, path=None, force=True)
    ok(nexus("undo", "--agent", "bot-1", *at))
    assert last()["agent"] == "bot-1"
    ok(nexus("undo", "2", "--path", "/src/app.py", *at))
    assert last()["count"] == 2 and last()["path"] == "/src/app.py"
    r = failed(nexus("undo", "--seq", 999, *at))
    assert r.stderr == "nexus: no operation 999\n"


def test_undo_usage_errors(at, fake):
    failed(nexus("undo", 0, *at), 2)
    failed(nexus("undo", "x", *at), 2)
    r = failed(nexus("undo", 2, "--seq", 5, *at), 2)
    assert "--seq names one operation" in r.stderr
    assert fake.calls == []


# -- versions and time travel -------------------------------------------------------------------
def test_versions(at, fake):
    r = ok(nexus("versions", "list", "/src/app.py", *at))
    assert [line.split()[0] for line in r.stdout.splitlines()] == ["SEQ", "5", "9"]
    r = ok(nexus("versions", "show", "/src/app.py", 9, *at))
    assert r.stdout_bytes == b"print(1)\nprint(3)\nprint(4)"        # exact bytes, no newline
    r = ok(nexus("versions", "diff", "/src/app.py", 5, *at))
    assert r.stdout.startswith("--- /src/app.py@5\n+++ /src/app.py@9\n")
    ok(nexus("versions", "diff", "/src/app.py", 5, 9, *at))
    assert fake.last("version_read") == ("version_read", ("/src/app.py", 9), {})
    r = ok(nexus("versions", "rollback", "/src/app.py", 5, *at))
    assert "rolled back to version 5" in r.stdout
    r = failed(nexus("versions", "list", "/never", *at))
    assert r.stderr == "nexus: /never never existed\n"
    failed(nexus("versions", "show", "/src/app.py", *at), 2)
    failed(nexus("versions", "show", "/src/app.py", "x", *at), 2)


def test_cat_and_ls_at(at, fake):
    r = ok(nexus("cat", "--at", 7, "/bin.dat", *at))
    assert r.stdout_bytes == b"\x00\xff\xfe binary \x80"
    r = ok(nexus("cat", "--at", 7, "/bin.dat", "--json", *at))
    assert json.loads(r.stdout)["base64"] == "AP/+IGJpbmFyeSCA"
    ok(nexus("cat", "--at", "src-ok", "/src/app.py", *at))
    assert fake.last("cat_at") == ("cat_at", ("/src/app.py", 20), {})
    r = ok(nexus("ls", "--at", 9, "/src", *at))
    assert r.stdout.splitlines()[1].endswith("lib/")
    ok(nexus("ls", "--at", 9, *at))
    assert fake.last("ls_at") == ("ls_at", ("/", 9), {})
    # without --at, cat and ls read the live tree (file commands: the fake daemon has none)
    failed(nexus("cat", "/src/app.py", *at), 1)
    failed(nexus("ls", *at), 1)


# -- finding the daemon ------------------------------------------------------------------------
def test_no_daemon_and_no_store_at_the_data_dir(tmp_path):
    d = tmp_path / "idle"
    d.mkdir()
    r = failed(nexus("snapshot", "list", "--data-dir", d))
    assert r.stderr == f"nexus: no nexusfs store in {d}\n"


def test_no_mount_running():
    r = failed(nexus("snapshot", "list"))
    assert "no nexusfs mount is running" in r.stderr


def test_the_only_mount_is_used_and_its_paths_translated(tmp_path, data_dir, server, fake,
                                                         register_mount, monkeypatch):
    mnt = tmp_path / "mnt"
    register_mount(mnt, data_dir)
    ok(nexus("versions", "list", mnt / "src" / "app.py"))
    assert fake.last() == ("versions_list", ("/src/app.py",), {})
    ok(nexus("snapshot", "create", "s", mnt))
    assert fake.last() == ("snapshot_create", ("s", "/"), {})
    ok(nexus("versions", "list", "/src/app.py"))           # a store path stays as it is
    assert fake.last() == ("versions_list", ("/src/app.py",), {})
    (mnt / "src").mkdir()
    monkeypatch.chdir(mnt / "src")
    ok(nexus("log", "--path", "app.py"))                     # relative to a directory inside
    assert fake.last("log")[2]["path"] == "/src/app.py"
    ok(nexus("undo", "--path", "../x"))
    assert fake.last("undo")[2]["path"] == "/x"


def test_several_mounts_need_mount_or_a_telling_path(tmp_path, data_dir, server, fake,
                                                     register_mount):
    register_mount(tmp_path / "m1", data_dir)
    register_mount(tmp_path / "m2", tmp_path / "elsewhere")
    r = failed(nexus("snapshot", "list"))
    assert "2 nexusfs mounts are running" in r.stderr and "--mount" in r.stderr
    assert r.stderr.count("\n") == 1
    ok(nexus("snapshot", "list", "--mount", tmp_path / "m1"))
    ok(nexus("versions", "list", tmp_path / "m1" / "src/app.py"))   # the path picks the mount
    assert fake.last() == ("versions_list", ("/src/app.py",), {})
    r = failed(nexus("snapshot", "list", "--mount", tmp_path / "m2"))
    assert "no control socket" in r.stderr


def test_mount_option_errors(tmp_path, data_dir, server):
    r = failed(nexus("snapshot", "list", "--mount", tmp_path))
    assert r.stderr == f"nexus: {tmp_path} is not a running nexusfs mount\n"
    r = failed(nexus("snapshot", "list", "--mount", tmp_path, "--data-dir", data_dir))
    assert "not both" in r.stderr


def test_data_dir_finds_its_mount_point_for_paths(tmp_path, data_dir, register_mount):
    register_mount(tmp_path / "m", data_dir)
    t = locate(data_dir=str(data_dir))
    assert t.mountpoint == str(tmp_path / "m")
    assert t.store_path(str(tmp_path / "m" / "a" / "b")) == "/a/b"


def test_target_store_paths(tmp_path):
    t = Target(tmp_path / "s", "/mnt/nexus")
    assert t.store_path("/mnt/nexus") == "/"
    assert t.store_path("/mnt/nexus/") == "/"
    assert t.store_path("/mnt/nexus/src/../a.py") == "/a.py"
    assert t.store_path("/mnt/nexusother/a") == "/mnt/nexusother/a"
    assert t.store_path("/src/a.py") == "/src/a.py"
    assert Target(tmp_path / "s").store_path("src//a.py") == "/src/a.py"


def test_broken_pipe_is_quiet(at, monkeypatch):
    import click

    def broken(*a, **k):
        raise BrokenPipeError
    monkeypatch.setattr(click, "echo", broken)
    from nexusfs.control import cli_commands
    monkeypatch.setattr(cli_commands.click, "echo", broken)
    r = nexus("log", *at)
    assert r.exit_code == 0


# -- as a real process -------------------------------------------------------------------------
NEXUS = [sys.executable, "-m", "nexusfs.cli"]


def test_real_process_binary_output_and_errors(data_dir, server):
    r = subprocess.run(NEXUS + ["versions", "show", "/bin.dat", "7", "--data-dir", str(data_dir)],
                       capture_output=True, timeout=60)
    assert r.returncode == 0 and r.stdout == b"\x00\xff\xfe binary \x80", r.stderr
    r = subprocess.run(NEXUS + ["snapshot", "delete", "nosuch", "--data-dir", str(data_dir)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stderr == "nexus: no snapshot nosuch\n"


def test_real_process_log_into_a_closed_pipe(data_dir, server, fake):
    fake.log_records = [dict(LOG[0], seq=n) for n in range(1, 100_001)]
    r = subprocess.run(" ".join(NEXUS) + f" log --data-dir {data_dir} | head -2; "
                       "echo status=${PIPESTATUS[0]}", shell=True, executable="/bin/bash",
                       capture_output=True, text=True, timeout=120)
    lines = r.stdout.splitlines()
    assert lines[0].split()[0] == "SEQ" and lines[1].split()[0] == "1"
    assert lines[2] == "status=0" and r.stderr == ""
