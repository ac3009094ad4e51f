"""OpenDocument (ODT, ODS, ODP) from content.xml, with the standard library only.

ODT: headings (outline level), paragraphs, lists (as ``-`` items, nested), tables. ODS: every
sheet like the XLSX parser (``--- sheet: NAME ---`` / ``## Sheet: NAME``, repeated rows and
cells expanded only where they hold something). ODP: ``--- slide N ---`` / ``## Slide N: name``,
the text of each frame, then the notes.
"""
from __future__ import annotations

from ..limits import Cut, ParseFailure
from ..output import trim_rows
from ..safezip import open_zip

PARSER_VERSION = "1"

TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
DRAW = "{urn:oasis:names:tc:opendocument:xmlns:drawing:1.0}"
PRES = "{urn:oasis:names:tc:opendocument:xmlns:presentation:1.0}"
_SKIP = {OFFICE + "annotation", TEXT + "note", TEXT + "tracked-changes", TEXT + "sequence-decls",
         OFFICE + "forms", TEXT + "variable-decls"}
MAX_REPEAT = 1000


def inline(el) -> str:
    parts = [el.text or ""]
    for child in el:
        tag = child.tag
        if tag == TEXT + "s":
            parts.append(" " * min(int(child.get(TEXT + "c", "1") or 1), 100))
        elif tag == TEXT + "tab":
            parts.append("\t")
        elif tag == TEXT + "line-break":
            parts.append("\n")
        elif tag not in _SKIP:
            parts.append(inline(child))
        parts.append(child.tail or "")
    return "".join(parts)


class _Walker:
    def __init__(self, doc, ctx):
        self.doc = doc
        self.ctx = ctx
        self.count = 0
        self.gap = False            # a blank line is due before the next block
        self.count_out = 0          # blocks written

    def block(self, txt: str, md: str, *, tight: bool = False) -> None:
        sep = "" if tight or not self.gap or not self.count_out else "\n"
        self.count_out += 1
        self.doc.txt(sep + txt + "\n")
        self.doc.md(sep + md + "\n")
        self.gap = not tight

    def walk(self, el, depth: int = 0) -> None:
        for child in el:
            self.count += 1
            if self.count % 256 == 0:
                self.doc.tick()
            tag = child.tag
            if tag in _SKIP:
                continue
            if tag == TEXT + "h":
                t = " ".join(inline(child).split())
                if t:
                    level = min(6, max(1, int(child.get(TEXT + "outline-level", "1") or 1)))
                    self.gap = True
                    self.block(t, "#" * level + " " + t)
            elif tag == TEXT + "p":
                t = inline(child).strip()
                if t:
                    self.block(t, t.replace("\n", "  \n"))
            elif tag == TEXT + "list":
                self.list(child, 0)
                self.gap = True
            elif tag == TABLE + "table":
                rows = self.rows(child)
                if rows:
                    if self.gap:
                        self.doc.both("\n")
                    self.doc.table(rows)
                    self.gap = True
            else:
                self.walk(child, depth + 1)

    def list(self, el, level: int) -> None:
        for item in el:
            if item.tag not in (TEXT + "list-item", TEXT + "list-header"):
                continue
            for child in item:
                if child.tag == TEXT + "list":
                    self.list(child, level + 1)
                elif child.tag in (TEXT + "p", TEXT + "h"):
                    t = " ".join(inline(child).split())
                    if t:
                        sep = "\n" if self.gap else ""
                        self.doc.txt(f"{sep}{'  ' * level}- {t}\n")
                        self.doc.md(f"{sep}{'  ' * level}- {t}\n")
                        self.gap = False

    def rows(self, table) -> list[list[str]]:
        out: list[list[str]] = []
        self.partial = out
        budget = self.ctx.budget
        for row in table.iter(TABLE + "table-row"):
            cells: list[str] = []
            for cell in row:
                if cell.tag not in (TABLE + "table-cell", TABLE + "covered-table-cell"):
                    continue
                text = "\n".join(inline(p).strip() for p in cell.iter(TEXT + "p")).strip()
                rep = int(cell.get(TABLE + "number-columns-repeated", "1") or 1)
                cells.extend([text] * (min(rep, MAX_REPEAT) if text else min(rep, 64)))
            while cells and not cells[-1]:
                cells.pop()
            if not cells:
                continue
            rep = int(row.get(TABLE + "number-rows-repeated", "1") or 1)
            for _ in range(min(rep, MAX_REPEAT)):
                budget.add_cells(len(cells))
                out.append(cells)
            if len(out) % 256 == 0:
                self.doc.tick()
        return trim_rows(out)


def parse(data: bytes, doc, ctx) -> None:
    try:
        from defusedxml.ElementTree import fromstring
    except ImportError:         # pragma: no cover
        from xml.etree.ElementTree import fromstring

    zf = open_zip(data, ctx.limits, ctx.label or "OpenDocument")
    with zf:
        try:
            root = fromstring(zf.read("content.xml"))
        except KeyError:
            raise ParseFailure("it is not a valid OpenDocument (no content.xml)") from None
        except Exception as e:
            raise ParseFailure(f"its content.xml is unreadable ({e})") from None
    body = root.find(OFFICE + "body")
    if body is None:
        raise ParseFailure("it is not a valid OpenDocument (no office:body)")
    w = _Walker(doc, ctx)
    sheet = body.find(OFFICE + "spreadsheet")
    pres = body.find(OFFICE + "presentation")
    if sheet is not None:
        for i, table in enumerate(sheet.iter(TABLE + "table")):
            name = table.get(TABLE + "name", f"Sheet{i + 1}")
            ctx.budget.where = f"in sheet {name!r}"
            sep = "\n" if i else ""
            doc.txt(f"{sep}--- sheet: {name} ---\n")
            doc.md(f"{sep}## Sheet: {name}\n\n")
            cut = None
            try:
                rows = w.rows(table)
            except Cut as c:            # keep the rows read so far
                rows, cut = trim_rows(w.partial), c
            if rows:
                doc.table(rows)
            else:
                doc.both("(empty sheet)\n")
            if cut is not None:
                raise cut
    elif pres is not None:
        pages = list(pres.iter(DRAW + "page"))
        for i, page in enumerate(pages):
            ctx.budget.where = f"after slide {i} of {len(pages)}"
            doc.tick()
            name = page.get(DRAW + "name", "")
            title = "" if not name or name.lower().startswith("page") else name
            sep = "\n" if i else ""
            doc.txt(f"{sep}--- slide {i + 1} ---\n")
            doc.md(f"{sep}## Slide {i + 1}" + (f": {title}" if title else "") + "\n\n")
            notes = page.find(PRES + "notes")
            if notes is not None:
                page.remove(notes)
            w.gap = False
            w.walk(page)
            if notes is not None:
                t = "\n".join(inline(p).strip() for p in notes.iter(TEXT + "p")).strip()
                if t:
                    doc.txt(f"notes: {t}\n")
                    doc.md(f"\n### Notes\n\n{t}\n")
    else:
        w.walk(body)
