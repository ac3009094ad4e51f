"""The nexus subcommands that ask a running daemon through its control socket: snapshot, log,
undo, versions, cat and ls (``register(main)`` adds them to the nexus group).

Each finds the daemon (``--mount MNT``, ``--data-dir DIR``, else the only running mount, or the
mount that holds a path it was given) or, when no daemon serves the store, opens the store
itself (control/door.py); turns paths under the mount point into store paths, runs one argv
request and prints the reply: the daemon's text (line by line, so ``| head``
stops it cleanly), raw bytes for file contents, or the reply's data as JSON with ``--json``.
Exit codes as everywhere in nexus: 0 ok, 1 the operation failed ("nexus: message" on stderr),
2 usage errors (click's). Synchronous; one request per invocation.
"""
from __future__ import annotations

import base64
import json
import os
import sys

import click

from .client import ControlError
from .door import ask


def _fail(message: str, code: int = 1):
    click.echo(f"nexus: {message}", err=True)
    sys.exit(code)


def _daemon_options(fn):
    fn = click.option("--json", "as_json", is_flag=True, help="Print the reply's data as JSON.")(fn)
    fn = click.option("--data-dir", envvar="NEXUS_DATA_DIR", type=click.Path(file_okay=False),
                      help="The store (asked through its daemon, or opened here when not "
                           "mounted; default: the store the current directory is in).")(fn)
    fn = click.option("--mount", "mount", type=click.Path(file_okay=False),
                      help="The mount point whose daemon to ask (default: the only one).")(fn)
    return fn


def _ask(mount, data_dir, as_json, build, *, paths=(), raw=False):
    """Ask the daemon (or the store opened here when none serves it) the argv that
    ``build(store_path)`` makes, print the reply."""
    try:
        want = ("data",) if as_json or raw else ("text",)
        reply = ask(mount, data_dir, build, hints=paths, want=want)
    except ControlError as e:
        _fail(str(e))
    data = reply.get("data")
    try:
        if as_json:
            click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        elif raw and isinstance(data, dict) and "base64" in data:
            out = sys.stdout.buffer
            out.write(base64.b64decode(data["base64"]))
            out.flush()
        else:
            for line in (reply.get("text") or "").splitlines(keepends=True):
                click.echo(line, nl=False)
            sys.stdout.flush()
    except BrokenPipeError:          # `nexus log | head`: the reader has what it wanted
        try:                         # and Python must not complain when it flushes at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        sys.exit(0)


def _opt(flag: str, value) -> list[str]:
    return [] if value is None or value is False else [flag] if value is True else [flag, str(value)]


# -- snapshot -----------------------------------------------------------------------------------
@click.group()
def snapshot():
    """Named states of the tree: create, list, diff, restore, delete, rename."""


@snapshot.command("create")
@click.argument("name")
@click.argument("path", required=False)
@_daemon_options
def snapshot_create(name, path, mount, data_dir, as_json):
    """Name the current state of PATH (default: the whole tree)."""
    _ask(mount, data_dir, as_json, lambda sp: ["snapshot", "create", "--", name] +
         ([sp(path)] if path else []), paths=[path])


@snapshot.command("list")
@_daemon_options
def snapshot_list(mount, data_dir, as_json):
    """The snapshots, oldest first."""
    _ask(mount, data_dir, as_json, lambda sp: ["snapshot", "list"])


@snapshot.command("diff")
@click.argument("name")
@click.argument("path", required=False)
@_daemon_options
def snapshot_diff(name, path, mount, data_dir, as_json):
    """What changed since snapshot NAME (A added, D deleted, M modified, R replaced)."""
    _ask(mount, data_dir, as_json, lambda sp: ["snapshot", "diff", "--", name] +
         ([sp(path)] if path else []), paths=[path])


@snapshot.command("restore")
@click.argument("name")
@click.argument("path", required=False)
@_daemon_options
def snapshot_restore(name, path, mount, data_dir, as_json):
    """Make the snapshot's tree (or PATH inside it) look as it did; undoable."""
    _ask(mount, data_dir, as_json, lambda sp: ["snapshot", "restore", "--", name] +
         ([sp(path)] if path else []), paths=[path])


@snapshot.command("delete")
@click.argument("name")
@_daemon_options
def snapshot_delete(name, mount, data_dir, as_json):
    """Forget snapshot NAME."""
    _ask(mount, data_dir, as_json, lambda sp: ["snapshot", "delete", "--", name])


@snapshot.command("rename")
@click.argument("old")
@click.argument("new")
@_daemon_options
def snapshot_rename(old, new, mount, data_dir, as_json):
    """Rename snapshot OLD to NEW."""
    _ask(mount, data_dir, as_json, lambda sp: ["snapshot", "rename", "--", old, new])


