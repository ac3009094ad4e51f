"""The search commands of the control registry: grep, glob, search, reindex, index status.

Registered into commands.REGISTRY (imported at the end of commands.py), so the ctl file and
the socket both serve them. The queries run for the caller the kernel named; results hold
only what that caller may read. grep answers one page at a time (``--limit``, default 1000
lines) with a cursor in ``data["next"]`` that ``--after`` resumes from: the nexus CLI streams
a result set of any size that way, with bounded memory on both sides.

Errors: EINVAL for an invalid regex, glob or query (one line saying why), ENOENT for a
--path that does not exist. Concurrency: as every command (see commands.py).
"""
from __future__ import annotations

from ..search import ops
from .commands import Reply, command


def _search(svc):
    return svc.fs.search


def grep_text(results: list[dict], numbers: bool = True) -> str:
    """grep's own output format: path:line:text (path:text without numbers), path:count,
    path alone (files), and the line grep writes for a binary file that matches."""
    out = []
    for r in results:
        if "count" in r:
            out.append(f"{r['path']}:{r['count']}\n")
        elif r.get("binary"):
            out.append(f"{r['path']}: binary file matches\n")
        elif "line" in r:
            out.append(f"{r['path']}:{r['line']}:{r['text']}\n" if numbers else
                       f"{r['path']}:{r['text']}\n")
        else:
            out.append(f"{r['path']}\n")
    return "".join(out)


@command("grep PATTERN [--path P] [--file-pattern G] [--search-mode M] [--ignore-case] "
         "[--fixed-strings] [--files-with-matches] [--count] [--limit N] [--after CURSOR]",
         "lines matching a regex (grep -E syntax) in files and parsed documents, path order; "
         "a page of --limit lines (default 1000), --after resumes from data.next")
async def _grep(svc, a, caller):
    res = await ops.grep(
        _search(svc), caller, a["PATTERN"], path=a.path("--path", "/"),
        file_pattern=a["--file-pattern"], mode=a["--search-mode"] or "auto",
        ignore_case=bool(a["--ignore-case"]), fixed=bool(a["--fixed-strings"]),
        files_only=bool(a["--files-with-matches"]), count=bool(a["--count"]),
        limit=a.int("--limit", minimum=1) or 1000, after=ops.parse_cursor(a["--after"]))
    data = {"results": res["results"], "next": ops.format_cursor(res["next"]),
            "candidates": res["candidates"], "narrowed": res["narrowed"]}
    text = grep_text(res["results"])
    if data["next"]:
        text += f"(more: --after {data['next']!r})\n"
    return Reply(text, data)


@command("glob PATTERN [--path P] [--limit N]",
         "paths matching a glob (* ? [..] and ** for any directories), path order")
async def _glob(svc, a, caller):
    found = await ops.glob(_search(svc), caller, a["PATTERN"], path=a.path("--path", "/"),
                           limit=a.int("--limit", minimum=1))
    return Reply("".join(f"{g['path']}\n" for g in found), found)


@command("search [QUERY...] [--path P] [--limit N]",
         "files ranked by relevance (BM25) with the best line: words, \"phrases\", prefix*, "
         "OR, NOT; default 10 results")
async def _search_cmd(svc, a, caller):
    found = await ops.search(_search(svc), caller, " ".join(a["QUERY"] or []),
                             path=a.path("--path", "/"), limit=a.int("--limit", minimum=1) or 10)
    return Reply(ops.results_text(found), found)


@command("reindex", "rebuild the search index from scratch (in the background; see index status)")
async def _reindex(svc, a, caller):
    from errno import EPERM

    from ..types import FsError
    if caller.uid != 0:
        raise FsError(EPERM, "reindex: only root may rebuild the index")
    queued = await _search(svc).rebuild()
    return Reply(f"reindexing {queued} files\n", {"queued": queued})


@command("index status", "the search index: files indexed, backlog and its age (lag)")
async def _index_status(svc, a, caller):
    s = _search(svc).status()
    return Reply("".join(f"{k}: {v}\n" for k, v in s.items()), s)
