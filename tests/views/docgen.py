"""Documents made for the tests, each with its own format's library (or, for PDF, a minimal
writer here: reportlab is not a dependency). Every generator returns bytes."""
from __future__ import annotations

import io
import zipfile


def _pdf_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def pdf(pages: list[list[str]], *, columns: list[list[list[str]]] | None = None,
        font_size: int = 11) -> bytes:
    """A PDF whose page i shows the lines pages[i] top to bottom (Helvetica).

    With ``columns``, page i instead shows columns[i][0] on the left half and columns[i][1] on
    the right half, the left column written first in the content stream.
    """
    objs: list[bytes] = []

    def add(body: bytes) -> int:
        objs.append(body)
        return len(objs)

    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica "
               b"/Encoding /WinAnsiEncoding >>")
    pages_id = len(objs) + 1
    objs.append(b"")                                   # the Pages object, filled in below
    kids = []
    specs = columns if columns is not None else [[p] for p in pages]
    lead = font_size + 3
    for cols in specs:
        ops = []
        for c, lines in enumerate(cols):
            x = 56 + c * 280
            ops.append(f"BT /F1 {font_size} Tf {lead} TL {x} 780 Td")
            for line in lines:
                ops.append(f"({_pdf_escape(line)}) Tj T*")
            ops.append("ET")
        stream = "\n".join(ops).encode("cp1252")
        content = add(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        kids.append(add(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 842] "
                        b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>"
                        % (pages_id, font, content)))
    objs[pages_id - 1] = (b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % k for k in kids)
                          + b"] /Count %d >>" % len(kids))
    catalog = add(b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id)
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
              % (len(objs) + 1, catalog, xref))
    return out.getvalue()


def pdf_positioned(items: list[tuple[int, int, str]], font_size: int = 11) -> bytes:
    """A one-page PDF drawing each (x, y, text) in the given order (y from the bottom)."""
    ops = [f"BT /F1 {font_size} Tf"]
    x0 = y0 = 0
    for x, y, text in items:
        ops.append(f"{x - x0} {y - y0} Td ({_pdf_escape(text)}) Tj")
        x0, y0 = x, y
    ops.append("ET")
    stream = "\n".join(ops).encode("cp1252")
    body = [b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
            b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
            (b"<< /Type /Page /Parent 4 0 R /MediaBox [0 0 612 842] "
             b"/Resources << /Font << /F1 1 0 R >> >> /Contents 2 0 R >>"),
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Catalog /Pages 4 0 R >>"]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for i, b in enumerate(body, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + b + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 6\n0000000000 65535 f \n")
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(b"trailer\n<< /Size 6 /Root 5 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref)
    return out.getvalue()


def pdf_pages(n: int, words_per_page: int = 3, lines_per_page: int = 40) -> bytes:
    """n pages; page i starts with 'alpha{i} bravo{i} charlie{i}' then filler lines."""
    pages = []
    for i in range(1, n + 1):
        lines = [f"marker page{i} alpha{i} bravo{i} charlie{i}"]
        lines += [f"line {j} of page {i}: the quick brown fox jumps over the lazy dog"
                  for j in range(lines_per_page - 1)]
        pages.append(lines)
    return pdf(pages)


def encrypt_pdf(data: bytes, user: str, owner: str = "owner", algorithm: str = "AES-128") -> bytes:
    import pypdf

    w = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(data)))
    w.encrypt(user_password=user, owner_password=owner, algorithm=algorithm)
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def docx() -> bytes:
    import docx as _docx

    d = _docx.Document()
    d.add_heading("Quarterly Report", level=1)
    d.add_paragraph("Introduction paragraph with zebra words.")
    d.add_heading("Findings", level=2)
    d.add_paragraph("first bullet apple", style="List Bullet")
    d.add_paragraph("second bullet banana", style="List Bullet")
    d.add_paragraph("step one cherry", style="List Number")
    d.add_paragraph("step two damson", style="List Number")
    p = d.add_paragraph("A sentence with ")
    p.add_run("bold words").bold = True
    p.add_run(" and ")
    p.add_run("italic words").italic = True
    p.add_run(".")
    t = d.add_table(rows=3, cols=3)
    for r, row in enumerate([["Name", "Qty", "Price"], ["widget", "4", "2.50"],
                             ["gadget", "7", "9.99"]]):
        for c, v in enumerate(row):
            t.cell(r, c).text = v
    d.add_heading("Conclusion", level=2)
    d.add_paragraph("Closing remarks with yak words.")
    out = io.BytesIO()
    d.save(out)
    return out.getvalue()


