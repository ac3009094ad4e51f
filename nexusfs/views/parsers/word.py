"""DOCX via python-docx: paragraphs and tables in document order.

Markdown view: headings (``Title``/``Heading N`` styles or an outline level) as ``#`` lines,
bullet and numbered lists (from the numbering definitions, nested by level), tables as
markdown tables, bold/italic runs and hyperlinks. Text view: the same content without markup,
tables tab-separated, list items as ``- `` / ``1. `` lines. Text boxes and picture descriptions
(alt text) come after the paragraph that anchors them.
"""
from __future__ import annotations

import io
import re

from ..limits import ParseFailure
from ..safezip import check_zip_bytes

PARSER_VERSION = "1"

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
NS = {"w": W, "mc": "http://schemas.openxmlformats.org/markup-compatibility/2006"}
_HEADING = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)


def _w(tag: str) -> str:
    return f"{{{W}}}{tag}"


class _Numbering:
    """numId/ilvl -> number format ("bullet", "decimal", ...) from word/numbering.xml."""

    def __init__(self, document):
        self.formats: dict[tuple[str, int], str] = {}
        self.counters: dict[tuple[str, int], int] = {}
        try:
            root = document.part.numbering_part.element
        except (NotImplementedError, KeyError, AttributeError):
            return
        abstract: dict[str, dict[int, str]] = {}
        for an in root.findall(_w("abstractNum")):
            levels = {}
            for lvl in an.findall(_w("lvl")):
                fmt = lvl.find(_w("numFmt"))
                levels[int(lvl.get(_w("ilvl"), "0"))] = (fmt.get(_w("val"), "decimal")
                                                         if fmt is not None else "decimal")
            abstract[an.get(_w("abstractNumId"))] = levels
        for num in root.findall(_w("num")):
            ref = num.find(_w("abstractNumId"))
            if ref is None:
                continue
            for ilvl, fmt in abstract.get(ref.get(_w("val")), {}).items():
                self.formats[(num.get(_w("numId")), ilvl)] = fmt

    def marker(self, num_id: str, ilvl: int, style_name: str) -> tuple[str, str]:
        """The markdown and text list markers of the next item of this list level."""
        fmt = self.formats.get((num_id, ilvl))
        if fmt is None:
            fmt = "decimal" if "number" in style_name.lower() else "bullet"
        if fmt in ("bullet", "none"):
            return "-", "-"
        key = (num_id, ilvl)
        # a new item at a level restarts the numbering of the deeper levels
        for k in [k for k in self.counters if k[0] == num_id and k[1] > ilvl]:
            del self.counters[k]
        n = self.counters[key] = self.counters.get(key, 0) + 1
        return f"{n}.", f"{n}."


class _Styles:
    """Paragraph style names and list numbering by style id, looked up once.

    (python-docx's ``Paragraph.style`` scans every style for the default on each call: ~1 ms
    a paragraph, 10 s for a long report.)"""

    def __init__(self, document):
        self.by_id = {}
        self.default = None
        try:
            root = document.styles.element
        except Exception:
            return
        for st in root.style_lst:
            self.by_id[st.styleId] = st
            if self.default is None and st.type is not None and str(st.type).endswith(
                    "PARAGRAPH") and st.default:
                self.default = st

    def style(self, p):
        pPr = p._p.pPr
        sid = pPr.pStyle.val if pPr is not None and pPr.pStyle is not None else None
        return self.by_id.get(sid, self.default) if sid is not None else self.default

    def name(self, p) -> str:
        st = self.style(p)
        try:
            return (st.name_val or "") if st is not None else ""
        except Exception:
            return ""

    def num_pr(self, p):
        """(numId, ilvl) of a paragraph, from the paragraph or its style chain; None if none."""
        pPr = p._p.pPr
        numPr = pPr.numPr if pPr is not None else None
        st = self.style(p) if numPr is None else None
        depth = 0
        while numPr is None and st is not None and depth < 10:
            spPr = st.pPr
            numPr = spPr.numPr if spPr is not None else None
            st = self.by_id.get(st.basedOn_val)
            depth += 1
        if numPr is None or numPr.numId is None:
            return None
        num_id = str(numPr.numId.val)
        if num_id == "0":
            return None
        ilvl = numPr.ilvl.val if numPr.ilvl is not None else 0
        return num_id, int(ilvl or 0)


def _heading_level(p, style_name: str) -> int:
    if style_name.lower() == "title":
        return 1
    m = _HEADING.match(style_name)
    if m:
        return max(1, min(6, int(m.group(1))))
    pPr = p._p.pPr
    if pPr is not None:
        ol = pPr.find(_w("outlineLvl"))
        if ol is not None:
            try:
                level = int(ol.get(_w("val")))
            except (TypeError, ValueError):
                return 0
            if level < 9:
                return min(6, level + 1)
    return 0


