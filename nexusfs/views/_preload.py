"""Imported by the forkserver (and by each worker): the libraries every parse needs.

With the 'forkserver' start method this runs once in the fork server, a fresh single-threaded
process, so every worker forked from it starts with pypdf, openpyxl, python-docx, python-pptx,
xlrd, bs4 and markdownify already imported (~0.9 s of imports saved per worker, and a worker
that died is replaced in tens of milliseconds). markitdown is not preloaded: it costs ~1 s and
~100 MB and is needed only for rare formats, so a worker imports it on first use.

numpy (imported by openpyxl when present) would start an OpenBLAS thread pool; one thread is
plenty and keeps the fork server single-threaded, which makes forking it safe.
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import importlib  # noqa: E402

for _name in ("pypdf", "openpyxl", "docx", "pptx", "xlrd", "bs4", "markdownify", "lxml.etree",
              "nexusfs.views.parsers.pdf", "nexusfs.views.parsers.sheets",
              "nexusfs.views.parsers.word", "nexusfs.views.parsers.slides",
              "nexusfs.views.parsers.web", "nexusfs.views.parsers.odf"):
    try:
        importlib.import_module(_name)
    except Exception:       # a missing optional library shows up as that format's parse error
        pass
