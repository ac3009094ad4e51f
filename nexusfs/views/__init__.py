"""Document views: bytes of a document in, plain text and markdown out; pure and bounded.

The core asks :func:`detect` what a file is, :func:`views_for` which views it gets in the
current mode, :func:`cache_key` where parsed views are cached, and a :class:`ParsePool` to parse
(in worker processes with time, memory and output limits). Nothing here touches the filesystem
or the metadata store. See docs/views.md.
"""
from .detect import (
    ALL_KINDS,
    DOCUMENT_KINDS,
    HEAD_SIZE,
    MODES,
    VIEW_SUFFIXES,
    detect,
    split_view_name,
    view_names,
    views_for,
)
from .limits import Limits
from .pool import ParsePool
from .registry import DEFAULT_REGISTRY, ParserSpec, Registry, cache_key
from .result import ParseResult

__all__ = [
    "ALL_KINDS",
    "DEFAULT_REGISTRY",
    "DOCUMENT_KINDS",
    "HEAD_SIZE",
    "MODES",
    "VIEW_SUFFIXES",
    "Limits",
    "ParsePool",
    "ParseResult",
    "ParserSpec",
    "Registry",
    "cache_key",
    "detect",
    "parse_here",
    "split_view_name",
    "view_names",
    "views_for",
]


def parse_here(data: bytes, name: str, kind: str, limits: Limits | None = None,
               registry: Registry | None = None) -> ParseResult:
    """Parses in this process, without isolation (tools, tests, benchmarks). The daemon
    must use a ParsePool instead: a hostile document could take this process down."""
    from .result import failure
    from .worker import run_parse

    registry = registry or DEFAULT_REGISTRY
    spec = registry.spec(kind)
    if spec is None:
        return failure(name, "", f"no parser for documents of kind {kind!r}", kind=kind)
    res = run_parse(data, name, kind, spec.target, limits or Limits(),
                    label=spec.label or kind, parser=spec.name,
                    fallback=(spec.fallback.target, spec.fallback.name) if spec.fallback else None)
    res.pop("recycle", None)
    return ParseResult(**res, version=registry.version(kind))
