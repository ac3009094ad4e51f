"""The control command registry: one grammar and one set of commands behind both the
``/.nexus/ctl`` file and the control socket.

A command is a shell-like line (shlex rules: quotes and backslashes work, ``#`` is literal),
or, from the socket, a ready argv list. ``execute(service, line, caller)`` parses it, calls the
HistoryService on behalf of ``caller`` and returns a ``Reply``: ``.text`` for people (what
``cat /.nexus/ctl.last`` shows; empty or ending in a newline) and ``.data`` for programs (plain
JSON-able data; file contents as base64). The grammar is the ``@command`` specs below; ``help``
prints them and docs/control-protocol.md explains them.

Errors: execute() raises nothing but ``FsError``. ``CommandError`` (EINVAL) when the line itself
is wrong (garbage, unknown command, bad arguments; the message names the reason, the usage and
the commands), the service's FsError unchanged, ENOSYS for a service method that is not there
yet, EIO for a bug (logged with its traceback).

Concurrency: stateless. Any number of execute() calls may run at once in trio tasks; each
awaits the service on the trio thread, and the service decides what may interleave.
"""
from __future__ import annotations

import base64
import errno
import logging
import posixpath
import re
import shlex
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..history.service import HistoryService
from ..types import Caller, FsError
from . import render

log = logging.getLogger("nexusfs.control")

MAX_COMMAND = 64 * 1024          # bytes of one command line (or of one argv, all words)


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    data: Any = None


class CommandError(FsError):
    """The command line is wrong (EINVAL): the message gives the reason and what is valid."""

    def __init__(self, message: str, errno_: int = errno.EINVAL):
        super().__init__(errno_, message)


# -- the registry -------------------------------------------------------------------------------
Handler = Callable[[HistoryService, "Args", Caller], Awaitable[Reply]]
_SPEC_TOKEN = re.compile(r"\[(--[a-z-]+)(?: ([A-Z][A-Z0-9]*))?\]|(--[a-z-]+) ([A-Z][A-Z0-9]*)"
                         r"|\[([A-Z][A-Z0-9]*)(\.\.\.)?\]|([A-Z][A-Z0-9]*)|([a-z]+)")


@dataclass
class Command:
    words: tuple[str, ...]                       # ("snapshot", "create")
    positional: list[tuple[str, bool]]           # [("NAME", True), ("PATH", False)]
    options: dict[str, str | None]               # {"--agent": "A", "--force": None}
    required: set[str]                           # options that must be given
    variadic: bool                               # the last positional takes the rest
    spec: str
    summary: str
    handler: Handler = field(repr=False)

    @property
    def name(self) -> str:
        return " ".join(self.words)

    @classmethod
    def from_spec(cls, spec: str, summary: str, handler: Handler) -> "Command":
        words, positional, options, required, variadic = [], [], {}, set(), False
        pos = 0
        for m in _SPEC_TOKEN.finditer(spec):
            if spec[pos:m.start()].strip():
                raise ValueError(f"bad command spec {spec!r}")
            pos = m.end()
            opt, optvar, reqopt, reqvar, optional, dots, arg, word = m.groups()
            if opt:
                options[opt] = optvar
            elif reqopt:
                options[reqopt] = reqvar
                required.add(reqopt)
            elif optional:
                positional.append((optional, False))
                variadic = bool(dots)
            elif arg:
                positional.append((arg, True))
            else:
                if positional or options:
                    raise ValueError(f"bad command spec {spec!r}: words come first")
                words.append(word)
        return cls(tuple(words), positional, options, required, variadic, spec, summary, handler)

    def parse(self, tokens: Sequence[str]) -> "Args":
        values: list[str] = []
        opts: dict[str, str | bool] = {}
        i, only_positional = 0, False
        while i < len(tokens):
            t = tokens[i]
            i += 1
            if only_positional or not t.startswith("--"):
                values.append(t)
                continue
            if t == "--":
                only_positional = True
                continue
            name, eq, value = t.partition("=")
            if name not in self.options:
                raise self.error(f"unknown option {name}")
            if name in opts:
                raise self.error(f"{name} given twice")
            metavar = self.options[name]
            if metavar is None:
                if eq:
                    raise self.error(f"{name} takes no value")
                opts[name] = True
                continue
            if not eq:
                if i >= len(tokens):
                    raise self.error(f"{name} needs a value ({metavar})")
                value = tokens[i]
                i += 1
            opts[name] = value
        for name in sorted(self.required - set(opts)):
            raise self.error(f"missing {name} {self.options[name]}")
        named: dict[str, Any] = {}
        for k, (metavar, needed) in enumerate(self.positional):
            last = k == len(self.positional) - 1
            if last and self.variadic:
                named[metavar] = values[k:]
            elif k < len(values):
                named[metavar] = values[k]
            elif needed:
                raise self.error(f"missing {metavar}")
            else:
                named[metavar] = None
        if len(values) > len(self.positional) and not self.variadic:
            raise self.error(f"unexpected argument {values[len(self.positional)]!r}")
        return Args(self, named, opts)

    def error(self, reason: str) -> CommandError:
        return CommandError(f"{self.name}: {reason} (usage: {self.spec}; commands: {_names()})")


