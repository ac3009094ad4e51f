"""The parse worker: runs one parser on one document within its limits.

:func:`run_parse` is the whole parse, exceptions included, as a plain function (tests and
tools may call it in-process). :func:`worker_main` is the loop of a worker process: it lowers
its priority, forbids core dumps, exits when the daemon is gone, then serves requests from a pipe with
RLIMIT_AS set to the memory limit while it parses.

A worker is a fresh interpreter (``subprocess``, never a fork of the threaded daemon), talking
over a socketpair wrapped in ``multiprocessing.connection.Connection``.

Protocol on the pipe (parent -> worker): ``("parse", header)`` then the document as one
``send_bytes``; ``("ping",)``; ``None`` to exit. Worker -> parent: ``("ready", pid)`` once
its imports are done, then one result dict per parse (``"recycle": True`` when the worker
exits after it: memory error, grown heap, or enough tasks served).
"""
from __future__ import annotations

import importlib
import os
import resource
import signal
import sys
import time

from .limits import Budget, Cut, Limits, ParseFailure, human_bytes
from .output import Doc
from .result import explain

# C0 controls other than tab and newline make grep call a file binary: views never carry them.
_CONTROLS = {c: None for c in range(32) if c not in (9, 10, 13)}
_CONTROLS[0x7F] = None
_CONTROLS[0xFFFE] = None
_CONTROLS[0xFFFF] = None


def clean(s: str) -> str:
    if "\r" in s:
        s = s.replace("\r\n", "\n").replace("\r", "\n")
    s = s.translate(_CONTROLS)
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:          # lone surrogates from a broken font map
        s = s.encode("utf-8", "replace").decode("utf-8")
    return s


def _tidy(s: str) -> str:
    """No leading blank lines, exactly one newline at the end."""
    s = s.lstrip("\n").rstrip()
    return s + "\n" if s else ""


class Context:
    """What a parser knows besides the bytes: the file name, the kind, the limits, the budget."""

    def __init__(self, name: str, kind: str, limits: Limits, budget: Budget, label: str):
        self.name = name
        self.kind = kind
        self.limits = limits
        self.budget = budget
        self.label = label


def _resolve(target: str):
    module, _, func = target.partition(":")
    return getattr(importlib.import_module(module), func)


def _attempt(target: str, data: bytes, ctx: Context) -> dict:
    """Runs one parser; returns text/markdown/error/truncated/cacheable."""
    doc = Doc(ctx.budget)
    out = {"error": None, "truncated": False, "cacheable": True, "recycle": False,
           "understood": False}
    try:
        _resolve(target)(data, doc, ctx)
    except Cut as cut:
        out["truncated"] = True
        out["cacheable"] = cut.limit != "time"
        note = cut.note() + "\n"
        text, md = doc.text(), doc.markdown()
        out["text"] = text + ("" if not text or text.endswith("\n") else "\n") + note
        out["markdown"] = md + ("" if not md or md.endswith("\n") else "\n") + note
        return out
    except ParseFailure as e:
        out["error"] = str(e)
        out["understood"] = True        # we know why: no second parser will do better
    except MemoryError:
        doc = None
        out["error"] = (f"it needs more memory than the limit of "
                        f"{human_bytes(ctx.limits.memory_limit)}")
        out["recycle"] = True
    except RecursionError:
        out["error"] = "it is nested too deeply"
    except Exception as e:          # a library's bug or a document it cannot read
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        out["error"] = f"{type(e).__name__}: {msg}" if msg else type(e).__name__
        peak = _vm_peak()
        if peak > _peak_at_start and peak >= 0.9 * ctx.limits.memory_limit:
            # C libraries (lxml) report a failed malloc as their own error
            out["error"] = (f"it needs more memory than the limit of "
                            f"{human_bytes(ctx.limits.memory_limit)} ({out['error']})")
            out["recycle"] = True
    if out["error"] is None:
        out["text"], out["markdown"] = doc.text(), doc.markdown()
    return out


