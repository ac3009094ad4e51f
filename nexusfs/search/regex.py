"""grep patterns: GNU ``grep -E`` syntax translated to Python ``re`` (bytes), the literals a
match must contain (to narrow candidates through the trigram index), and globs.

Semantics are those of ``LC_ALL=C grep -E`` on the subset we test: bytes, not characters;
``-i`` folds ASCII only; ``.`` and bracket expressions never match a newline (grep matches line
by line). Translated: POSIX classes (``[[:alpha:]]`` ...), a backslash inside brackets is a
literal, ``]`` first in brackets is a literal, ``\\<`` and ``\\>`` word edges, ``\\s`` and
``\\S`` within a line, a leading ``*``, ``+``, ``?`` or ``{`` (at the start of the pattern, a
group or an alternative) is a literal. Python extensions stay available and are documented as
such in docs/search.md: ``\\d``, ``\\D``, ``\\t``, ``\\n``, non-greedy and possessive
quantifiers, lookarounds, ``(?i)``. Differences: GNU grep warns about and ignores a stray
backslash before an ordinary letter (``\\d`` is ``d`` there); back-references follow Python.

Pure functions, no state: safe from any thread.
"""
from __future__ import annotations

import re
import re._constants as C
import re._parser as P

POSIX_CLASSES = {
    "alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z", "lower": "a-z",
    "space": " \\t\\r\\f\\v\\n", "blank": " \\t", "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    "print": "\\x20-\\x7e", "graph": "\\x21-\\x7e", "cntrl": "\\x00-\\x1f\\x7f",
    "xdigit": "0-9A-Fa-f", "word": "a-zA-Z0-9_",
}
MIN_LITERAL = 3          # characters: the trigram index cannot use anything shorter
MAX_TRIGRAMS = 16        # per literal: enough to narrow, cheap to query


class PatternError(ValueError):
    """The pattern is not a valid regular expression (or glob); str() is one line."""


def translate(pattern: str, fixed: bool = False) -> str:
    """A grep -E pattern as a Python regular expression (text, to be encoded as UTF-8)."""
    if fixed:
        return re.escape(pattern)
    out: list[str] = []
    i, n = 0, len(pattern)
    at_start = True                  # start of the pattern, a group or an alternative
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= n:
                raise PatternError("trailing backslash")
            nxt = pattern[i + 1]
            out.append({"<": r"\b(?=\w)", ">": r"\b(?<=\w)", "s": r"[^\S\n]",
                        "S": r"[^\s]", "`": r"\A", "'": r"\Z"}.get(nxt, "\\" + nxt))
            i += 2
            at_start = False
            continue
        if ch == "[":
            text, i = _bracket(pattern, i)
            out.append(text)
            at_start = False
            continue
        if ch in "*+?{" and at_start:
            out.append("\\" + ch)
            i += 1
            at_start = False
            continue
        out.append(ch)
        at_start = ch in "(|^"
        if ch == "(" and pattern.startswith("?", i + 1):
            at_start = False          # a Python group extension: (?:...), (?i), (?=...)
        i += 1
    return "".join(out)


def _bracket(p: str, i: int) -> tuple[str, int]:
    """Translate the bracket expression starting at p[i] == '['; returns (text, next index)."""
    j = i + 1
    negate = j < len(p) and p[j] == "^"
    if negate:
        j += 1
    parts: list[str] = []
    first = True
    while True:
        if j >= len(p):
            raise PatternError("unmatched [ or [^")
        ch = p[j]
        if ch == "]" and not first:
            j += 1
            break
        first = False
        if p.startswith("[:", j):
            end = p.find(":]", j + 2)
            if end < 0:
                raise PatternError("unmatched [: in a bracket expression")
            name = p[j + 2:end]
            if name not in POSIX_CLASSES:
                raise PatternError(f"invalid character class [:{name}:]")
            parts.append(POSIX_CLASSES[name])
            j = end + 2
            continue
        if p.startswith("[=", j) or p.startswith("[.", j):
            raise PatternError("equivalence classes and collating symbols are not supported")
        if ch == "-" and parts and j + 1 < len(p) and p[j + 1] != "]":
            parts.append("-")
            j += 1
            continue
        parts.append(re.escape(ch) if ch != "-" else "\\-")
        j += 1
    body = "".join(parts)
    if negate:
        return "[^\\n" + body + "]", j
    return "[" + body + "]", j


