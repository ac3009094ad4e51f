"""markitdown, the fallback converter: for kinds without a direct parser (zip archives in mode
"text") and as the second try when a direct HTML/EPUB parser fails.

markitdown is imported here, on first use in a worker, never in the daemon: its import costs
~1 s and ~100 MB (magika, onnxruntime). Only the converters whose dependencies are installed
work; a missing one is reported as the reason.
"""
from __future__ import annotations

import io
import warnings

from ..limits import ParseFailure
from ..output import md_to_text

PARSER_VERSION = "1"

_MIMES = {"zip": "application/zip", "html": "text/html", "epub": "application/epub+zip"}

_md = None


def _markitdown():
    global _md
    if _md is None:
        from markitdown import MarkItDown
        _md = MarkItDown(enable_plugins=False)
    return _md


def parse(data: bytes, doc, ctx) -> None:
    from markitdown import StreamInfo
    from markitdown._exceptions import (
        FileConversionException,
        UnsupportedFormatException,
    )

    ext = "." + ctx.name.rsplit(".", 1)[1].lower() if "." in ctx.name else None
    info = StreamInfo(extension=ext, mimetype=_MIMES.get(ctx.kind), filename=ctx.name)
    doc.tick()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = _markitdown().convert_stream(io.BytesIO(data), stream_info=info)
    except UnsupportedFormatException:
        raise ParseFailure("markitdown has no converter for it") from None
    except FileConversionException as e:
        lines = [ln.strip(" -") for ln in str(e).splitlines() if ln.strip(" -")]
        reason = lines[-1] if lines else "conversion failed"
        if "MissingDependencyException" in str(e):
            reason = "markitdown lacks the optional dependency for this format"
        raise ParseFailure(f"markitdown failed: {reason}") from None
    md = (res.markdown or "").strip()
    doc.md(md + "\n" if md else "")
    doc.txt(md_to_text(md))
