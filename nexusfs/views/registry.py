"""Which parser handles which document kind, its version, and the cache key of its output.

A parser is named by a ``"module:function"`` target so that only the worker process imports
it (and the libraries it needs). Each parser module carries a ``PARSER_VERSION`` string that
changes whenever its output changes; the version of a kind also includes the versions of the
libraries the parser uses (a new pypdf can extract differently), so a library upgrade makes
cached views stale on its own.

Importing a parser module is cheap: libraries are imported inside the parse functions.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from importlib import metadata

import blake3

P = "nexusfs.views.parsers."


@dataclass(frozen=True, slots=True)
class ParserSpec:
    name: str                               # short name, reported as ParseResult.parser
    target: str                             # "package.module:function"
    libraries: tuple[str, ...] = ()         # distributions whose versions enter the cache key
    fallback: ParserSpec | None = None    # tried when the first parser fails (not on a limit)
    label: str = ""                         # what the user calls the format, for messages

    def module_version(self) -> str:
        module = importlib.import_module(self.target.partition(":")[0])
        return str(getattr(module, "PARSER_VERSION", "0"))

    def version(self) -> str:
        libs = ",".join(f"{lib}={_dist_version(lib)}" for lib in self.libraries)
        v = f"{self.name}/{self.module_version()}" + (f"({libs})" if libs else "")
        if self.fallback is not None:
            v += " else " + self.fallback.version()
        return v


@cache
def _dist_version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "absent"


MARKITDOWN = ParserSpec("markitdown", P + "fallback:parse", ("markitdown",))
_WEB_LIBS = ("beautifulsoup4", "markdownify", "lxml")

DEFAULT_PARSERS: dict[str, ParserSpec] = {
    "pdf": ParserSpec("pypdf", P + "pdf:parse", ("pypdf", "cryptography"), label="PDF"),
    "xlsx": ParserSpec("openpyxl", P + "sheets:parse_xlsx", ("openpyxl",), label="XLSX"),
    "xls": ParserSpec("xlrd", P + "sheets:parse_xls", ("xlrd",), label="XLS"),
    "docx": ParserSpec("python-docx", P + "word:parse", ("python-docx",), label="DOCX"),
    "pptx": ParserSpec("python-pptx", P + "slides:parse", ("python-pptx",), label="PPTX"),
    "html": ParserSpec("html", P + "web:parse_html", _WEB_LIBS, fallback=MARKITDOWN, label="HTML"),
    "epub": ParserSpec("epub", P + "web:parse_epub", _WEB_LIBS, fallback=MARKITDOWN, label="EPUB"),
    "odt": ParserSpec("odf", P + "odf:parse", label="ODT"),
    "ods": ParserSpec("odf", P + "odf:parse", label="ODS"),
    "odp": ParserSpec("odf", P + "odf:parse", label="ODP"),
    # Containers and binaries get views only in mode "text":
    "zip": ParserSpec("markitdown", P + "fallback:parse", ("markitdown",), label="zip archive"),
    "doc": ParserSpec("describe", P + "binary:parse", label="Word 97-2003 document"),
    "ppt": ParserSpec("describe", P + "binary:parse", label="PowerPoint 97-2003 presentation"),
    "binary": ParserSpec("describe", P + "binary:parse", label="binary data"),
}


class Registry:
    """An immutable mapping kind -> ParserSpec. Tests add hostile parsers with :meth:`with_`."""

    def __init__(self, parsers: dict[str, ParserSpec]):
        self._parsers = dict(parsers)
        self._versions: dict[str, str] = {}

    def with_(self, extra: dict[str, ParserSpec]) -> Registry:
        return Registry({**self._parsers, **extra})

    def spec(self, kind: str) -> ParserSpec | None:
        return self._parsers.get(kind)

    def kinds(self) -> frozenset[str]:
        return frozenset(self._parsers)

    def version(self, kind: str) -> str:
        """The full version of the parser(s) for kind, as it enters the cache key."""
        v = self._versions.get(kind)
        if v is None:
            spec = self._parsers.get(kind)
            v = spec.version() if spec is not None else "none"
            self._versions[kind] = v
        return v

    def cache_key(self, content_id: bytes, kind: str) -> bytes:
        h = blake3.blake3(b"nexusfs view cache key v1\0")
        for part in (content_id, kind.encode(), self.version(kind).encode()):
            h.update(len(part).to_bytes(4, "big"))
            h.update(part)
        return h.digest()


DEFAULT_REGISTRY = Registry(DEFAULT_PARSERS)


def cache_key(content_id: bytes, kind: str) -> bytes:
    """32 bytes naming the views of the content ``content_id`` as parsed now for ``kind``.

    Changes when the parser (``PARSER_VERSION``) or one of its libraries changes, so cached
    views of an older parser are simply never found again (and fall to GC).
    """
    return DEFAULT_REGISTRY.cache_key(content_id, kind)