class Args:
    """The parsed arguments of one command: positionals by metavar, options by --name."""

    def __init__(self, cmd: Command, positional: dict[str, Any], options: dict[str, str | bool]):
        self.cmd, self._pos, self._opts = cmd, positional, options

    def __getitem__(self, key: str):
        return self._opts.get(key) if key.startswith("--") else self._pos.get(key)

    def int(self, key: str, *, minimum: int = 0) -> int | None:
        value = self[key]
        if value is None:
            return None
        if not re.fullmatch(r"[0-9]{1,18}", value) or int(value) < minimum:
            what = "a positive integer" if minimum > 0 else "a non-negative integer"
            raise self.cmd.error(f"{key} must be {what}, not {value!r}")
        return int(value)

    def path(self, key: str, default: str | None = None) -> str | None:
        value = self[key]
        return default if value is None else store_path(value, self.cmd)


REGISTRY: list[Command] = []


def command(spec: str, summary: str):
    def register(fn: Handler) -> Handler:
        REGISTRY.append(Command.from_spec(spec, summary, fn))
        return fn
    return register


def _names() -> str:
    return ", ".join(dict.fromkeys(c.words[0] for c in REGISTRY))


def help_lines(topic: Sequence[str] = ()) -> list[str]:
    cmds = [c for c in REGISTRY if tuple(c.words[:len(topic)]) == tuple(topic)] or REGISTRY
    return [f"{c.spec}\n    {c.summary}\n" for c in cmds]


def store_path(value: str, cmd: Command | None = None) -> str:
    """An absolute, normalised store path ("src/a.py" and "/src/../src/a.py" -> "/src/a.py")."""
    if not value or "\0" in value:
        raise (cmd.error if cmd else CommandError)(f"bad path {value!r}")
    p = posixpath.normpath("/" + value.lstrip("/"))
    return "/" + p.lstrip("/")


# -- parsing and dispatch -----------------------------------------------------------------------
def split_line(line: str | bytes) -> list[str]:
    """One command line -> argv; anything that is not one line of text is EINVAL."""
    if isinstance(line, (bytes, bytearray, memoryview)):
        line = bytes(line)
        if len(line) > MAX_COMMAND:
            raise CommandError(f"command longer than {MAX_COMMAND // 1024} KiB")
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError:
            raise CommandError("command is not UTF-8 text") from None
    elif not isinstance(line, str):
        raise CommandError("command must be text")
    elif len(line) > MAX_COMMAND or len(line.encode("utf-8", "surrogatepass")) > MAX_COMMAND:
        raise CommandError(f"command longer than {MAX_COMMAND // 1024} KiB")
    line = line.strip()
    if not line:
        raise CommandError(f"empty command; commands: {_names()}")
    if "\n" in line or "\r" in line:
        raise CommandError("one command per write: the text holds several lines")
    if any(ord(ch) < 32 and ch != "\t" or ch == "\x7f" for ch in line):
        raise CommandError("command holds binary data (control characters)")
    try:
        return shlex.split(line, comments=False, posix=True)
    except ValueError as e:
        raise CommandError(f"cannot parse the command: {e}") from None