# -- log and undo -------------------------------------------------------------------------------
@click.command("log")
@click.option("--agent", help="Only operations of this agent (NEXUS_AGENT).")
@click.option("--uid", type=click.IntRange(min=0), help="Only operations of this user id.")
@click.option("--path", "path", help="Only operations on this path.")
@click.option("--type", "op", help="Only operations of this type (write, rename, unlink...).")
@click.option("--since", help="From this seq, ISO time, or age (10m, 2h, 3d).")
@click.option("--limit", type=click.IntRange(min=1), help="Only the newest N.")
@_daemon_options
def log_cmd(agent, uid, path, op, since, limit, mount, data_dir, as_json):
    """The operation log, oldest first."""
    _ask(mount, data_dir, as_json, lambda sp: ["log"] + _opt("--agent", agent) +
         _opt("--uid", uid) + _opt("--path", sp(path) if path else None) + _opt("--type", op) +
         _opt("--since", since) + _opt("--limit", limit), paths=[path])


@click.command("undo")
@click.argument("count", metavar="[N]", required=False, type=click.IntRange(min=1))
@click.option("--seq", type=click.IntRange(min=0), help="Undo this one operation.")
@click.option("--agent", help="Undo the last operation(s) of this agent.")
@click.option("--path", "path", help="Undo the last operation(s) on this path.")
@click.option("--force", is_flag=True, help="Undo even when later changes conflict.")
@_daemon_options
def undo(count, seq, agent, path, force, mount, data_dir, as_json):
    """Undo your last N operations (default 1), or one by --seq, --agent or --path.

    An undo is itself logged and can be undone."""
    if seq is not None and (count is not None or agent is not None or path is not None):
        raise click.UsageError("--seq names one operation; it does not combine with N, "
                               "--agent or --path")
    _ask(mount, data_dir, as_json, lambda sp: ["undo"] + ([str(count)] if count else []) +
         _opt("--seq", seq) + _opt("--agent", agent) +
         _opt("--path", sp(path) if path else None) + _opt("--force", force), paths=[path])


# -- versions and time travel -------------------------------------------------------------------
@click.group()
def versions():
    """The versions of a file: list, show, diff, rollback."""


@versions.command("list")
@click.argument("path")
@_daemon_options
def versions_list(path, mount, data_dir, as_json):
    """The versions of PATH (deleted files too), oldest first."""
    _ask(mount, data_dir, as_json, lambda sp: ["versions", "list", sp(path)], paths=[path])


@versions.command("show")
@click.argument("path")
@click.argument("seq", type=click.IntRange(min=0))
@_daemon_options
def versions_show(path, seq, mount, data_dir, as_json):
    """Write the content of version SEQ of PATH to stdout."""
    _ask(mount, data_dir, as_json, lambda sp: ["versions", "show", sp(path), str(seq)],
         paths=[path], raw=True)


@versions.command("diff")
@click.argument("path")
@click.argument("seq1", type=click.IntRange(min=0))
@click.argument("seq2", type=click.IntRange(min=0), required=False)
@_daemon_options
def versions_diff(path, seq1, seq2, mount, data_dir, as_json):
    """Unified diff of PATH from version SEQ1 to SEQ2 (default: the newest)."""
    _ask(mount, data_dir, as_json, lambda sp: ["versions", "diff", sp(path), str(seq1)] +
         ([str(seq2)] if seq2 is not None else []), paths=[path])


@versions.command("rollback")
@click.argument("path")
@click.argument("seq", type=click.IntRange(min=0))
@_daemon_options
def versions_rollback(path, seq, mount, data_dir, as_json):
    """Make version SEQ the content of PATH again (as a new version: nothing is lost)."""
    _ask(mount, data_dir, as_json, lambda sp: ["versions", "rollback", sp(path), str(seq)],
         paths=[path])


@click.command("cat")
@click.option("--at", "at", required=True, metavar="SEQ",
              help="A sequence number or a snapshot name.")
@click.argument("path")
@_daemon_options
def cat(at, path, mount, data_dir, as_json):
    """Write PATH's content as of SEQ (or snapshot) to stdout."""
    _ask(mount, data_dir, as_json, lambda sp: ["cat", "--at", at, sp(path)], paths=[path],
         raw=True)


@click.command("ls")
@click.option("--at", "at", required=True, metavar="SEQ",
              help="A sequence number or a snapshot name.")
@click.argument("path", required=False)
@_daemon_options
def ls(at, path, mount, data_dir, as_json):
    """List directory PATH (default: the root) as of SEQ (or snapshot)."""
    _ask(mount, data_dir, as_json, lambda sp: ["ls", "--at", at, sp(path or "/")], paths=[path])


def register(group: click.Group) -> None:
    from .cli_rebac import rebac
    for cmd in (snapshot, log_cmd, undo, versions, cat, ls, rebac):
        group.add_command(cmd)
