"""Spreadsheets: XLSX/XLSM via openpyxl (read-only, cached formula values), XLS via xlrd.

Every sheet in workbook order, named. Text view: ``--- sheet: NAME ---`` then one
tab-separated line per row. Markdown view: ``## Sheet: NAME`` then a table whose header is
the first row. Empty rows and empty trailing cells are dropped; numbers are shown with up to 15
significant digits (as a spreadsheet shows them without a number format), dates in ISO form.
At most ``max_cells`` cells are read per workbook: past that the view is cut with a note.
"""
from __future__ import annotations

import io
import os

from ..limits import Cut, ParseFailure
from ..output import cell_str, trim_rows
from ..safezip import check_zip_bytes

PARSER_VERSION = "1"


def _emit_sheet(doc, index: int, name: str, rows: list[list[str]], note: str = "") -> None:
    rows = trim_rows(rows)
    sep = "\n" if index else ""
    title = name + (f" ({note})" if note else "")
    doc.txt(f"{sep}--- sheet: {title} ---\n")
    doc.md(f"{sep}## Sheet: {title}\n\n")
    if not rows:
        doc.both("(empty sheet)\n")
        return
    doc.table(rows)


def _read_rows(doc, ctx, name: str, row_iter) -> tuple[list[list[str]], Cut | None]:
    """Reads rows until the end or a limit; returns what was read and the Cut, if any."""
    rows: list[list[str]] = []
    budget = ctx.budget
    try:
        for r, row in enumerate(row_iter):
            if r % 256 == 0:
                budget.where = f"in sheet {name!r} at row {r + 1}"
                doc.tick()
            budget.add_cells(len(row))
            rows.append(row)
    except Cut as cut:
        cut.detail = f"in sheet {name!r} after row {len(rows)}"
        return rows, cut
    return rows, None


def parse_xlsx(data: bytes, doc, ctx) -> None:
    import zipfile

    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    check_zip_bytes(data, ctx.limits, "XLSX")
    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True,
                                    keep_links=False)
    except (zipfile.BadZipFile, InvalidFileException) as e:
        raise ParseFailure(f"it is not a readable XLSX ({e})") from None
    except KeyError as e:
        raise ParseFailure(f"it is not a valid XLSX (missing part {e})") from None
    try:
        for i, name in enumerate(wb.sheetnames):
            ws = wb[name]
            state = getattr(ws, "sheet_state", "visible")
            note = "" if state == "visible" else state
            if not hasattr(ws, "iter_rows"):            # a chart sheet
                _emit_sheet(doc, i, name, [], "chart sheet")
                continue
            rows, cut = _read_rows(doc, ctx, name, (
                [cell_str(v) for v in row] for row in ws.iter_rows(values_only=True)))
            _emit_sheet(doc, i, name, rows, note)
            if cut is not None:
                raise cut
    finally:
        wb.close()


def _xls_value(cell, datemode, xlrd) -> str:
    t, v = cell.ctype, cell.value
    if t in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
        return ""
    if t == xlrd.XL_CELL_DATE:
        try:
            return cell_str(xlrd.xldate.xldate_as_datetime(v, datemode))
        except Exception:
            return cell_str(v)
    if t == xlrd.XL_CELL_BOOLEAN:
        return "TRUE" if v else "FALSE"
    if t == xlrd.XL_CELL_ERROR:
        return xlrd.error_text_from_code.get(v, "#ERROR")
    return cell_str(v)


def parse_xls(data: bytes, doc, ctx) -> None:
    import xlrd

    try:
        with open(os.devnull, "w") as devnull:
            book = xlrd.open_workbook(file_contents=data, on_demand=True, logfile=devnull)
    except xlrd.XLRDError as e:
        raise ParseFailure(f"it is not a readable XLS ({e})") from None
    except Exception as e:
        raise ParseFailure(f"it is damaged ({type(e).__name__}: {e})") from None
    try:
        for i in range(book.nsheets):
            sheet = book.sheet_by_index(i)
            note = {0: "", 1: "hidden", 2: "very hidden"}.get(sheet.visibility, "")
            dm = book.datemode
            rows, cut = _read_rows(doc, ctx, sheet.name, (
                [_xls_value(c, dm, xlrd) for c in sheet.row(r)] for r in range(sheet.nrows)))
            _emit_sheet(doc, i, sheet.name, rows, note)
            book.unload_sheet(i)
            if cut is not None:
                raise cut
    finally:
        book.release_resources()
