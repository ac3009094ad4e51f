"""HTML and EPUB via BeautifulSoup (lxml) and markdownify: the libraries markitdown itself
uses for these formats, called directly so that a worker never pays markitdown's import
(~1 s, onnxruntime). markitdown stays registered as the fallback if these fail.

HTML: the body (scripts, styles, forms' innards, inline SVG and data: images dropped) as
markdown with ATX headings — only the ``<main>`` element when the page has one holding most of
its text (navigation bars and sidebars are noise in a view); the text view is that markdown without markup. The page title
becomes the top heading when the body has no ``<h1>``. The body is converted block by block
so that the time and output limits can cut a huge page instead of losing it all.

EPUB: title, authors, publisher, date and description from the package document, then every spine document in reading
order, each converted like HTML.
"""
from __future__ import annotations

import posixpath
import re
from urllib.parse import unquote
from xml.etree import ElementTree

from ..limits import ParseFailure
from ..output import md_to_text
from ..safezip import open_zip

PARSER_VERSION = "2"

_DROP = ["script", "style", "noscript", "template", "svg", "head", "iframe", "object", "embed",
         "select", "canvas"]


def _xml(data: bytes):
    try:
        from defusedxml.ElementTree import fromstring
    except ImportError:         # pragma: no cover - defusedxml comes with openpyxl/markitdown
        fromstring = ElementTree.fromstring
    return fromstring(data)


def _converter():
    import markdownify

    class _Md(markdownify.MarkdownConverter):
        def convert_a(self, el, text, *args, **kwargs):
            href = el.get("href") or ""
            if href.lower().startswith(("javascript:", "data:")):
                return text
            return super().convert_a(el, text, *args, **kwargs)

        def convert_img(self, el, text, *args, **kwargs):
            src = el.get("src") or ""
            alt = (el.get("alt") or "").strip()
            if src.startswith("data:"):
                return f"![{alt}]()" if alt else ""
            return super().convert_img(el, text, *args, **kwargs)

    return _Md(heading_style=markdownify.ATX, escape_underscores=False, escape_misc=False,
               bullets="-")


def html_blocks(data: bytes | str, doc, *, want_title: bool = True):
    """Markdown of an HTML document, block by block; ticks the budget between blocks."""
    import warnings

    from bs4 import BeautifulSoup, NavigableString, Tag

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")     # XHTML parsed as HTML (EPUB): fine here
            soup = BeautifulSoup(data, "lxml")
    except Exception:
        soup = BeautifulSoup(data, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title is not None else ""
    for tag in soup(_DROP):
        tag.decompose()
    root = soup.body or soup
    mains = root.find_all("main")
    if len(mains) == 1 and len(mains[0].get_text()) >= 0.5 * len(root.get_text()):
        root = mains[0]         # the page's own content, without its navigation and sidebars
    if want_title and title and root.find("h1") is None:
        yield f"# {title}"
    conv = _converter()
    for n, child in enumerate(list(root.children)):
        if n % 16 == 0:
            doc.tick()
        if isinstance(child, Tag):
            try:
                md = conv.convert_soup(child)
            except RecursionError:
                md = child.get_text("\n", strip=True)
        elif child.__class__ is NavigableString:
            md = " ".join(str(child).split())
        else:
            md = ""
        md = re.sub(r"\n{3,}", "\n\n", md.strip("\n"))
        if md.strip():
            yield md


def emit_html(data: bytes | str, doc, *, want_title: bool = True) -> None:
    for md in html_blocks(data, doc, want_title=want_title):
        doc.md(md + "\n\n")
        doc.txt(md_to_text(md) + "\n")


def parse_html(data: bytes, doc, ctx) -> None:
    emit_html(data, doc)


_OPF = "{http://www.idpf.org/2007/opf}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"


def parse_epub(data: bytes, doc, ctx) -> None:
    zf = open_zip(data, ctx.limits, "EPUB")
    with zf:
        try:
            container = _xml(zf.read("META-INF/container.xml"))
            rootfile = container.find(f".//{_CONTAINER}rootfile")
            opf_path = rootfile.get("full-path")
            opf = _xml(zf.read(opf_path))
        except KeyError as e:
            raise ParseFailure(f"it is not a valid EPUB (missing {e})") from None
        except Exception as e:
            raise ParseFailure(f"its package document is unreadable ({e})") from None
        base = posixpath.dirname(opf_path)
        title = (opf.findtext(f".//{_DC}title") or "").strip()
        authors = [a.text.strip() for a in opf.iter(f"{_DC}creator") if a.text and a.text.strip()]
        manifest = {it.get("id"): it.get("href") for it in opf.iter(f"{_OPF}item")}
        spine = [manifest.get(ref.get("idref")) for ref in opf.iter(f"{_OPF}itemref")]
        head = []
        if title:
            head.append(f"# {title}")
        if authors:
            head.append(f"**Authors:** {', '.join(authors)}")
        for key, tag in (("Publisher", "publisher"), ("Date", "date"),
                         ("Description", "description")):
            value = " ".join((opf.findtext(f".//{_DC}{tag}") or "").split())
            if value:
                head.append(f"**{key}:** {value}")
        if head:
            doc.md("\n\n".join(head) + "\n\n")
            doc.txt(md_to_text("\n\n".join(head)) + "\n")
        names = set(zf.namelist())
        for i, href in enumerate(spine):
            if not href:
                continue
            ctx.budget.where = f"after chapter {i} of {len(spine)}"
            doc.tick()
            path = posixpath.normpath(posixpath.join(base, href.split("#")[0]))
            if path not in names:
                path = unquote(path)
                if path not in names:
                    continue
            emit_html(zf.read(path), doc, want_title=False)
