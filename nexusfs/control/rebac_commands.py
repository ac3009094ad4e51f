"""The ``rebac`` commands of the control registry (ctl file and socket): create, delete, list,
check and expand relationship grants. Each runs for its caller; core/grants.py decides who
may change what. Stateless; see commands.py for the concurrency rules.
"""
from __future__ import annotations

from .commands import Reply, _lines, command, store_path
from ..core.grants import GrantOps


def _obj(a, key: str) -> str:
    value = a[key]
    return value if value.startswith("team:") else store_path(value, a.cmd)


def _ops(svc) -> GrantOps:
    return GrantOps(svc.fs)


@command("rebac create SUBJECT RELATION OBJECT [--expires TIME]",
         "grant: SUBJECT is user:NAME|UID, group:NAME|GID or team:NAME; RELATION is owner-of, "
         "editor-of, viewer-of (OBJECT a path) or member-of (OBJECT team:NAME); TIME in ISO 8601")
async def _create(svc, a, caller):
    g = await _ops(svc).create(a["SUBJECT"], a["RELATION"], _obj(a, "OBJECT"), a["--expires"],
                               caller)
    until = f" until {g['expires']}" if g["expires"] else ""
    return Reply(f"grant {g['id']}: {g['subject']} {g['relation']} {g['object']}{until}\n", g)


@command("rebac delete WHO [RELATION] [OBJECT]",
         "remove grant number WHO, or the grant WHO RELATION OBJECT")
async def _delete(svc, a, caller):
    who = a["WHO"]
    if who.isdigit() and a["RELATION"] is None:
        r = await _ops(svc).delete([int(who)], None, None, None, caller)
    else:
        obj = _obj(a, "OBJECT") if a["OBJECT"] else None
        r = await _ops(svc).delete(None, who, a["RELATION"], obj, caller)
    return Reply(f"{r['deleted']} grant(s) removed\n", r)


@command("rebac list", "the grants (those on paths you cannot reach are not shown)")
async def _list(svc, a, caller):
    rows = _ops(svc).list(caller)
    lines = []
    for r in rows:
        until = f"  until {r['expires']}" + (" (expired)" if r["expired"] else "") \
            if r["expires"] else ""
        lines.append(f"{r['id']:>5}  {r['subject']} {r['relation']} {r['object']}{until}\n")
    return Reply(_lines(lines), rows)


@command("rebac check SUBJECT ACTION PATH",
         "would user SUBJECT be allowed ACTION (read, write, execute, list) on PATH, and why")
async def _check(svc, a, caller):
    r = _ops(svc).check(a["SUBJECT"], a["ACTION"], a.path("PATH"))
    verdict = "allowed" if r["allowed"] else "denied"
    return Reply(f"{verdict}: {r['subject']} {r['action']} {r['path']}\n"
                 + "".join(f"  because {w}\n" for w in r["why"]), r)


@command("rebac expand RELATION OBJECT", "who holds RELATION on OBJECT, and through what")
async def _expand(svc, a, caller):
    rows = _ops(svc).expand(a["RELATION"], _obj(a, "OBJECT"))
    return Reply(_lines(f"{r['subject']}  via {' -> '.join(r['via'])}\n" for r in rows), rows)
