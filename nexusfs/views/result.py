"""ParseResult: what a parse gives the core, and its byte encoding for the view cache."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class ParseResult:
    text: str                   # the NAME.txt view (always ends with a newline unless empty)
    markdown: str               # the NAME.md view
    error: str | None           # why parsing failed (then text == markdown == one explaining line)
    parser: str                 # which parser produced the views ("pypdf", "markitdown", ...)
    version: str                # that parser's full version (as in the cache key)
    kind: str = ""              # the document kind it was parsed as
    truncated: bool = False     # cut at a limit (the views end with a line saying which)
    cacheable: bool = True      # False when the outcome depends on timing/load (time limit,
                                # a worker that died, a pool shutting down): parse again later
    elapsed: float = 0.0        # seconds spent parsing in the worker

    def to_bytes(self) -> bytes:
        """One blob for the chunk store: a JSON header line, then text, then markdown."""
        text = self.text.encode("utf-8", "surrogatepass")
        md = self.markdown.encode("utf-8", "surrogatepass")
        head = {k: v for k, v in asdict(self).items() if k not in ("text", "markdown")}
        head["text_len"] = len(text)
        head["md_len"] = len(md)
        return json.dumps(head, separators=(",", ":")).encode() + b"\n" + text + md

    @classmethod
    def from_bytes(cls, blob: bytes) -> ParseResult:
        nl = blob.index(b"\n")
        head = json.loads(blob[:nl])
        body = blob[nl + 1:]
        tl, ml = head.pop("text_len"), head.pop("md_len")
        if len(body) != tl + ml:
            raise ValueError("view cache blob has the wrong length")
        return cls(text=body[:tl].decode("utf-8", "surrogatepass"),
                   markdown=body[tl:].decode("utf-8", "surrogatepass"), **head)

    @property
    def text_bytes(self) -> bytes:
        return self.text.encode("utf-8", "replace")

    @property
    def markdown_bytes(self) -> bytes:
        return self.markdown.encode("utf-8", "replace")


def failure(name: str, label: str, reason: str, *, parser: str = "", version: str = "",
            kind: str = "", cacheable: bool = True, elapsed: float = 0.0) -> ParseResult:
    """A result whose views are one line saying why ``name`` could not be parsed."""
    line = explain(name, label, reason)
    return ParseResult(text=line, markdown=line, error=reason, parser=parser, version=version,
                       kind=kind, cacheable=cacheable, elapsed=elapsed)


def explain(name: str, label: str, reason: str) -> str:
    reason = " ".join(reason.split())
    if len(reason) > 300:
        reason = reason[:297] + "..."
    what = f" as {label}" if label else ""
    return f"[nexusfs: {name} could not be parsed{what}: {reason}]\n"
