"""Human text for control replies: times, sizes, tables, log lines, listings, unified diffs.

Owns only presentation: pure functions from the plain data the HistoryService returns to lines
of text (each ending in a newline). No I/O, no state, so safe from any task or thread. Record
fields are read with ``.get`` so that an extra or missing field never breaks a reply.
"""
from __future__ import annotations

import difflib
import errno as errno_mod
import stat as st
import time
from collections.abc import Iterable, Iterator

_TYPE_BITS = {"file": st.S_IFREG, "dir": st.S_IFDIR, "symlink": st.S_IFLNK}
_CHANGE_MARK = {"added": "A", "deleted": "D", "modified": "M", "replaced": "R"}


def fmt_time(ns: int | None) -> str:
    """Local time to the second, as a table cell."""
    if ns is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ns / 1e9))


def human_size(n: int | float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def errno_name(value) -> str:
    if isinstance(value, int):
        return errno_mod.errorcode.get(value, str(value))
    return str(value)


def table(header: list[str] | None, rows: Iterable[list], right: Iterable[int] = ()) -> list[str]:
    """Columns padded to their widest cell; columns listed in ``right`` are right-aligned."""
    cells = [[str(c) for c in header]] if header else []
    cells += [[("-" if c is None else str(c)) for c in r] for r in rows]
    if not cells:
        return []
    ncol = len(cells[0])
    widths = [max(len(r[i]) for r in cells) for i in range(ncol)]
    right = set(right)
    out = []
    for r in cells:
        parts = [r[i].rjust(widths[i]) if i in right else r[i].ljust(widths[i])
                 for i in range(ncol)]
        out.append("  ".join(parts).rstrip() + "\n")
    return out


# -- per-command renderings ---------------------------------------------------------------------
LOG_HEADER = f"{'SEQ':>8}  {'TIME':19}  {'UID':>5}  {'WHO':18}  {'OP':15}  PATH\n"


def log_line(rec: dict) -> str:
    """One log record on one line, at fixed widths so a long log can stream."""
    agent, process = rec.get("agent"), rec.get("process")
    who = f"{agent} ({process})" if agent and process else (agent or process or "-")
    where = rec.get("path") or "-"
    if rec.get("path2"):
        where += f" -> {rec['path2']}"
    tail = ""
    if rec.get("result"):
        tail += f"  [{errno_name(rec['result'])}]"
    if rec.get("undo_of") is not None:
        tail += f"  (undo of {rec['undo_of']})"
    uid = rec.get("uid")
    return (f"{rec.get('seq', '?'):>8}  {fmt_time(rec.get('time_ns')):19}  "
            f"{'-' if uid is None else uid:>5}  {who:18}  {rec.get('op', '?'):15}  {where}{tail}\n")


def log_lines(records: list[dict]) -> Iterator[str]:
    if not records:
        yield "no matching operations\n"
        return
    yield LOG_HEADER
    for rec in records:
        yield log_line(rec)


def snapshot_lines(snaps: list[dict]) -> list[str]:
    if not snaps:
        return ["no snapshots\n"]
    return table(["NAME", "SEQ", "CREATED", "PATH"],
                 ([s.get("name"), s.get("seq"), fmt_time(s.get("created_ns")), s.get("path")]
                  for s in snaps), right=[1])


def change_lines(changes: list[dict], name: str) -> list[str]:
    if not changes:
        return [f"no changes since snapshot {name}\n"]
    return [f"{_CHANGE_MARK.get(c.get('change'), '?')} {c.get('path')}\n" for c in changes]


def version_lines(versions: list[dict], path: str) -> list[str]:
    if not versions:
        return [f"no versions of {path}\n"]
    return table(["SEQ", "TIME", "SIZE", "MODIFIED", "NAME"],
                 ([v.get("seq"), fmt_time(v.get("time_ns")), v.get("size"),
                   fmt_time(v.get("mtime_ns")), v.get("name")] for v in versions), right=[0, 2])


def _mode_string(entry: dict) -> str:
    mode = entry.get("mode")
    if not isinstance(mode, int):
        return "?" * 10
    if not st.S_IFMT(mode):
        mode |= _TYPE_BITS.get(entry.get("type"), 0)
    return st.filemode(mode)


def ls_lines(entries: list[dict]) -> list[str]:
    rows = []
    for e in entries:
        name = str(e.get("name"))
        if e.get("type") == "dir":
            name += "/"
        size = "-" if e.get("type") == "dir" else e.get("size")
        rows.append([_mode_string(e), size, fmt_time(e.get("mtime_ns")), name])
    return table(None, rows, right=[1])


def undo_lines(results: list[dict]) -> list[str]:
    if not results:
        return ["nothing undone\n"]
    out = []
    for r in results:
        what = " ".join(str(x) for x in (r.get("op"), r.get("path")) if x)
        line = f"undid {r.get('undone', '?')}"
        if what:
            line += f" ({what})"
        if r.get("seq") is not None:
            line += f", logged as {r['seq']}"
        out.append(line + "\n")
    return out


def kv_lines(d, prefix: str = "") -> list[str]:
    """``key: value`` lines; nested dicts flatten to dotted keys, *bytes keys read as sizes."""
    if not isinstance(d, dict):
        return [f"{prefix.rstrip('.') or 'result'}: {d}\n"]
    out = []
    for key, value in d.items():
        if isinstance(value, dict):
            out += kv_lines(value, f"{prefix}{key}.")
        elif str(key).endswith("bytes") and isinstance(value, (int, float)):
            out.append(f"{prefix}{key}: {human_size(value)}\n")
        else:
            out.append(f"{prefix}{key}: {value}\n")
    return out


# -- contents and diffs -------------------------------------------------------------------------
def content_text(data: bytes) -> str:
    """File content as text for ``ctl.last``: undecodable bytes replaced, a newline added at
    the end of non-empty content that lacks one. The exact bytes travel in ``.data``."""
    text = data.decode("utf-8", errors="replace")
    return text if not text or text.endswith("\n") else text + "\n"


def is_binary(data: bytes) -> bool:
    return b"\0" in data[:8192]


def unified_diff(a: bytes, b: bytes, from_label: str, to_label: str) -> str:
    """A unified diff of two contents ("" when equal; one line when either is binary)."""
    if a == b:
        return ""
    if is_binary(a) or is_binary(b):
        return f"binary contents {from_label} and {to_label} differ\n"
    lines = difflib.unified_diff(a.decode("utf-8", "replace").splitlines(keepends=True),
                                 b.decode("utf-8", "replace").splitlines(keepends=True),
                                 fromfile=from_label, tofile=to_label)
    out = []
    for line in lines:
        out.append(line)
        if not line.endswith("\n"):
            out.append("\n\\ No newline at end of file\n")
    return "".join(out)
