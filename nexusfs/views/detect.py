"""Which files get views: document kind from content (python-magic) and name, and the modes.

``detect(head, name)`` looks at the first bytes (up to 64 KiB) with libmagic and at the
extension, and returns:

* a document kind ("pdf", "docx", "xlsx", "pptx", "xls", "epub", "html", "odt", "ods", "odp")
  when the content is that document. Content wins over the extension: a PDF named
  ``notes.txt`` or ``scan`` is a PDF, an XLSX named ``.docx`` is parsed as XLSX;
* the extension's kind when the content is binary but unrecognised (a truncated or corrupt
  ``report.pdf``): its parser then says in one line why it cannot read it;
* None for text (plain text, code, CSV, JSON, XML, ...) and empty files, whatever the name
  claims: a text file named ``.pdf`` is not a PDF, and text needs no view;
* "zip", "doc", "ppt" or "binary" for other binary content, which gets a view only in mode
  "text" (an archive listing, or a line saying what the data is).

HTML is a document only under an HTML extension (or none): a PHP or Vue file that starts
with ``<!DOCTYPE html>`` is code.

``views_for(kind, mode)`` gives the view suffixes a file gets:

* "smart" (default): documents only;
* "text": every file that is not text (documents, archives, other binaries);
* "binary": none.
"""
from __future__ import annotations

import os
import re
import threading

MODES = ("smart", "text", "binary")
VIEW_SUFFIXES = (".txt", ".md")
HEAD_SIZE = 64 * 1024

DOCUMENT_KINDS = frozenset({"pdf", "docx", "xlsx", "pptx", "xls", "epub", "html",
                            "odt", "ods", "odp"})
BINARY_KINDS = frozenset({"zip", "doc", "ppt", "binary"})
ALL_KINDS = DOCUMENT_KINDS | BINARY_KINDS

EXT_KINDS = {
    "pdf": "pdf",
    "docx": "docx", "docm": "docx", "dotx": "docx", "dotm": "docx",
    "xlsx": "xlsx", "xlsm": "xlsx", "xltx": "xlsx", "xltm": "xlsx",
    "pptx": "pptx", "pptm": "pptx", "ppsx": "pptx", "ppsm": "pptx", "potx": "pptx",
    "xls": "xls", "xlt": "xls",
    "doc": "doc", "dot": "doc", "ppt": "ppt", "pps": "ppt",
    "epub": "epub",
    "html": "html", "htm": "html", "xhtml": "html", "xht": "html",
    "odt": "odt", "ott": "odt", "ods": "ods", "ots": "ods", "odp": "odp", "otp": "odp",
}
HTML_EXTS = frozenset({"html", "htm", "xhtml", "xht", ""})
ZIP_KINDS = frozenset({"docx", "xlsx", "pptx", "epub", "odt", "ods", "odp"})
OLE_KINDS = frozenset({"xls", "doc", "ppt"})

MIME_KINDS = {
    "application/pdf": "pdf",
    "application/x-pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.template": "docx",
    "application/vnd.ms-word.document.macroenabled.12": "docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.template": "xlsx",
    "application/vnd.ms-excel.sheet.macroenabled.12": "xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
    "application/vnd.openxmlformats-officedocument.presentationml.slideshow": "pptx",
    "application/vnd.ms-powerpoint.presentation.macroenabled.12": "pptx",
    "application/vnd.ms-excel": "xls",
    "application/msword": "doc",
    "application/vnd.ms-powerpoint": "ppt",
    "application/epub+zip": "epub",
    "application/vnd.oasis.opendocument.text": "odt",
    "application/vnd.oasis.opendocument.text-template": "odt",
    "application/vnd.oasis.opendocument.spreadsheet": "ods",
    "application/vnd.oasis.opendocument.spreadsheet-template": "ods",
    "application/vnd.oasis.opendocument.presentation": "odp",
    "application/vnd.oasis.opendocument.presentation-template": "odp",
    "text/html": "html",
    "application/xhtml+xml": "html",
}
ZIP_MIMES = frozenset({"application/zip", "application/x-zip-compressed", "application/octet-stream",
                       "application/java-archive", "application/x-zip"})
OLE_MIMES = frozenset({"application/x-ole-storage", "application/cdfv2", "application/cdf",
                       "application/vnd.ms-office", "application/cdfv2-unknown",
                       "application/cdfv2-corrupt"})