def resolve(argv: Sequence[str]) -> tuple[Command, list[str]]:
    """The command whose words are the longest prefix of ``argv``, and the remaining tokens."""
    best = None
    for cmd in REGISTRY:
        n = len(cmd.words)
        if tuple(argv[:n]) == cmd.words and (best is None or n > len(best.words)):
            best = cmd
    if best is None:
        group = [c.words[1] for c in REGISTRY if argv and len(c.words) > 1 and c.words[0] == argv[0]]
        if group:
            raise CommandError(f"unknown command {' '.join(argv[:2])!r}; {argv[0]} commands: "
                               f"{', '.join(group)}; commands: {_names()}")
        raise CommandError(f"unknown command {argv[0] if argv else ''!r}; commands: {_names()} "
                           f"(`help` lists them with their arguments)")
    return best, list(argv[len(best.words):])


def check_argv(argv) -> list[str]:
    if not isinstance(argv, (list, tuple)) or not argv:
        raise CommandError("argv must be a non-empty list of strings")
    if not all(isinstance(a, str) for a in argv):
        raise CommandError("argv must be a list of strings")
    if sum(len(a.encode("utf-8", "surrogatepass")) + 1 for a in argv) > MAX_COMMAND:
        raise CommandError(f"command longer than {MAX_COMMAND // 1024} KiB")
    if any("\0" in a for a in argv):
        raise CommandError("command holds a NUL character")
    return list(argv)


async def execute(service: HistoryService, line: str | bytes, caller: Caller) -> Reply:
    """Run one command line for ``caller``. Raises only FsError (see the module docstring)."""
    return await execute_argv(service, split_line(line), caller)


async def execute_argv(service: HistoryService, argv: Sequence[str], caller: Caller) -> Reply:
    cmd, rest = resolve(check_argv(argv))
    args = cmd.parse(rest)
    try:
        return await cmd.handler(service, args, caller)
    except FsError:
        raise
    except NotImplementedError:
        raise FsError(errno.ENOSYS, f"{cmd.name}: not implemented by this daemon") from None
    except Exception as e:
        log.exception("control command %r failed", list(argv))
        raise FsError(errno.EIO, f"{cmd.name}: internal error ({type(e).__name__}); "
                                 f"see the daemon log") from None


def error_text(e: FsError) -> str:
    """What ``ctl.last`` shows after a failed command: the error, and for a wrong command line
    the list of commands."""
    text = f"error: {render.errno_name(e.errno)}: {e.message}\n"
    if isinstance(e, CommandError):
        text += "\ncommands:\n" + "".join(help_lines())
    return text


def _lines(lines) -> str:
    return "".join(lines)


def _content(path: str, seq: int, content: bytes) -> Reply:
    return Reply(render.content_text(content),
                 {"path": path, "seq": seq, "size": len(content),
                  "base64": base64.b64encode(content).decode("ascii")})


UNITS_NS = {"s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9, "d": 86400 * 10**9,
            "w": 7 * 86400 * 10**9}


def parse_since(text: str, now_ns: int | None = None) -> tuple[int | None, int | None]:
    """``--since``: a sequence number, an ISO time (local unless it names its zone) or an age
    like 90s, 10m, 2h, 3d, 1w. Returns (since_seq, since_ns); raises ValueError."""
    text = text.strip()
    if re.fullmatch(r"[0-9]{1,18}", text):
        return int(text), None
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([smhdw])", text)
    if m:
        now_ns = time.time_ns() if now_ns is None else now_ns
        return None, now_ns - int(float(m[1]) * UNITS_NS[m[2]])
    dt = datetime.fromisoformat(text.replace("z", "Z"))      # ValueError for anything else
    whole = int(dt.replace(microsecond=0).timestamp())
    return None, whole * 10**9 + dt.microsecond * 1000


