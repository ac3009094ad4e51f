"""PPTX via python-pptx: slide by slide, title first, then the shapes top to bottom.

Text view: ``--- slide N ---``, the title, the text of every shape (groups included), tables
tab-separated, chart titles, picture descriptions, and the speaker notes. Markdown view:
``## Slide N: Title``, body placeholders as nested bullet lists, tables as markdown tables,
``### Notes``.
"""
from __future__ import annotations

import io
import re

from ..limits import ParseFailure
from ..output import trim_rows
from ..safezip import check_zip_bytes

PARSER_VERSION = "1"


def _pos(shape) -> tuple[int, int]:
    try:
        return (shape.top or 0, shape.left or 0)
    except Exception:
        return (0, 0)


def _is_body(shape) -> bool:
    try:
        if not shape.is_placeholder:
            return False
        from pptx.enum.shapes import PP_PLACEHOLDER
        return shape.placeholder_format.type in (PP_PLACEHOLDER.BODY, PP_PLACEHOLDER.OBJECT,
                                                 PP_PLACEHOLDER.SUBTITLE)
    except Exception:
        return False


def _shapes(shapes, doc, title_id) -> None:
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    for shape in sorted(shapes, key=_pos):
        if title_id is not None and shape.shape_id == title_id:
            continue
        st = None
        try:
            st = shape.shape_type
        except Exception:
            pass
        if st == MSO_SHAPE_TYPE.GROUP:
            _shapes(shape.shapes, doc, None)
            continue
        if getattr(shape, "has_table", False) and shape.has_table:
            rows = trim_rows([[c.text.strip() for c in r.cells] for r in shape.table.rows])
            if rows:
                doc.both("\n")
                doc.table(rows)
            continue
        if getattr(shape, "has_chart", False) and shape.has_chart:
            _chart(shape.chart, doc)
            continue
        if st == MSO_SHAPE_TYPE.PICTURE:
            try:
                descr = (shape._element._nvXxPr.cNvPr.get("descr") or "").strip()
            except Exception:
                descr = ""
            if descr:
                descr = " ".join(descr.split())
                try:
                    ext = shape.image.ext
                except Exception:
                    ext = "jpg"
                fname = re.sub(r"\W", "", shape.name or "image") + "." + ext
                doc.txt(f"[image: {descr}]\n")
                doc.md(f"\n![{descr}]({fname})\n")
            continue
        if not getattr(shape, "has_text_frame", False) or not shape.has_text_frame:
            continue
        body = _is_body(shape)
        paras = [(p.level, "".join(r.text for r in p.runs).strip() or p.text.strip())
                 for p in shape.text_frame.paragraphs]
        paras = [(lvl, t) for lvl, t in paras if t]
        if not paras:
            continue
        doc.md("\n")
        for lvl, t in paras:
            doc.txt(("  " * lvl if body else "") + t.replace("\x0b", "\n") + "\n")
            if body:
                doc.md("  " * lvl + "- " + " ".join(t.split()) + "\n")
            else:
                doc.md(t.replace("\x0b", "  \n") + "\n")


def _chart(chart, doc) -> None:
    """The chart's title, then its data as a table: one row per category, a column per series."""
    from ..output import cell_str

    try:
        title = chart.chart_title.text_frame.text.strip() if chart.has_title else ""
    except Exception:
        title = ""
    doc.txt(f"[chart{': ' + title if title else ''}]\n")
    doc.md(f"\n### Chart{': ' + title if title else ''}\n")
    try:
        plot = chart.plots[0]
        cats = [cell_str(c) for c in plot.categories]
        series = [(s.name or "", list(s.values)) for p in chart.plots for s in p.series]
    except Exception:
        return
    if not series:
        return
    rows = [["Category"] + [name for name, _ in series]]
    for i, cat in enumerate(cats):
        rows.append([cat] + [cell_str(v[i]) if i < len(v) else "" for _, v in series])
    doc.md("\n")
    doc.table(rows)


def parse(data: bytes, doc, ctx) -> None:
    import pptx
    from pptx.exc import PackageNotFoundError

    check_zip_bytes(data, ctx.limits, "PPTX")
    try:
        prs = pptx.Presentation(io.BytesIO(data))
    except (PackageNotFoundError, KeyError) as e:
        raise ParseFailure(f"it is not a valid PPTX ({e})") from None
    except ValueError as e:
        raise ParseFailure(f"it is not a PowerPoint presentation ({e})") from None
    slides = list(prs.slides)
    for i, slide in enumerate(slides):
        n = i + 1
        ctx.budget.where = f"after slide {i} of {len(slides)}"
        doc.tick()
        title_shape = None
        try:
            title_shape = slide.shapes.title
        except Exception:
            pass
        title = " ".join(title_shape.text_frame.text.split()) if (
            title_shape is not None and title_shape.has_text_frame) else ""
        sep = "\n" if i else ""
        doc.txt(f"{sep}--- slide {n} ---\n" + (title + "\n" if title else ""))
        doc.md(f"{sep}## Slide {n}" + (f": {title}" if title else "") + "\n")
        _shapes(slide.shapes, doc, title_shape.shape_id if title_shape is not None else None)
        if slide.has_notes_slide:
            try:
                notes = slide.notes_slide.notes_text_frame.text.strip()
            except Exception:
                notes = ""
            if notes:
                doc.txt(f"notes: {notes}\n")
                doc.md(f"\n### Notes\n\n{notes}\n")
    if not slides:
        doc.both("(no slides)\n")
