"""The control command registry: parsing, dispatch to the HistoryService, replies, errors."""
from __future__ import annotations

import base64
import errno
import json
import time
from datetime import datetime, timezone

import pytest
import trio
from controlfake import FakeHistory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hst

from nexusfs.control import commands
from nexusfs.control.commands import (MAX_COMMAND, CommandError, Reply, error_text, execute,
                                      execute_argv, parse_since, split_line, store_path)
from nexusfs.types import Caller, FsError

ME = Caller(uid=1000, gid=1000, pid=4242, agent="bot-1", process="python3")
NAMES = ["snapshot", "undo", "log", "versions", "cat", "ls", "stats", "gc", "help"]


@pytest.fixture
def svc():
    return FakeHistory()


async def run(svc, line, caller=ME) -> Reply:
    reply = await execute(svc, line, caller)
    assert isinstance(reply, Reply)
    assert reply.text == "" or reply.text.endswith("\n")
    json.dumps(reply.data)                       # always JSON-able
    return reply


async def fails(svc, line, code=errno.EINVAL) -> FsError:
    with pytest.raises(FsError) as info:
        await execute(svc, line, ME)
    assert info.value.errno == code, info.value
    return info.value


# -- the line --------------------------------------------------------------------------------
def test_split_line_shell_rules():
    assert split_line("snapshot create before /src\n") == ["snapshot", "create", "before", "/src"]
    assert split_line(b"  versions list '/a b/c d.txt'\r\n") == ["versions", "list", "/a b/c d.txt"]
    assert split_line('log --path "/x y" --type=write') == ["log", "--path", "/x y", "--type=write"]
    assert split_line("versions list /a\\ b") == ["versions", "list", "/a b"]
    assert split_line("log --path /#hash") == ["log", "--path", "/#hash"]   # '#' is no comment