async def _seq_or_snapshot(service: HistoryService, args: Args, key: str) -> int:
    value = args[key]
    if re.fullmatch(r"[0-9]{1,18}", value):
        return int(value)
    for snap in await service.snapshot_list():
        if snap.get("name") == value:
            return int(snap["seq"])
    raise FsError(errno.ENOENT, f"{key} {value}: neither a sequence number nor a snapshot")


# -- the commands -------------------------------------------------------------------------------
@command("snapshot create NAME [PATH]", "name the current state of the tree at PATH (default /)")
async def _snapshot_create(svc, a, caller):
    info = await svc.snapshot_create(a["NAME"], a.path("PATH", "/"), caller)
    return Reply(f"snapshot {info.get('name', a['NAME'])} of {info.get('path')} "
                 f"at seq {info.get('seq')}\n", info)


@command("snapshot list", "the snapshots, oldest first")
async def _snapshot_list(svc, a, caller):
    snaps = await svc.snapshot_list()
    return Reply(_lines(render.snapshot_lines(snaps)), snaps)


@command("snapshot delete NAME", "forget a snapshot (the history it named stays until retention)")
async def _snapshot_delete(svc, a, caller):
    await svc.snapshot_delete(a["NAME"], caller)
    return Reply(f"snapshot {a['NAME']} deleted\n", {"deleted": a["NAME"]})


@command("snapshot rename OLD NEW", "rename a snapshot")
async def _snapshot_rename(svc, a, caller):
    await svc.snapshot_rename(a["OLD"], a["NEW"], caller)
    return Reply(f"snapshot {a['OLD']} renamed to {a['NEW']}\n", {"old": a["OLD"], "new": a["NEW"]})


@command("snapshot restore NAME [PATH]",
         "make the snapshot's tree (or PATH inside it) look as it did; undoable")
async def _snapshot_restore(svc, a, caller):
    r = await svc.snapshot_restore(a["NAME"], a.path("PATH"), caller)
    where = r.get("path") or a.path("PATH") or "its tree"
    n = r.get("changed")
    return Reply(f"restored {where} to snapshot {a['NAME']}: {n} "
                 f"{'entry' if n == 1 else 'entries'} changed "
                 f"(seq {r.get('seq')}; `undo seq {r.get('seq')}` reverts it)\n", r)


@command("snapshot diff NAME [PATH]", "what changed since the snapshot: A added, D deleted, "
         "M modified, R replaced")
async def _snapshot_diff(svc, a, caller):
    changes = await svc.snapshot_diff(a["NAME"], a.path("PATH"), caller=caller)
    return Reply(_lines(render.change_lines(changes, a["NAME"])), changes)


async def _undo(svc, caller, a, *, count=1, seq=None):
    results = await svc.undo(caller, count=count, seq=seq, agent=a["--agent"],
                             path=a.path("--path"), force=bool(a["--force"]))
    return Reply(_lines(render.undo_lines(results)), results)


@command("undo [N] [--seq S] [--agent A] [--path P] [--force]",
         "undo your last N operations (default 1), or operation S, or the last of agent A "
         "or on path P; --force overrides conflicts with later changes")
async def _undo_cmd(svc, a, caller):
    count, seq = a.int("N", minimum=1), a.int("--seq")
    if seq is not None and (count is not None or a["--agent"] is not None or a["--path"]):
        raise a.cmd.error("--seq names one operation; it does not combine with N, --agent "
                          "or --path")
    return await _undo(svc, caller, a, count=count or 1, seq=seq)


@command("undo seq S [--force]", "undo operation S (same as undo --seq S)")
async def _undo_seq(svc, a, caller):
    return await _undo(svc, caller, a, seq=a.int("S"))


@command("log [--agent A] [--uid N] [--path P] [--type OP] [--since WHEN] [--limit N]",
         "the operation log, oldest first (with --limit, the newest N); WHEN is a seq, an ISO "
         "time or an age like 10m, 2h, 3d")
