"""Building the two views of a document (plain text and markdown) within the output limit.

:class:`Doc` collects both views; every append counts characters and raises :class:`Cut`
past ``max_output`` after keeping what fits (cut at a line end). Helpers render tables both
ways, format spreadsheet values like a spreadsheet shows them, and turn markdown into plain
text for formats whose only converter speaks markdown.
"""
from __future__ import annotations

import datetime as _dt
import math
import re

from .limits import Budget, Cut, human_bytes


class Doc:
    def __init__(self, budget: Budget):
        self.budget = budget
        self.cap = budget.limits.max_output
        self._txt: list[str] = []
        self._md: list[str] = []
        self._ntxt = 0
        self._nmd = 0

    # -- appending -------------------------------------------------------------------------
    def txt(self, s: str) -> None:
        self._ntxt = self._add(self._txt, self._ntxt, s)

    def md(self, s: str) -> None:
        self._nmd = self._add(self._md, self._nmd, s)

    def both(self, s: str) -> None:
        self.txt(s)
        self.md(s)

    def _add(self, parts: list[str], n: int, s: str) -> int:
        if n + len(s) <= self.cap:
            parts.append(s)
            return n + len(s)
        room = self.cap - n
        head = s[:room]
        nl = head.rfind("\n")
        if nl >= 0:
            head = head[: nl + 1]
        elif n:
            head = ""           # keep whole lines, unless the first line alone is too long
        parts.append(head)
        raise Cut("output", human_bytes(self.cap).replace("bytes", "characters"), self.budget.where)

    def tick(self) -> None:
        self.budget.tick()

    # -- results ---------------------------------------------------------------------------
    def text(self) -> str:
        return "".join(self._txt)

    def markdown(self) -> str:
        return "".join(self._md)

    def table(self, rows: list[list[str]], *, header: bool = True) -> None:
        """A table: tab-separated lines in the text view, a markdown table in the other."""
        if not rows:
            return
        for row in rows:
            self.txt("\t".join(tsv_cell(c) for c in row).rstrip("\t") + "\n")
        self.md(md_table(rows, header=header))


def tsv_cell(s: str) -> str:
    return s.replace("\t", " ").replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


def md_cell(s: str) -> str:
    s = s.replace("\\", "\\\\").replace("|", "\\|")
    s = s.replace("\r\n", "\n").replace("\r", "\n").strip("\n").replace("\n", "<br>")
    return s


def md_table(rows: list[list[str]], *, header: bool = True) -> str:
    """A GitHub-flavoured markdown table; short rows are padded, the first row is the header."""
    width = max((len(r) for r in rows), default=0)
    if width == 0:
        return ""
    norm = [[md_cell(c) for c in r] + [""] * (width - len(r)) for r in rows]
    if header:
        head, body = norm[0], norm[1:]
    else:
        head, body = [""] * width, norm
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * width]
    out.extend("| " + " | ".join(r) + " |" for r in body)
    return "\n".join(out) + "\n"


def cell_str(v) -> str:
    """A spreadsheet value as a spreadsheet would show it, without its number format."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        if v == int(v) and abs(v) < 1e15:
            return str(int(v))
        return f"{v:.15g}"
    if isinstance(v, _dt.datetime):
        if v.hour == v.minute == v.second == v.microsecond == 0:
            return v.date().isoformat()
        return v.isoformat(sep=" ", timespec="seconds" if not v.microsecond else "auto")
    if isinstance(v, (_dt.date, _dt.time)):
        return v.isoformat()
    if isinstance(v, _dt.timedelta):
        return str(v)
    return str(v)


def trim_rows(rows: list[list[str]]) -> list[list[str]]:
    """Drops empty rows and the empty columns on the right of every row."""
    out = []
    for r in rows:
        end = len(r)
        while end and not r[end - 1].strip():
            end -= 1
        if end:
            out.append(r[:end])
    return out


_IMG = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\((?:[^()]|\([^)]*\))*\)")
_HEADING = re.compile(r"^#{1,6}\s+", re.MULTILINE)
_EMPH = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_TABLE_SEP = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_ESCAPED = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|<>])")


def md_to_text(md: str) -> str:
    """Plain text from markdown: no link targets, emphasis or heading marks; tables as TSV."""
    out = []
    for line in md.splitlines():
        s = line.strip()
        if _TABLE_SEP.match(s) and "-" in s and "|" in s:
            continue
        if s.startswith("|") and s.endswith("|") and len(s) > 1:
            cells = re.split(r"(?<!\\)\|", s[1:-1])
            line = "\t".join(c.strip().replace("<br>", " ") for c in cells).rstrip("\t")
        line = _IMG.sub(lambda m: m.group(1), line)
        line = _LINK.sub(lambda m: m.group(1), line)
        line = _EMPH.sub(lambda m: m.group(2), line)
        line = _HEADING.sub("", line)
        line = _ESCAPED.sub(r"\1", line)
        out.append(line.rstrip())
    text = "\n".join(out)
    text = re.sub(r"\n{3,}", "\n\n", text).strip("\n")
    return text + "\n" if text else ""