@pytest.mark.parametrize("line, reason", [
    (b"", "empty"), (b"   \n", "empty"), ("", "empty"),
    (b"snapshot list\x00junk", "binary"), (b"\x01\x02\x03", "binary"),
    (b"\xff\xfe snapshot list", "UTF-8"), (b"snapshot create \xc3", "UTF-8"),
    (b"snapshot list\nundo\n", "one command"), ("undo\rlog", "one command"),
    ("snapshot create 'unbalanced", "parse"),
    (b"log " + b"x" * MAX_COMMAND, "64 KiB"), ("log " + "é" * (MAX_COMMAND // 2), "64 KiB"),
])
def test_split_line_rejects_garbage(line, reason):
    with pytest.raises(CommandError) as info:
        split_line(line)
    assert info.value.errno == errno.EINVAL
    assert reason in info.value.message


def test_a_line_of_exactly_the_limit_is_fine():
    line = b"help " + b"x" * (MAX_COMMAND - 5)
    assert len(line) == MAX_COMMAND
    assert split_line(line)[0] == "help"


def test_store_path_normalises():
    assert store_path("/src/app.py") == "/src/app.py"
    assert store_path("src/app.py") == "/src/app.py"
    assert store_path("//src/../src/./app.py/") == "/src/app.py"
    assert store_path("/") == "/"
    assert store_path("/..") == "/"
    with pytest.raises(CommandError):
        store_path("")
    with pytest.raises(CommandError):
        store_path("/a\0b")


# -- unknown commands and bad arguments ---------------------------------------------------------
@pytest.mark.parametrize("line", ["frobnicate", "Snapshot list", "--help", "snapshot", "snapshot foo",
                                  "versions", "'' list"])
async def test_unknown_command_lists_the_commands(svc, line):
    e = await fails(svc, line)
    assert "unknown command" in e.message
    assert all(name in e.message for name in NAMES)
    if line.startswith("snapshot"):
        assert "create, list, delete, rename, restore, diff" in e.message
    assert svc.calls == []


@pytest.mark.parametrize("line, reason", [
    ("snapshot create", "missing NAME"),
    ("snapshot create a /b /c", "unexpected argument '/c'"),
    ("snapshot rename a", "missing NEW"),
    ("snapshot list --all", "unknown option --all"),
    ("undo --force=yes", "--force takes no value"),
    ("undo --agent", "--agent needs a value"),
    ("undo --agent a --agent b", "--agent given twice"),
    ("undo 0", "N must be a positive integer"),
    ("undo -1", "N must be a positive integer"),
    ("undo two", "N must be a positive integer"),
    ("undo 99999999999999999999999", "N must be a positive integer"),
    ("undo 2 --seq 5", "--seq names one operation"),
    ("undo --seq 5 --agent x", "--seq names one operation"),
    ("undo seq", "missing S"),
    ("undo seq x", "S must be a non-negative integer"),
    ("log --uid root", "--uid must be"),
    ("log --limit 0", "--limit must be a positive integer"),
    ("log --since yesterday", "--since takes a seq"),
    ("versions show /a", "missing SEQ"),
    ("versions show /a 1.5", "SEQ must be"),
    ("versions diff /a", "missing SEQ1"),
    ("cat /a", "missing --at SEQ"),
    ("ls", "missing --at SEQ"),
    ("stats now", "unexpected argument 'now'"),
    ("help nothing", "no command 'nothing'"),
])
async def test_bad_arguments_are_einval_with_usage(svc, line, reason):
    e = await fails(svc, line)
    assert reason in e.message
    assert "usage: " in e.message and "commands: snapshot" in e.message
    assert [c for c in svc.calls if c[0] != "snapshot_list"] == []


async def test_error_text_of_a_command_error_lists_every_command(svc):
    e = await fails(svc, "bogus")
    text = error_text(e)
    assert text.startswith("error: EINVAL: unknown command 'bogus'")
    for cmd in commands.REGISTRY:
        assert cmd.spec in text
    other = error_text(FsError(errno.ENOENT, "no snapshot x"))
    assert other == "error: ENOENT: no snapshot x\n"


def test_argv_checks():
    for bad in ([], "snapshot list", [1, 2], ["log", None], ["log", "--path", "/a\0b"],
                ["help", "x" * MAX_COMMAND]):
        with pytest.raises(CommandError):
            trio.run(execute_argv, FakeHistory(), bad, ME)


async def test_double_dash_ends_options(svc):
    await run(svc, "snapshot create -- --odd-name /src")
    assert svc.last() == ("snapshot_create", ("--odd-name", "/src"), {})


# -- dispatch ---------------------------------------------------------------------------------
@pytest.mark.parametrize("line, call", [
    ("snapshot create before", ("snapshot_create", ("before", "/"), {})),
    ("snapshot create before src/", ("snapshot_create", ("before", "/src"), {})),
    ("snapshot list", ("snapshot_list", (), {})),
    ("snapshot delete before", ("snapshot_delete", ("before",), {})),
    ("snapshot rename before after", ("snapshot_rename", ("before", "after"), {})),
    ("snapshot restore before", ("snapshot_restore", ("before", None), {})),
    ("snapshot restore before /src/a", ("snapshot_restore", ("before", "/src/a"), {})),
    ("snapshot diff before", ("snapshot_diff", ("before", None), {})),
    ("undo", ("undo", (), dict(count=1, seq=None, agent=None, path=None, force=False))),
    ("undo 3", ("undo", (), dict(count=3, seq=None, agent=None, path=None, force=False))),
    ("undo seq 7", ("undo", (), dict(count=1, seq=7, agent=None, path=None, force=False))),
    ("undo seq 7 --force", ("undo", (), dict(count=1, seq=7, agent=None, path=None, force=True))),
    ("undo --seq 0", ("undo", (), dict(count=1, seq=0, agent=None, path=None, force=False))),
    ("undo --agent bot-1", ("undo", (), dict(count=1, seq=None, agent="bot-1", path=None,
                                             force=False))),
    ("undo 2 --path src/app.py --force", ("undo", (), dict(count=2, seq=None, agent=None,
                                                           path="/src/app.py", force=True))),
    ("log", ("log", (), dict(agent=None, uid=None, path=None, op=None, since_seq=None,
                             since_ns=None, limit=None))),
    ("log --agent bot-1 --uid 1000 --path /src --type write --since 12 --limit 5",
     ("log", (), dict(agent="bot-1", uid=1000, path="/src", op="write", since_seq=12,
                      since_ns=None, limit=5))),
    ("versions list /src/app.py", ("versions_list", ("/src/app.py",), {})),
    ("versions show /src/app.py 5", ("version_read", ("/src/app.py", 5), {})),
    ("versions rollback /src/app.py 5", ("versions_rollback", ("/src/app.py", 5), {})),
    ("cat --at 9 /src/app.py", ("cat_at", ("/src/app.py", 9), {})),
    ("cat /src/app.py --at=9", ("cat_at", ("/src/app.py", 9), {})),
    ("ls --at 9", ("ls_at", ("/", 9), {})),
    ("ls --at 9 /src", ("ls_at", ("/src", 9), {})),
    ("stats", ("stats", (), {})),
    ("gc", ("gc", (), {})),
])
async def test_dispatch(svc, line, call):
    await run(svc, line)
    assert svc.last(call[0]) == call


async def test_caller_is_passed_to_mutations(svc):
    for line in ("snapshot create s", "snapshot delete before", "snapshot rename a b",
                 "snapshot restore s", "undo", "versions rollback /a 1"):
        await run(svc, line)
    assert svc.callers == [ME] * 6


# -- replies ----------------------------------------------------------------------------------
async def test_snapshot_replies(svc):
    r = await run(svc, "snapshot create before /src")
    assert r.data == {"name": "before", "seq": 41, "path": "/src"}
    assert r.text == "snapshot before of /src at seq 41\n"
    r = await run(svc, "snapshot list")
    assert [s["name"] for s in r.data] == ["before", "src-ok"]
    lines = r.text.splitlines()
    assert lines[0].split() == ["NAME", "SEQ", "CREATED", "PATH"]
    assert lines[1].startswith("before") and lines[2].rstrip().endswith("/src")
    r = await run(svc, "snapshot diff before")
    assert r.text == "A /src/new.py\nD /old.txt\nM /src/app.py\n"
    assert r.data[0] == {"change": "added", "path": "/src/new.py"}
    r = await run(svc, "snapshot restore before /src")
    assert r.data["changed"] == 3 and "undo seq 50" in r.text
    r = await run(svc, "snapshot delete before")
    assert r.data == {"deleted": "before"} and r.text == "snapshot before deleted\n"
    r = await run(svc, "snapshot rename a b")
    assert r.data == {"old": "a", "new": "b"}


async def test_undo_reply(svc):
    r = await run(svc, "undo 2")
    assert [u["undone"] for u in r.data] == [7, 6]
    assert r.text.splitlines()[0] == "undid 7 (write /src/app.py), logged as 60"


async def test_log_reply(svc):
    r = await run(svc, "log")
    assert [rec["seq"] for rec in r.data] == [5, 6, 7, 8]
    lines = r.text.splitlines()
    assert lines[0].split() == ["SEQ", "TIME", "UID", "WHO", "OP", "PATH"]
    assert "bot-1 (python3)" in lines[1] and lines[1].endswith("/src/app.py")
    assert lines[2].endswith("/a -> /b")
    assert lines[3].endswith("[ENOENT]")
    assert lines[4].endswith("(undo of 6)")
    r = await run(svc, "log --agent nobody")
    assert r.data == [] and r.text == "no matching operations\n"


async def test_versions_replies(svc):
    r = await run(svc, "versions list /src/app.py")
    assert [v["seq"] for v in r.data] == [5, 9]
    assert r.text.splitlines()[0].split() == ["SEQ", "TIME", "SIZE", "MODIFIED", "NAME"]
    r = await run(svc, "versions show /src/app.py 9")
    assert base64.b64decode(r.data["base64"]) == b"print(1)\nprint(3)\nprint(4)"
    assert r.data["size"] == 26 and r.data["seq"] == 9 and r.data["path"] == "/src/app.py"
    assert r.text == "print(1)\nprint(3)\nprint(4)\n"         # a newline added for the text
    r = await run(svc, "versions rollback /src/app.py 5")
    assert r.data == {"seq": 70, "path": "/src/app.py", "version": 5}
    assert "rolled back to version 5" in r.text


async def test_binary_content_is_base64_and_replaced_in_text(svc):
    r = await run(svc, "versions show /bin.dat 7")
    assert base64.b64decode(r.data["base64"]) == b"\x00\xff\xfe binary \x80"
    assert "\ufffd" in r.text


async def test_versions_diff(svc):
    r = await run(svc, "versions diff /src/app.py 5 9")
    assert r.text.splitlines()[:2] == ["--- /src/app.py@5", "+++ /src/app.py@9"]
    assert "-print(2)\n+print(3)\n+print(4)\n\\ No newline at end of file\n" in r.text
    assert r.data["from"] == 5 and r.data["to"] == 9 and not r.data["identical"]
    assert r.data["diff"] == r.text
    r2 = await run(svc, "versions diff /src/app.py 5")      # default: the newest version
    assert r2.data["to"] == 9 and r2.text == r.text
    r3 = await run(svc, "versions diff /same.txt 1 2")
    assert r3.data["identical"] and "identical" in r3.text and r3.data["diff"] == ""
    r4 = await run(svc, "versions diff /bin.dat 7 7")
    assert r4.data["binary"]


async def test_cat_and_ls_at(svc):
    r = await run(svc, "cat --at 6 /src/app.py")
    assert base64.b64decode(r.data["base64"]) == b"print(1)\nprint(2)\n"
    r = await run(svc, "cat --at src-ok /src/app.py")       # a snapshot name for --at
    assert svc.last("cat_at") == ("cat_at", ("/src/app.py", 20), {})
    e = await fails(svc, "cat --at nosuch /src/app.py", errno.ENOENT)
    assert "nosuch" in e.message
    r = await run(svc, "ls --at 9 /src")
    lines = r.text.splitlines()
    assert lines[0].startswith("-rw-r--r--") and lines[0].endswith("app.py")
    assert lines[1].startswith("drwxr-xr-x") and lines[1].endswith("lib/")
    r = await run(svc, "ls --at 9 /empty")
    assert r.data == [] and r.text == ""


async def test_stats_gc_help(svc):
    r = await run(svc, "stats")
    assert "files: 12\n" in r.text and "logical_bytes: 3.0 MiB\n" in r.text
    assert "dedup.ratio: 1.5\n" in r.text
    r = await run(svc, "gc")
    assert r.data == {"chunks_freed": 4, "bytes_freed": 2048}
    r = await run(svc, "help")
    assert len(r.data["commands"]) == len(commands.REGISTRY)
    for cmd in commands.REGISTRY:
        assert cmd.spec in r.text
    r = await run(svc, "help snapshot")
    assert [c["usage"].split()[1] for c in r.data["commands"]] == [
        "create", "list", "delete", "rename", "restore", "diff"]


# -- errors from the service ---------------------------------------------------------------------
async def test_service_errors_pass_through(svc):
    svc.fail["snapshot_create"] = FsError(errno.EEXIST, "snapshot before exists")
    e = await fails(svc, "snapshot create before", errno.EEXIST)
    assert e.message == "snapshot before exists"
    e = await fails(svc, "snapshot delete nosuch", errno.ENOENT)
    assert e.message == "no snapshot nosuch"
    svc.fail["undo"] = FsError(errno.EBUSY, "seq 9 (write /src/app.py) changed it since")
    e = await fails(svc, "undo", errno.EBUSY)
    assert "seq 9" in e.message and not isinstance(e, CommandError)


async def test_unimplemented_and_buggy_service(svc):
    svc.fail["gc"] = NotImplementedError()
    e = await fails(svc, "gc", errno.ENOSYS)
    assert "gc" in e.message
    svc.fail["stats"] = KeyError("boom")
    e = await fails(svc, "stats", errno.EIO)
    assert "internal error" in e.message


async def test_cancellation_is_not_swallowed(svc):
    svc.gates["gc"] = trio.Event()
    with trio.move_on_after(0.05) as scope:
        await execute(svc, "gc", ME)
    assert scope.cancelled_caught


# -- --since -----------------------------------------------------------------------------------
def test_parse_since():
    now = 1_000_000 * 10**9
    assert parse_since("42", now) == (42, None)
    assert parse_since("10m", now) == (None, now - 600 * 10**9)
    assert parse_since("1.5h", now) == (None, now - 5400 * 10**9)
    assert parse_since("2d", now) == (None, now - 2 * 86400 * 10**9)
    assert parse_since("1w", now) == (None, now - 7 * 86400 * 10**9)
    utc = parse_since("2025-11-21T17:53:20Z")
    assert utc == (None, int(datetime(2025, 11, 21, 17, 53, 20, tzinfo=timezone.utc).timestamp())
                   * 10**9)
    local = parse_since("2025-11-21 17:53:20.250")
    assert local[1] == int(time.mktime((2025, 11, 21, 17, 53, 20, 0, 0, -1))) * 10**9 + 250_000_000
    assert parse_since("2025-11-21")[1] is not None
    for bad in ("yesterday", "10x", "-5", "", "1e3"):
        with pytest.raises(ValueError):
            parse_since(bad, now)


async def test_log_since_age_and_time(svc):
    before = time.time_ns()
    await run(svc, "log --since 10m")
    kw = svc.last("log")[2]
    assert kw["since_seq"] is None
    assert before - 600 * 10**9 - 10**9 < kw["since_ns"] <= time.time_ns() - 600 * 10**9
    await run(svc, "log --since 2025-11-21T00:00:00+00:00")
    assert svc.last("log")[2]["since_ns"] == 1763683200 * 10**9


# -- fuzz --------------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hst.one_of(hst.binary(max_size=300),
                  hst.text(max_size=200),
                  hst.lists(hst.sampled_from(["snapshot", "create", "list", "undo", "log", "seq",
                                              "--agent", "--path", "--since", "--at", "--force",
                                              "--limit", "1", "0", "-3", "/a", "x y", "'", '"',
                                              "\\", "--", "versions", "diff", "cat", "ls",
                                              "help", "=", "--seq=4", "10m", "\x00", "é"]),
                            max_size=8).map(" ".join)))
def test_garbage_never_escapes_as_anything_but_fserror(line):
    async def attempt():
        try:
            reply = await execute(FakeHistory(), line, ME)
        except FsError:
            return
        assert isinstance(reply, Reply)
        json.dumps(reply.data)
    trio.run(attempt)