async def _log(svc, a, caller):
    since_seq = since_ns = None
    if a["--since"] is not None:
        try:
            since_seq, since_ns = parse_since(a["--since"])
        except ValueError:
            raise a.cmd.error(f"--since takes a seq, an ISO time or an age like 10m, "
                              f"not {a['--since']!r}") from None
    records = await svc.log(agent=a["--agent"], uid=a.int("--uid"), path=a.path("--path"),
                            op=a["--type"], since_seq=since_seq, since_ns=since_ns,
                            limit=a.int("--limit", minimum=1), caller=caller)
    return Reply(_lines(render.log_lines(records)), records)


@command("versions list PATH", "the versions of a file (deleted files too), oldest first")
async def _versions_list(svc, a, caller):
    path = a.path("PATH")
    versions = await svc.versions_list(path, caller=caller)
    return Reply(_lines(render.version_lines(versions, path)), versions)


@command("versions show PATH SEQ", "the content of version SEQ")
async def _versions_show(svc, a, caller):
    path, seq = a.path("PATH"), a.int("SEQ")
    return _content(path, seq, await svc.version_read(path, seq, caller=caller))


@command("versions rollback PATH SEQ", "make version SEQ the content again (a new version)")
async def _versions_rollback(svc, a, caller):
    path, seq = a.path("PATH"), a.int("SEQ")
    r = await svc.versions_rollback(path, seq, caller)
    return Reply(f"{path}: rolled back to version {seq} (seq {r.get('seq')})\n", r)


@command("versions diff PATH SEQ1 [SEQ2]",
         "unified diff from version SEQ1 to SEQ2 (default: the newest version)")
async def _versions_diff(svc, a, caller):
    path, seq1, seq2 = a.path("PATH"), a.int("SEQ1"), a.int("SEQ2")
    old = await svc.version_read(path, seq1, caller=caller)
    if seq2 is None:
        versions = await svc.versions_list(path, caller=caller)
        if not versions:
            raise FsError(errno.ENOENT, f"{path} has no versions")
        seq2 = int(versions[-1]["seq"])
    new = await svc.version_read(path, seq2, caller=caller)
    diff = render.unified_diff(old, new, f"{path}@{seq1}", f"{path}@{seq2}")
    data = {"path": path, "from": seq1, "to": seq2, "identical": old == new,
            "binary": render.is_binary(old) or render.is_binary(new), "diff": diff}
    return Reply(diff or f"{path}: versions {seq1} and {seq2} are identical\n", data)


@command("cat --at SEQ PATH", "a file's content as of seq SEQ (or snapshot SEQ)")
async def _cat_at(svc, a, caller):
    path, seq = a.path("PATH"), await _seq_or_snapshot(svc, a, "--at")
    return _content(path, seq, await svc.cat_at(path, seq, caller=caller))


@command("ls --at SEQ [PATH]", "a directory as of seq SEQ (or snapshot SEQ); default /")
async def _ls_at(svc, a, caller):
    path, seq = a.path("PATH", "/"), await _seq_or_snapshot(svc, a, "--at")
    entries = await svc.ls_at(path, seq, caller=caller)
    return Reply(_lines(render.ls_lines(entries)), entries)


@command("stats", "files, bytes, dedup and compression of the store")
async def _stats(svc, a, caller):
    s = await svc.stats()
    return Reply(_lines(render.kv_lines(s)), s)


@command("gc", "collect garbage now: drop unreferenced chunks, compact packs")
async def _gc(svc, a, caller):
    r = await svc.gc()
    return Reply(_lines(render.kv_lines(r)), r)


@command("help [TOPIC...]", "this list (help snapshot: the snapshot commands)")
async def _help(svc, a, caller):
    topic = a["TOPIC"] or []
    cmds = [c for c in REGISTRY if tuple(c.words[:len(topic)]) == tuple(topic)]
    if topic and not cmds:
        raise a.cmd.error(f"no command {' '.join(topic)!r}")
    return Reply(_lines(help_lines(topic)),
                 {"commands": [{"usage": c.spec, "summary": c.summary} for c in cmds]})

from . import rebac_commands  # noqa: E402,F401  (registers the rebac commands)

# the file operations (file info|read|write|ls|...): the nexus API's door into the daemon
from . import file_commands  # noqa: E402,F401
from . import search_commands  # noqa: E402,F401  (grep, glob, search, reindex, index status)
