"""Ranked-search queries: what users type, as FTS5 MATCH expressions; and snippets.

The syntax: words (all must occur, in the name or the text; stemmed, so ``refresh`` finds
``refreshed``), ``"a phrase"``, ``prefix*``, ``OR``, ``NOT``, ``AND`` and parentheses. Every
word is quoted before it reaches FTS5, so punctuation inside words (``a.b``, ``foo-bar``,
``C++``) is harmless: it separates tokens the way the index did. What can still be wrong is an
unbalanced quote or parenthesis, an operator with nothing on one side, or no word at all:
``QueryError`` with a one-line reason.

Pure functions: safe from any thread.
"""
from __future__ import annotations

import re

from .index import QueryError

_TOKEN = re.compile(r'\s*(?:(")|(\()|(\))|([^\s"()]+))')
_WORD = re.compile(r"\w", re.UNICODE)
OPERATORS = ("AND", "OR", "NOT")
MAX_QUERY = 4096


def to_fts(text: str) -> tuple[str, list[str]]:
    """(FTS5 expression, the plain terms for snippets)."""
    if len(text) > MAX_QUERY:
        raise QueryError(f"query longer than {MAX_QUERY} characters")
    out: list[str] = []
    terms: list[str] = []
    depth = 0
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            break
        pos = m.end()
        quote, opened, closed, word = m.groups()
        if quote:
            end = text.find('"', pos)
            if end < 0:
                raise QueryError("unbalanced quote in the query")
            phrase = text[pos:end]
            pos = end + 1
            star = text.startswith("*", pos)
            if star:
                pos += 1
            if _WORD.search(phrase):
                out.append(_quoted(phrase) + (" *" if star else ""))
                terms.extend(re.findall(r"\w+", phrase))
            continue
        if opened:
            depth += 1
            out.append("(")
            continue
        if closed:
            depth -= 1
            if depth < 0:
                raise QueryError("unbalanced parenthesis in the query")
            out.append(")")
            continue
        if word in OPERATORS:
            out.append(word)
            continue
        star = word.endswith("*")
        core = word.rstrip("*")
        if not _WORD.search(core):
            continue                     # punctuation alone: nothing the index holds
        out.append(_quoted(core) + (" *" if star else ""))
        terms.extend(re.findall(r"\w+", core))
    if depth:
        raise QueryError("unbalanced parenthesis in the query")
    if not terms:
        raise QueryError("the query has no words")
    # operators need something on both sides; FTS5 would say "syntax error near ..."
    cleaned = " ".join(out)
    if re.search(r"(^|\(\s*)(AND|OR|NOT)\b|\b(AND|OR|NOT)\s*($|\))|\b(AND|OR|NOT)\s+(AND|OR)\b",
                 cleaned):
        raise QueryError("an operator (AND, OR, NOT) needs a word on each side")
    return cleaned, terms


def _quoted(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'


# -- snippets ----------------------------------------------------------------------------------
SNIPPET = 160


def _stem(term: str) -> str:
    """A crude stem for finding a term's line: the stemmed index matched ``authentication``
    for ``authenticate``; the shared beginning finds the line."""
    t = term.lower()
    return t if len(t) <= 4 else t[:max(4, len(t) - 3)]


def best_line(text: str, terms: list[str]) -> tuple[int, str]:
    """(1-based line number, snippet) of the line holding the most distinct terms (the first
    such line); (0, "") when no line holds any."""
    stems = list(dict.fromkeys(_stem(t) for t in terms if t))
    if not stems or not text:
        return 0, ""
    lower = text.lower()
    best, best_n, best_at = -1, 0, 0
    # look only at lines holding at least one stem: find occurrences, not every line
    first = {}
    for s in stems:
        start = 0
        while True:
            i = lower.find(s, start)
            if i < 0 or len(first) > 5000:
                break
            line_start = lower.rfind("\n", 0, i) + 1
            first.setdefault(line_start, i)
            start = lower.find("\n", i)
            if start < 0:
                break
    for line_start in sorted(first):
        end = lower.find("\n", line_start)
        line = lower[line_start:end if end >= 0 else len(lower)]
        n = sum(1 for s in stems if s in line)
        if n > best_n:
            best, best_n, best_at = line_start, n, first[line_start]
            if n == len(stems):
                break
    if best < 0:
        return 0, ""
    lineno = text.count("\n", 0, best) + 1
    end = text.find("\n", best)
    line = text[best:end if end >= 0 else len(text)]
    return lineno, _clip(line, best_at - best)


def _clip(line: str, at: int) -> str:
    line = line.replace("\t", " ").replace("\r", "")
    if len(line) <= SNIPPET:
        return line.strip()
    start = max(0, min(at - SNIPPET // 3, len(line) - SNIPPET))
    piece = line[start:start + SNIPPET].strip()
    return ("…" if start > 0 else "") + piece + ("…" if start + SNIPPET < len(line) else "")
