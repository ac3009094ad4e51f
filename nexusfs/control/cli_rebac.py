"""``nexus rebac``: relationship grants through the daemon's control socket.

Paths may be given under the mount point (``/mnt/nexus/projects``) or as store paths; a
team is ``team:NAME``. Exit codes: 0 ok (for ``check``: allowed), 1 the operation failed,
2 usage, 3 ``check`` answered "denied". Synchronous; one request per invocation.
"""
from __future__ import annotations

import json
import sys

import click

from .cli_commands import _daemon_options, _fail, _opt
from .client import ControlError
from .door import ask


def _obj(sp, value: str) -> str:
    return value if value.startswith("team:") else sp(value)


def _run(mount, data_dir, as_json, build, paths=()):
    try:
        reply = ask(mount, data_dir, build,
                    hints=[p for p in paths if p and not p.startswith("team:")],
                    want=("data",) if as_json else ("text", "data"))
    except ControlError as e:
        _fail(str(e))
    if as_json:
        click.echo(json.dumps(reply.get("data"), indent=2, ensure_ascii=False))
    else:
        click.echo(reply.get("text") or "", nl=False)
    return reply.get("data")


@click.group()
def rebac():
    """Relationship grants: owner-of, editor-of, viewer-of on paths; member-of on teams.

    A grant on a directory covers everything below it and follows it through renames.
    Subjects: user:NAME|UID, group:NAME|GID (a Unix group), team:NAME (a nexus group).
    """


@rebac.command("create")
@click.argument("subject")
@click.argument("relation")
@click.argument("object")
@click.option("--expires", metavar="TIME", help="ISO 8601 time after which the grant has no effect.")
@_daemon_options
def create(subject, relation, object, expires, mount, data_dir, as_json):
    """Grant SUBJECT the RELATION on OBJECT (a path, or team:NAME for member-of)."""
    _run(mount, data_dir, as_json, lambda sp: ["rebac", "create"] + _opt("--expires", expires)
         + ["--", subject, relation, _obj(sp, object)], paths=[object])


@rebac.command("delete")
@click.argument("who")
@click.argument("relation", required=False)
@click.argument("object", required=False)
@_daemon_options
def delete(who, relation, object, mount, data_dir, as_json):
    """Remove grant number WHO, or the grant WHO RELATION OBJECT."""
    _run(mount, data_dir, as_json, lambda sp: ["rebac", "delete", "--", who] +
         ([relation] if relation else []) + ([_obj(sp, object)] if object else []),
         paths=[object])


@rebac.command("list")
@_daemon_options
def list_(mount, data_dir, as_json):
    """The grants you can see."""
    _run(mount, data_dir, as_json, lambda sp: ["rebac", "list"])


@rebac.command("check")
@click.argument("subject")
@click.argument("action", type=click.Choice(["read", "write", "execute", "list"]))
@click.argument("path")
@_daemon_options
def check(subject, action, path, mount, data_dir, as_json):
    """Would user SUBJECT be allowed ACTION on PATH? Prints the decision and why; exits 0
    when allowed, 3 when denied."""
    data = _run(mount, data_dir, as_json, lambda sp: ["rebac", "check", "--", subject, action,
                                                      sp(path)], paths=[path])
    sys.exit(0 if data and data.get("allowed") else 3)


@rebac.command("expand")
@click.argument("relation")
@click.argument("object")
@_daemon_options
def expand(relation, object, mount, data_dir, as_json):
    """Who holds RELATION on OBJECT (directly, through a directory above, through teams)."""
    _run(mount, data_dir, as_json, lambda sp: ["rebac", "expand", "--", relation,
                                               _obj(sp, object)], paths=[object])