def run_parse(data: bytes, name: str, kind: str, target: str, limits: Limits, *,
              label: str = "", parser: str = "", fallback: tuple[str, str] | None = None,
              start: float | None = None) -> dict:
    """Parses ``data``; always returns a result dict (the fields of ParseResult, plus recycle)."""
    global _peak_at_start
    _peak_at_start = _vm_peak()
    budget = Budget(limits, start)
    base = {"parser": parser, "kind": kind, "error": None, "truncated": False,
            "cacheable": True, "recycle": False}
    if len(data) > limits.max_input:
        reason = (f"it is {human_bytes(len(data))}, more than the limit of "
                  f"{human_bytes(limits.max_input)} for documents")
        line = explain(name, label, reason)
        return {**base, "text": line, "markdown": line, "error": reason, "elapsed": 0.0}
    ctx = Context(name, kind, limits, budget, label)
    out = _attempt(target, data, ctx)
    used = parser
    if (out["error"] is not None and fallback is not None and not out["recycle"]
            and not out["understood"]):
        fb_target, fb_parser = fallback     # the first parser crashed: a second opinion
        second = _attempt(fb_target, data, ctx)
        if second["error"] is None:
            out, used = second, fb_parser
    out.pop("understood")
    result = {**base, **out, "parser": used}
    if result["error"] is not None:
        result["text"] = result["markdown"] = explain(name, label, result["error"])
    else:
        result["text"] = _tidy(clean(result["text"]))
        result["markdown"] = _tidy(clean(result["markdown"]))
        if not result["text"].strip():
            line = f"[nexusfs: no text found in {name}]\n"
            result["text"] = line
            result["markdown"] = result["markdown"] if result["markdown"].strip() else line
    result["elapsed"] = budget.elapsed()
    return result


# -- the worker process ---------------------------------------------------------------------

PRELOAD = ("nexusfs.views._preload",)


def _status(field: str) -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _vm_size() -> int:
    return _status("VmSize:")


def _vm_peak() -> int:
    return _status("VmPeak:")


_peak_at_start = 0


def _die_with_parent() -> None:
    """Exits when the daemon is gone, even in the middle of a parse.

    (PR_SET_PDEATHSIG would fire when the *thread* that started the worker exits, and the
    daemon starts workers from short-lived worker threads.)"""
    import threading

    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def cli(argv: list[str]) -> None:
    """Entry point of a worker process: ``python -c ... FD NICE MAX_TASKS``."""
    from multiprocessing.connection import Connection

    fd, nice, max_tasks = (int(a) for a in argv[:3])
    worker_main(Connection(fd), nice, max_tasks)


def worker_main(conn, nice: int, max_tasks: int) -> None:
    import logging
    import warnings

    signal.signal(signal.SIGINT, signal.SIG_IGN)     # ^C on a foreground daemon is not ours
    logging.getLogger().setLevel(logging.ERROR)     # libraries' chatter stays out of the log
    warnings.simplefilter("ignore")
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent()
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError):
        pass
    if nice:
        try:
            os.nice(nice)
        except OSError:
            pass
    for module in PRELOAD:
        importlib.import_module(module)
    _, hard_as = resource.getrlimit(resource.RLIMIT_AS)
    baseline = _vm_size()
    conn.send(("ready", os.getpid()))
    tasks = 0
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        if msg[0] == "ping":
            conn.send(("pong", os.getpid()))
            continue
        header = msg[1]
        data = conn.recv_bytes()
        start = time.monotonic()
        limits = Limits.from_dict(header["limits"])
        mem = limits.memory_limit
        if hard_as != resource.RLIM_INFINITY:
            mem = min(mem, hard_as)
        try:
            resource.setrlimit(resource.RLIMIT_AS, (mem, hard_as))
        except (ValueError, OSError):
            pass
        try:
            result = run_parse(data, header["name"], header["kind"], header["target"], limits,
                               label=header.get("label", ""), parser=header.get("parser", ""),
                               fallback=header.get("fallback"), start=start)
        finally:
            del data
            try:
                resource.setrlimit(resource.RLIMIT_AS, (hard_as, hard_as))
            except (ValueError, OSError):
                pass
        tasks += 1
        grown = _vm_size() - baseline > limits.memory_limit // 2
        if grown or tasks >= max_tasks:
            result["recycle"] = True
        try:
            conn.send(result)
        except (OSError, ValueError):
            return
        if result["recycle"]:
            conn.close()
            sys.exit(0)