def xlsx(sheets: dict[str, list[list]] | None = None) -> bytes:
    import datetime

    import openpyxl

    if sheets is None:
        sheets = {
            "Budget": [["Item", "Cost", "When"], ["rent", 1200, datetime.date(2024, 5, 1)],
                       ["food", 310.5, datetime.date(2024, 5, 2)], ["total", 1510.5, None]],
            "People": [["Name", "Age"], ["Ada", 36], ["Linus", 28]],
            "Empty": [],
        }
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def xlsx_big(rows: int, cols: int) -> bytes:
    import openpyxl

    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("Big")
    for r in range(rows):
        ws.append([r * cols + c for c in range(cols)])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def pptx() -> bytes:
    import pptx as _pptx
    from pptx.util import Inches

    prs = _pptx.Presentation()
    s1 = prs.slides.add_slide(prs.slide_layouts[1])        # title and content
    s1.shapes.title.text = "Launch Plan"
    body = s1.placeholders[1].text_frame
    body.text = "goal walrus"
    p = body.add_paragraph()
    p.text = "detail narwhal"
    p.level = 1
    s1.notes_slide.notes_text_frame.text = "remember the otter"
    s2 = prs.slides.add_slide(prs.slide_layouts[5])        # title only
    s2.shapes.title.text = "Numbers"
    table = s2.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(4), Inches(1)).table
    for r, row in enumerate([["Region", "Sales"], ["north", "42"]]):
        for c, v in enumerate(row):
            table.cell(r, c).text = v
    s3 = prs.slides.add_slide(prs.slide_layouts[5])
    s3.shapes.title.text = "Closing"
    box = s3.shapes.add_textbox(Inches(1), Inches(2), Inches(4), Inches(1))
    box.text_frame.text = "thanks penguin"
    out = io.BytesIO()
    prs.save(out)
    return out.getvalue()


def html() -> bytes:
    return (b"<!DOCTYPE html><html><head><title>Garden Notes</title>"
            b"<style>body{color:red}</style><script>var secret='scriptword';</script></head>"
            b"<body><h1>Garden Notes</h1><p>Tomatoes need <b>sun</b> and "
            b"<a href='https://example.org/water'>water</a>.</p>"
            b"<h2>Pests</h2><ul><li>aphid</li><li>slug</li></ul>"
            b"<table><tr><th>Plant</th><th>Days</th></tr><tr><td>basil</td><td>30</td></tr></table>"
            b"</body></html>")


def epub() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")
        z.writestr("META-INF/container.xml",
                   '<?xml version="1.0"?><container version="1.0" '
                   'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
                   '<rootfile full-path="OEBPS/content.opf" '
                   'media-type="application/oebps-package+xml"/></rootfiles></container>')
        z.writestr("OEBPS/content.opf",
                   '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" '
                   'version="3.0"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
                   '<dc:title>Sea Stories</dc:title><dc:creator>Ann Author</dc:creator>'
                   '</metadata><manifest>'
                   '<item id="c1" href="c1.xhtml" media-type="application/xhtml+xml"/>'
                   '<item id="c2" href="c2.xhtml" media-type="application/xhtml+xml"/>'
                   '</manifest><spine><itemref idref="c1"/><itemref idref="c2"/></spine>'
                   '</package>')
        for i, word in ((1, "harbour"), (2, "lighthouse")):
            z.writestr(f"OEBPS/c{i}.xhtml",
                       f'<html xmlns="http://www.w3.org/1999/xhtml"><body><h1>Chapter {i}</h1>'
                       f"<p>The {word} at dawn.</p></body></html>")
    return out.getvalue()