# Textual types libmagic reports outside text/*.
TEXT_MIMES = frozenset({"application/json", "application/javascript", "application/x-ndjson",
                        "application/xml", "application/x-sh", "application/x-shellscript",
                        "application/csv", "application/x-wine-extension-ini",
                        "application/postscript", "application/x-subrip", "inode/x-empty",
                        "application/sql", "image/svg+xml", "message/rfc822"})

# A zip local file header is 30 bytes, then the member's name: names are visible in the head.
_ZIP_MEMBER = re.compile(rb"PK\x03\x04[\s\S]{26}(word/|xl/|ppt/|mimetype)")
_ODF_MIME = re.compile(rb"mimetypeapplication/(epub\+zip|vnd\.oasis\.opendocument\."
                       rb"(text|spreadsheet|presentation))")
_ZIP_DIR = {b"word/": "docx", b"xl/": "xlsx", b"ppt/": "pptx"}
_ODF_KIND = {b"text": "odt", b"spreadsheet": "ods", b"presentation": "odp"}

_local = threading.local()


def _magic():
    """One libmagic handle per thread (libmagic handles are not thread-safe)."""
    m = getattr(_local, "magic", None)
    if m is None:
        import magic
        m = (magic.Magic(mime=True), magic.Magic(mime_encoding=True))
        _local.magic = m
    return m


def extension(name: str) -> str:
    return os.path.splitext(name)[1][1:].lower()


def sniff_zip(head: bytes) -> str | None:
    """The document kind of a zip container, from the member names in its first bytes."""
    m = _ODF_MIME.search(head)
    if m:
        return "epub" if m.group(1) == b"epub+zip" else _ODF_KIND[m.group(2)]
    for m in _ZIP_MEMBER.finditer(head):
        kind = _ZIP_DIR.get(m.group(1))
        if kind:
            return kind
    return None


def detect(head: bytes, name: str) -> str | None:
    """The kind of a file from its first bytes and its name (see the module docstring)."""
    head = head[:HEAD_SIZE]
    if not head:
        return None
    ext = extension(name)
    ext_kind = EXT_KINDS.get(ext)
    mime_magic, enc_magic = _magic()
    try:
        mime = mime_magic.from_buffer(head).lower()
        encoding = enc_magic.from_buffer(head).lower()
    except Exception:               # libmagic can fail on odd data: fall back to the signature
        mime, encoding = "application/octet-stream", "binary"

    kind = MIME_KINDS.get(mime)
    if kind is None and head.startswith(b"%PDF-"):
        kind = "pdf"
    if kind is None and head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        kind = sniff_zip(head) or "zip"
    if kind is None and (mime in OLE_MIMES or head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")):
        kind = ext_kind if ext_kind in OLE_KINDS else "binary"

    if kind == "html":
        return "html" if ext in HTML_EXTS else None
    if kind == "zip" and ext_kind in ZIP_KINDS:
        return ext_kind             # the container parser says what is missing
    if kind is not None:
        return kind

    textual = (mime.startswith("text/") or mime in TEXT_MIMES
               or (encoding not in ("binary", "") and not mime.startswith(("image/", "audio/",
                                                                            "video/"))))
    if textual:
        if ext_kind == "html":
            return "html"           # an HTML fragment libmagic did not recognise
        return None
    if ext_kind is not None:
        return ext_kind             # unreadable binary under a document's name: say why
    return "binary"


def views_for(kind: str | None, mode: str = "smart") -> tuple[str, ...]:
    """The view suffixes (".txt", ".md") a file of this kind gets in this mode."""
    if mode not in MODES:
        raise ValueError(f"unknown views mode {mode!r} (expected one of {', '.join(MODES)})")
    if kind is None or mode == "binary":
        return ()
    if mode == "smart":
        return VIEW_SUFFIXES if kind in DOCUMENT_KINDS else ()
    return VIEW_SUFFIXES


def view_names(name: str, kind: str | None, mode: str = "smart") -> tuple[str, ...]:
    """The names of the views of ``name``: ``("report.pdf.txt", "report.pdf.md")`` or ()."""
    return tuple(name + s for s in views_for(kind, mode))


def split_view_name(name: str) -> tuple[str, str] | None:
    """``"a.pdf.txt"`` -> ``("a.pdf", ".txt")``; None if the name cannot be a view."""
    for s in VIEW_SUFFIXES:
        if name.endswith(s) and len(name) > len(s):
            return name[: -len(s)], s
    return None