def _md_runs(p) -> str:
    """Paragraph text with **bold**, *italic* and [links](url), adjacent runs merged."""
    segs: list[list] = []       # [text, bold, italic, url]
    for item in p.iter_inner_content():
        url = getattr(item, "url", None)
        if url is not None or item.__class__.__name__ == "Hyperlink":
            segs.append([item.text, False, False, url or ""])
        else:
            segs.append([item.text, bool(item.bold), bool(item.italic), None])
    merged: list[list] = []
    for s in segs:
        if not s[0]:
            continue
        if merged and s[3] is None and merged[-1][3] is None and merged[-1][1:3] == s[1:3]:
            merged[-1][0] += s[0]
        else:
            merged.append(s)
    out = []
    for text, bold, italic, url in merged:
        if url:
            out.append(f"[{text}]({url})" if text.strip() else text)
            continue
        mark = ("**" if bold else "") + ("*" if italic else "")
        core = text.strip()
        if not mark or not core:
            out.append(text)
            continue
        lead = text[: len(text) - len(text.lstrip())]
        trail = text[len(text.rstrip()):]
        out.append(f"{lead}{mark}{core}{mark[::-1]}{trail}")
    return "".join(out)


def _textboxes(p) -> list[str]:
    texts = []
    for box in p._p.iter(_w("txbxContent")):
        anc = box.getparent()
        fallback = False
        while anc is not None:
            if anc.tag == f"{{{NS['mc']}}}Fallback":
                fallback = True
                break
            anc = anc.getparent()
        if fallback:
            continue
        for bp in box.iter(_w("p")):
            t = "".join(x.text or "" for x in bp.iter(_w("t"))).strip()
            if t:
                texts.append(t)
    return texts


def _images(p) -> list[str]:
    """Descriptions (alt text) of the pictures anchored in a paragraph."""
    out = []
    for el in p._p.iter("{http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing}docPr"):
        d = " ".join((el.get("descr") or el.get("title") or "").split())
        if d:
            out.append(d)
    return out


def _table_rows(table) -> list[list[str]]:
    rows = []
    for row in table.rows:
        try:
            cells = row.cells
        except Exception:
            continue
        out, prev = [], None
        for c in cells:
            out.append("" if prev is not None and c._tc is prev else c.text.strip())
            prev = c._tc
        rows.append(out)
    return rows


def parse(data: bytes, doc, ctx) -> None:
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    check_zip_bytes(data, ctx.limits, "DOCX")
    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, KeyError) as e:
        raise ParseFailure(f"it is not a valid DOCX ({e})") from None
    except ValueError as e:
        raise ParseFailure(f"it is not a Word document ({e})") from None
    numbering = _Numbering(document)
    styles = _Styles(document)
    prev = None                 # "para", "list", "heading", "table"
    list_kind = ""              # "-" or "1": the marker kind of the current top-level list
    for n, block in enumerate(document.iter_inner_content()):
        if n % 64 == 0:
            ctx.budget.where = f"at block {n + 1} of the document body"
            doc.tick()
        if isinstance(block, Table):
            rows = [r for r in _table_rows(block) if any(c for c in r)]
            if rows:
                doc.both("\n" if prev else "")
                doc.table(rows)
                prev = "table"
            continue
        p = block
        style_name = styles.name(p)
        plain = p.text.strip()
        boxes = _textboxes(p)
        if plain:
            level = _heading_level(p, style_name)
            num = None if level else styles.num_pr(p)
            if level:
                doc.txt(("\n" if prev else "") + plain + "\n")
                doc.md(("\n" if prev else "") + "#" * level + " " + " ".join(plain.split()) + "\n")
                prev = "heading"
            elif num is not None:
                md_mark, txt_mark = numbering.marker(num[0], num[1], style_name)
                indent = "  " * num[1]
                kind = "-" if md_mark == "-" else "1"
                sep = "\n" if prev not in (None, "list") or (
                    num[1] == 0 and kind != list_kind) else ""
                list_kind = kind if num[1] == 0 else list_kind
                doc.txt(f"{sep}{indent}{txt_mark} {plain}\n")
                doc.md(f"{sep}{'   ' * num[1]}{md_mark} {_md_runs(p).strip()}\n")
                prev = "list"
            else:
                doc.txt(("\n" if prev in ("list", "table", "heading") else "") + plain + "\n")
                doc.md(("\n" if prev else "") + _md_runs(p).strip() + "\n")
                prev = "para"
        for t in boxes:
            doc.txt(t + "\n")
            doc.md(("\n" if prev else "") + t + "\n")
            prev = "para"
        for d in _images(p):
            doc.txt(f"[image: {d}]\n")
            doc.md(("\n" if prev else "") + f"![{d}]()\n")
            prev = "para"