def odt() -> bytes:
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" office:version="1.2">'
        '<office:body><office:text>'
        '<text:h text:outline-level="1">Field Guide</text:h>'
        '<text:p>Spotting the heron<text:s text:c="2"/>at dusk.</text:p>'
        '<text:list><text:list-item><text:p>egret</text:p></text:list-item>'
        '<text:list-item><text:p>ibis</text:p></text:list-item></text:list>'
        '<table:table table:name="T"><table:table-row><table:table-cell><text:p>bird</text:p>'
        '</table:table-cell><table:table-cell><text:p>count</text:p></table:table-cell>'
        '</table:table-row><table:table-row><table:table-cell><text:p>crane</text:p>'
        '</table:table-cell><table:table-cell><text:p>3</text:p></table:table-cell>'
        '<table:table-cell table:number-columns-repeated="16000"/></table:table-row>'
        '<table:table-row table:number-rows-repeated="1048000"><table:table-cell '
        'table:number-columns-repeated="16000"/></table:table-row></table:table>'
        '</office:text></office:body></office:document-content>')
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.text")
        z.writestr("content.xml", content)
        z.writestr("META-INF/manifest.xml", '<?xml version="1.0"?><manifest:manifest '
                   'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"/>')
    return out.getvalue()


_ODF_NS = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
           'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
           'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
           'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
           'xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0"')


def _odf(mimetype: str, body: str) -> bytes:
    content = (f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {_ODF_NS} '
               f'office:version="1.2"><office:body>{body}</office:body>'
               f'</office:document-content>')
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo("mimetype"), mimetype)
        z.writestr("content.xml", content)
    return out.getvalue()


def ods() -> bytes:
    def row(*cells: str, rep: int = 1) -> str:
        tds = "".join(f"<table:table-cell><text:p>{c}</text:p></table:table-cell>" for c in cells)
        return f'<table:table-row table:number-rows-repeated="{rep}">{tds}</table:table-row>'
    return _odf("application/vnd.oasis.opendocument.spreadsheet",
                '<office:spreadsheet><table:table table:name="Stock">'
                + row("fruit", "count") + row("kiwi", "12") + row("same", "row", rep=2)
                + '</table:table><table:table table:name="Notes">' + row("remember mango")
                + "</table:table></office:spreadsheet>")


def odp() -> bytes:
    def frame(text: str) -> str:
        return f"<draw:frame><draw:text-box><text:p>{text}</text:p></draw:text-box></draw:frame>"
    return _odf("application/vnd.oasis.opendocument.presentation",
                '<office:presentation><draw:page draw:name="Opening">' + frame("hello falcon")
                + "<presentation:notes>" + frame("speaker hint owl") + "</presentation:notes>"
                + '</draw:page><draw:page draw:name="page2">' + frame("bye hawk")
                + "</draw:page></office:presentation>")


def zip_bomb_docx(inflated: int = 1 << 30) -> bytes:
    """A DOCX-shaped zip whose document.xml inflates to ``inflated`` bytes of zeros."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types '
                   'xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>')
        info = zipfile.ZipInfo("word/document.xml")
        info.compress_type = zipfile.ZIP_DEFLATED
        info._compresslevel = 1
        with z.open(info, "w", force_zip64=True) as f:
            block = b"\0" * (1 << 20)
            for _ in range(inflated // len(block)):
                f.write(block)
    return out.getvalue()


def docx_paragraphs(n: int) -> bytes:
    """A DOCX with n extra short paragraphs (built by editing a generated document's XML)."""
    src = docx()
    zin = zipfile.ZipFile(io.BytesIO(src))
    xml = zin.read("word/document.xml").decode()
    i = xml.index("<w:body>") + len("<w:body>")
    body = "".join(f"<w:p><w:r><w:t>word {k} of the big document</w:t></w:r></w:p>"
                   for k in range(n))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in zin.infolist():
            data = (xml[:i] + body + xml[i:]).encode() if info.filename == "word/document.xml" \
                else zin.read(info.filename)
            z.writestr(info.filename, data)
    return out.getvalue()


def xlsx_sparse() -> bytes:
    """A sheet whose two cells are A1 and XFD1048576: 17 billion cells by its dimension."""
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Sparse"
    ws["A1"] = "start"
    ws["XFD1048576"] = "end"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
