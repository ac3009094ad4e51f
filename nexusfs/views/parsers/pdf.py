"""PDF via pypdf: the text of every page in reading order, with page markers.

Reading order: pypdf's layout mode (text placed as on the page, top to bottom) reads forms,
invoices, receipts and tables in the order a person does, where the plain mode follows the
content stream (a form's header often comes last). Layout mode interleaves the columns of a
multi-column page, so a page whose layout shows a gutter down most of its lines is extracted
in plain mode (content streams list columns in order). Layout indentation is kept in the text
view (tables stay aligned) and dropped in the markdown view (it would read as code blocks). Justified lines' double spaces
become single so that phrases can be grepped.

Text view: ``--- page N ---`` lines; markdown view: ``## Page N`` headings. Encrypted PDFs
that open with the empty password (owner-password-only "protected" PDFs, very common) are
read; others say a password is needed. A page whose text cannot be extracted says so in its
place and the other pages still come out. A PDF without a text layer says so (no OCR).
"""
from __future__ import annotations

import io
import logging
import re

from ..limits import ParseFailure

PARSER_VERSION = "1"

_JUSTIFIED = re.compile(r"(?<=\S) {2,3}(?=\S)")
_BLANKS = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")


def _page_text(raw: str) -> str:
    # justified lines come out with 2-3 spaces between words: one, so that phrases grep;
    # wider gaps separate columns of a table and stay
    lines = [_JUSTIFIED.sub(" ", ln.rstrip()) for ln in raw.splitlines()]
    indents = [len(ln) - len(ln.lstrip()) for ln in lines if ln.strip()]
    cut = min(indents) if indents else 0
    lines = [ln[cut:] for ln in lines]
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip("\n")


def has_columns(text: str) -> bool:
    """True if most long lines of a layout rendering share a gutter in their middle third."""
    lines = [ln for ln in text.splitlines() if len(ln.strip()) >= 20]
    if len(lines) < 8:
        return False
    width = max(len(ln) for ln in lines)
    lo, hi = width // 3, (2 * width) // 3
    counts = [0] * (hi - lo + 1)
    for ln in lines:
        first = len(ln) - len(ln.lstrip())
        last = len(ln.rstrip())
        for c in range(lo, hi + 1):
            if first < c - 2 and c + 2 < last and ln[c - 2:c + 3] == "     ":
                counts[c - lo] += 1
    return max(counts) >= 0.6 * len(lines)


def extract(page) -> str:
    try:
        text = page.extract_text(extraction_mode="layout") or ""
    except (MemoryError, RecursionError):
        raise
    except Exception:
        text = ""
    if not text.strip() or has_columns(text):
        text = page.extract_text() or ""
    return _page_text(text)


def parse(data: bytes, doc, ctx) -> None:
    import pypdf
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    if b"%PDF-" not in data[:1024]:
        raise ParseFailure("it is not a PDF (no %PDF- header)")
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("")
            except DependencyError as e:
                raise ParseFailure(f"it is encrypted and cannot be decrypted here ({e})") from None
            if not ok:
                raise ParseFailure("it is encrypted with a password")
        pages = reader.pages
        count = len(pages)
    except FileNotDecryptedError:
        raise ParseFailure("it is encrypted with a password") from None
    except PdfReadError as e:
        raise ParseFailure(f"it is damaged or not a PDF ({e})") from None

    found = 0
    for i in range(count):
        n = i + 1
        ctx.budget.where = f"after page {i} of {count}"
        doc.tick()
        try:
            text = extract(pages[i])
        except FileNotDecryptedError:
            raise ParseFailure("it is encrypted with a password") from None
        except (MemoryError, RecursionError):
            raise
        except Exception as e:
            text = f"[nexusfs: the text of page {n} could not be extracted: {type(e).__name__}: {e}]"
        else:
            found += len(text.strip())
        sep = "\n" if i else ""
        doc.txt(f"{sep}--- page {n} ---\n")
        doc.md(f"{sep}## Page {n}\n\n")
        if text:
            doc.txt(text + "\n")
            doc.md("\n".join(ln.lstrip() for ln in text.splitlines()) + "\n")
    if count == 0:
        raise ParseFailure("it has no pages")
    if not found:
        doc.both("\n[nexusfs: this PDF has no text layer (scanned pages?); views do no OCR]\n")