def compile_pattern(pattern: str, *, ignore_case: bool = False, fixed: bool = False):
    """The compiled bytes regex for a grep pattern; PatternError with a one-line reason."""
    if "\0" in pattern:
        raise PatternError("the pattern holds a NUL character")
    text = translate(pattern, fixed)
    try:
        return re.compile(text.encode("utf-8", "surrogateescape"),
                          re.MULTILINE | (re.IGNORECASE if ignore_case else 0))
    except re.error as e:
        raise PatternError(f"invalid regular expression: {e.msg}"
                           + (f" at position {e.pos}" if e.pos is not None else "")) from None
    except (OverflowError, RecursionError):
        raise PatternError("invalid regular expression: too complex") from None


# -- required literals -------------------------------------------------------------------------
def required(regex: re.Pattern):
    """What every match must contain: None (nothing known), bytes (a literal), or a tuple
    ("and" | "or", [requirements])."""
    try:
        tree = P.parse(regex.pattern, regex.flags & ~re.IGNORECASE)
    except Exception:                  # (the pattern compiled: this cannot fail, but be safe)
        return None
    return _seq(list(tree))


def _seq(items) -> object:
    reqs: list = []
    run = bytearray()

    def flush():
        if len(run) >= MIN_LITERAL:
            reqs.append(bytes(run))
        run.clear()

    for op, av in items:
        if op is C.LITERAL:
            run.append(av)
            continue
        flush()
        sub = None
        if op is C.SUBPATTERN:
            sub = _seq(list(av[-1]))
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT, getattr(C, "POSSESSIVE_REPEAT", None)):
            if av[0] >= 1:
                sub = _seq(list(av[2]))
        elif op is getattr(C, "ATOMIC_GROUP", None):
            sub = _seq(list(av))
        elif op is C.BRANCH:
            alts = [_seq(list(b)) for b in av[1]]
            sub = None if any(a is None for a in alts) else ("or", alts)
        if sub is not None:
            reqs.append(sub)
    flush()
    if not reqs:
        return None
    return reqs[0] if len(reqs) == 1 else ("and", reqs)


def _literal_query(lit: bytes) -> str | None:
    """FTS5 trigram query for one literal: the AND of some of its trigrams (case-folded by the
    index; detail=none tables have no phrases). None when no piece is long enough."""
    text = lit.decode("utf-8", "replace")
    pieces = [p for p in re.split("[\ufffd\0\n]", text) if len(p) >= MIN_LITERAL]
    if not pieces:
        return None
    grams: list[str] = []
    for piece in pieces:
        starts = list(range(0, len(piece) - 2, 3))
        if starts[-1] != len(piece) - 3:
            starts.append(len(piece) - 3)
        grams.extend(piece[s:s + 3] for s in starts)
    grams = list(dict.fromkeys(grams))[:MAX_TRIGRAMS]
    return " AND ".join('"' + g.replace('"', '""') + '"' for g in grams)


def trigram_query(req) -> str | None:
    """An FTS5 MATCH expression for a requirement, or None (scan everything)."""
    if req is None:
        return None
    if isinstance(req, bytes):
        return _literal_query(req)
    kind, items = req
    parts = [trigram_query(r) for r in items]
    if kind == "or":
        if any(p is None for p in parts):
            return None
        return " OR ".join(f"({p})" for p in parts)
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    return " AND ".join(f"({p})" for p in parts)


# -- globs -------------------------------------------------------------------------------------
def glob_regex(pattern: str) -> re.Pattern:
    """A path glob: ``*`` and ``?`` within a name, ``**`` any number of directories, ``[...]``.
    A pattern without ``/`` matches the name anywhere in the tree; one with ``/`` matches the
    path from the search root (a leading ``/`` is that root)."""
    if not pattern or "\0" in pattern:
        raise PatternError("empty glob" if not pattern else "the glob holds a NUL character")
    anchored = "/" in pattern
    pat = pattern.lstrip("/")
    out = []
    i = 0
    while i < len(pat):
        if pat.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pat.startswith("**", i):
            out.append(".*")
            i += 2
        elif pat[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pat[i] == "?":
            out.append("[^/]")
            i += 1
        elif pat[i] == "[":
            end = pat.find("]", i + 2)
            if end < 0:
                out.append(re.escape("["))
                i += 1
                continue
            body = pat[i + 1:end]
            neg = body[:1] in ("!", "^")
            body = body[1:] if neg else body
            out.append("[" + ("^/" if neg else "") + body.replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(pat[i]))
            i += 1
    body = "".join(out)
    try:
        return re.compile(("" if anchored else "(?:.*/)?") + body + r"\Z", re.DOTALL)
    except re.error as e:
        raise PatternError(f"invalid glob: {e.msg}") from None
