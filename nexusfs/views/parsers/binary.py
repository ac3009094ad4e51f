"""Binary data with no text to show (mode "text" only): one line saying what the data is."""
from __future__ import annotations

from ..limits import ParseFailure, human_bytes

PARSER_VERSION = "1"

_LEGACY = {"doc": "the Word 97-2003 format is not supported (save it as DOCX)",
           "ppt": "the PowerPoint 97-2003 format is not supported (save it as PPTX)"}


def parse(data: bytes, doc, ctx) -> None:
    if ctx.kind in _LEGACY:
        raise ParseFailure(_LEGACY[ctx.kind])
    try:
        import magic
        what = magic.from_buffer(data[:64 * 1024]) or "binary data"
    except Exception:
        what = "binary data"
    raise ParseFailure(f"it holds no text ({what}, {human_bytes(len(data))})")
