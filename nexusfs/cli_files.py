"""The nexus file verbs (init, write, cat, ls, tree, size, info, cp, mv, rm, mkdir, rmdir, sync,
write-batch): a store used from the shell without a mount, through the nexus API.

The store is ``--data-dir DIR`` (or $NEXUS_DATA_DIR), or the mount point of ``--mount MNT``,
else the store the current directory is in (found upwards, as git finds its repository), else
the only running mount, else the default data directory. When a daemon serves it the verbs
go through its control socket; otherwise they open it for the duration of the command (a
second process then gets exit 5, "in use").

Store paths start with ``/`` (the store's root) and are never looked up on the local disk;
local paths are the arguments named LOCAL (sync, write-batch, --input) or carry the prefix
``local:`` (cp). Exit codes: 0 done, 1 failed, 2 usage (a store path without its leading /),
3 not found (store or local path), 4 conflict (a stale etag, --if-none-match on an existing
file), 5 store in use by another process, 6 permission denied, 130 interrupted. Errors are one
line on stderr. ``--json`` prints data; long transfers show a progress bar on a terminal.
"""
from __future__ import annotations

import base64
import fnmatch
import json
import os
import stat as st
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import click

from .api.errors import (EXIT_INTERRUPTED, EXIT_NOT_FOUND, EXIT_USAGE, InvalidPathError,
                         NexusError, NotFoundError)

BATCH_FILES = 256                       # files per transaction in sync
BATCH_BYTES = 64 << 20                  # ... or bytes


def _fail(message: str, code: int = 1):
    click.echo(f"nexus: {message}", err=True)
    sys.exit(code)


def _store_path(path: str) -> str:
    if not path.startswith("/"):
        raise InvalidPathError(f"{path!r}: store paths start with / (local files: use "
                               f"local:{path})")
    return path


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@contextmanager
def _store(data_dir: str | None, mount: str | None):
    """The connection for one command; every API error ends it as one line + its exit code."""
    from . import runtime
    from .api import connect
    from .config import enclosing_store
    from .control.door import choose
    mount, data_dir = choose(mount, data_dir)
    try:
        if mount and data_dir:
            raise click.UsageError("give --mount or --data-dir, not both")
        if mount:
            nx = connect(mount, door="daemon", create=False)
        elif data_dir:
            nx = connect(data_dir, create=False)
        elif (here := enclosing_store()) is not None:
            nx = connect(here, create=False)
        else:
            mounts = runtime.all_mounts()
            nx = connect(mounts[0]["data_dir"] if len(mounts) == 1 else None, create=False)
        try:
            yield nx
        finally:
            nx.close()
    except NexusError as e:
        _fail(str(e), e.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted (what was committed stays; run it again to finish)", EXIT_INTERRUPTED)
    except BrokenPipeError:
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        sys.exit(0)


def _store_options(fn):
    fn = click.option("--mount", "mount", type=click.Path(file_okay=False),
                      help="A mount point: ask its daemon.")(fn)
    fn = click.option("--data-dir", envvar="NEXUS_DATA_DIR", type=click.Path(file_okay=False),
                      help="The store ($NEXUS_DATA_DIR; default: the store the current directory "
                           "is in, else the only running mount, else the default data "
                           "directory).")(fn)
    return fn


def _json_opt(fn):
    return click.option("--json", "as_json", is_flag=True, help="Print the data as JSON.")(fn)


def _print_json(data) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _progress(total: int, label: str):
    """A rich progress bar on stderr when it is a terminal, else a no-op."""
    if not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                               TimeRemainingColumn, TransferSpeedColumn)
    prog = Progress(TextColumn(label), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    TimeRemainingColumn(), console=Console(stderr=True), transient=True)
    prog.start()
    prog.task = prog.add_task(label, total=total)
    return prog


def _local(path: str) -> Path:
    p = Path(path)
    if not os.path.lexists(p):
        raise NotFoundError(f"{path}: no such local file or directory")
    return p


def _mode_text(mode: int, kind: str) -> str:
    head = {"dir": "d", "symlink": "l", "file": "-"}.get(kind, "?")
    bits = "".join(c if mode & (1 << (8 - i)) else "-" for i, c in enumerate("rwxrwxrwx"))
    return head + bits


def _table(headers: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> None:
    """A rich table on a terminal; aligned plain columns otherwise (stable for scripts)."""
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table
        t = Table(box=None, header_style="bold")
        for i, h in enumerate(headers):
            t.add_column(h, justify="right" if i in right else "left", no_wrap=True)
        for r in rows:
            t.add_row(*r)
        Console().print(t)
        return
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    for r in [headers] + rows:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))]
        click.echo("  ".join(cells).rstrip())


# -- init and single files ----------------------------------------------------------------------
@click.command("init")
@click.argument("directory", type=click.Path(file_okay=False))
def init(directory):
    """Make an empty store in DIRECTORY (created if missing; kept if already a store)."""
    from .api import connect
    from .config import load
    cfg = load(directory)
    if cfg.db_path.exists():
        click.echo(f"{cfg.data_dir} already holds a nexusfs store")
        return
    try:
        connect(directory, door="embedded", create=True).close()
    except NexusError as e:
        _fail(str(e), e.exit_code)
    click.echo(f"empty nexusfs store in {cfg.data_dir} (the verbs use it from inside it, or "
               f"with --data-dir / NEXUS_DATA_DIR)")


@click.command("write")
@click.argument("path")
@click.argument("content", required=False)
@click.option("--input", "input_", metavar="LOCAL", help="Read the content from this local "
              "file (- for standard input).")
@click.option("--if-match", metavar="ETAG", help="Only if the file still has this etag "
              "(exit 4 otherwise).")
@click.option("--if-none-match", is_flag=True, help="Only if the file does not exist yet.")
@click.option("--mode", default="666", show_default=True, help="Permissions of a new file "
              "(octal, before the umask).")
@click.option("--no-parents", is_flag=True, help="Fail if the parent directory is missing.")
@_store_options
@_json_opt
def write(path, content, input_, if_match, if_none_match, mode, no_parents, data_dir, mount,
          as_json):
    """Make CONTENT (or --input) the whole content of store file PATH."""
    if (content is None) == (input_ is None):
        raise click.UsageError("give CONTENT or --input LOCAL (one of them)")
    try:
        perms = int(mode, 8)
    except ValueError:
        raise click.UsageError(f"--mode is octal (644), not {mode!r}") from None
    with _store(data_dir, mount) as nx:
        _store_path(path)
        if content is not None:
            source, f = content.encode(), None
        elif input_ == "-":
            source, f = sys.stdin.buffer, None
        else:
            f = open(_local(input_), "rb")
            source = f
        try:
            info = nx.write(path, source, if_match=if_match, if_none_match=if_none_match,
                            mode=perms, parents=not no_parents)
        finally:
            if f is not None:
                f.close()
        if as_json:
            _print_json(info.to_dict())
        else:
            click.echo(f"{info.path}: {info.size} bytes, etag {info.etag}, version {info.version}")


def _meta_lines(info: dict) -> str:
    keys = ("path", "type", "size", "etag", "version", "mode", "uid", "gid", "mtime_ns",
            "ctime_ns", "atime_ns")
    out = []
    for k in keys:
        v = info.get(k)
        if k == "mode" and v is not None:
            v = f"{v:04o}"
        elif k.endswith("_ns") and v is not None:
            v = f"{v} ({time.strftime('%Y-%m-%dT%H:%M:%S', time.localtime(v / 1e9))})"
        out.append(f"{k}: {v}\n")
    return "".join(out)


@click.command("cat")
@click.argument("paths", nargs=-1, required=True)
@click.option("--metadata", is_flag=True, help="After the content, its etag, version, size "
              "and times.")
@click.option("--at", "at", metavar="SEQ", help="As of a sequence number or a snapshot name.")
@_store_options
@_json_opt
def cat(paths, metadata, at, data_dir, mount, as_json):
    """Write the content of store files PATH... to standard output."""
    out = sys.stdout.buffer
    with _store(data_dir, mount) as nx:
        for path in paths:
            _store_path(path)
            if at is not None:
                data = nx.command("cat", "--at", at, "--", path)
                if as_json:
                    _print_json(data)
                else:
                    out.write(base64.b64decode(data["base64"]))
                continue
            r = nx.read(path, with_metadata=True)
            info = r.to_dict()
            if as_json:
                info["base64"] = base64.b64encode(r.content).decode("ascii")
                _print_json(info)
                continue
            out.write(r.content)
            if metadata:
                out.write(b"" if r.content.endswith(b"\n") or not r.content else b"\n")
                out.write(b"--\n" + _meta_lines(info).encode())
        out.flush()


@click.command("info")
@click.argument("paths", nargs=-1, required=True)
@_store_options
@_json_opt
def info(paths, data_dir, mount, as_json):
    """Attributes of store paths: type, size, etag, version, mode, owner, times."""
    with _store(data_dir, mount) as nx:
        infos = [nx.info(_store_path(p)).to_dict() for p in paths]
        if as_json:
            _print_json(infos if len(infos) > 1 else infos[0])
            return
        click.echo("\n".join(_meta_lines(i) for i in infos), nl=False)


# -- listings -----------------------------------------------------------------------------------
@click.command("ls")
@click.argument("path", default="/", required=False)
@click.option("--recursive", "-R", is_flag=True, help="Everything below PATH.")
@click.option("--long", "-l", "long_", is_flag=True, help="Mode, owner, size, time.")
@click.option("--at", "at", metavar="SEQ", help="As of a sequence number or a snapshot name.")
@_store_options
@_json_opt
def ls(path, recursive, long_, at, data_dir, mount, as_json):
    """List store directory PATH (default /)."""
    with _store(data_dir, mount) as nx:
        _store_path(path)
        if at is not None:
            entries = nx.command("ls", "--at", at, "--", path)
            for e in entries:
                e.setdefault("path", path.rstrip("/") + "/" + e["name"])
        else:
            entries = nx.ls(path, recursive=recursive)
        if as_json:
            _print_json(entries)
            return
        base = path.rstrip("/")
        names = [(e["path"][len(base) + 1:] if recursive else e["name"]) +
                 ("/" if e["type"] == "dir" else "") for e in entries]
        if not long_:
            for n in names:
                click.echo(n)
            return
        rows = [[_mode_text(e["mode"], e["type"]), str(e.get("uid", "")), str(e.get("gid", "")),
                 str(e["size"]), time.strftime("%Y-%m-%d %H:%M", time.localtime(e["mtime_ns"] / 1e9)),
                 n] for e, n in zip(entries, names)]
        _table(["MODE", "UID", "GID", "SIZE", "MODIFIED", "NAME"], rows, right={3})


@click.command("tree")
@click.argument("path", default="/", required=False)
@click.option("-L", "level", type=click.IntRange(min=1), help="At most this many levels.")
@click.option("--show-size", is_flag=True, help="Sizes of files.")
@_store_options
def tree(path, level, show_size, data_dir, mount):
    """Draw store directory PATH as a tree."""
    with _store(data_dir, mount) as nx:
        _store_path(path)
        entries = nx.ls(path, recursive=True)
        base = path.rstrip("/")
        children: dict[str, list[dict]] = {}
        for e in entries:
            children.setdefault(e["path"].rsplit("/", 1)[0] or "/", []).append(e)
        click.echo(path)
        dirs = files = 0

        def draw(d: str, prefix: str, depth: int):
            nonlocal dirs, files
            kids = children.get(d or "/", [])
            for i, e in enumerate(kids):
                last = i == len(kids) - 1
                size = f" [{_human(e['size'])}]" if show_size and e["type"] != "dir" else ""
                click.echo(f"{prefix}{'└── ' if last else '├── '}{e['name']}"
                           f"{'/' if e['type'] == 'dir' else ''}{size}")
                if e["type"] == "dir":
                    dirs += 1
                    if level is None or depth < level:
                        draw(e["path"], prefix + ("    " if last else "│   "), depth + 1)
                else:
                    files += 1
        draw(base, "", 1)
        click.echo(f"\n{dirs} directories, {files} files")


@click.command("size")
@click.argument("path", default="/", required=False)
@click.option("--human", "-h", "human", is_flag=True, help="KiB, MiB, GiB.")
@_store_options
@_json_opt
def size(path, human, data_dir, mount, as_json):
    """Total size of the files below store PATH."""
    with _store(data_dir, mount) as nx:
        _store_path(path)
        entries = nx.ls(path, recursive=True)
        files = [e for e in entries if e["type"] == "file"]
        total = sum(e["size"] for e in files)
        if as_json:
            _print_json({"path": path, "bytes": total, "files": len(files),
                         "dirs": sum(e["type"] == "dir" for e in entries)})
        else:
            click.echo(f"{_human(total) if human else total}\t{path}")


# -- names --------------------------------------------------------------------------------------
@click.command("mkdir")
@click.argument("paths", nargs=-1, required=True)
@click.option("--parents", "-p", is_flag=True, help="Make missing parents; no error if it exists.")
@_store_options
def mkdir(paths, parents, data_dir, mount):
    """Make store directories."""
    with _store(data_dir, mount) as nx:
        for p in paths:
            nx.mkdir(_store_path(p), parents=parents)


@click.command("rmdir")
@click.argument("paths", nargs=-1, required=True)
@_store_options
def rmdir(paths, data_dir, mount):
    """Remove empty store directories."""
    with _store(data_dir, mount) as nx:
        for p in paths:
            nx.rmdir(_store_path(p))


@click.command("rm")
@click.argument("paths", nargs=-1, required=True)
@click.option("--recursive", "-r", is_flag=True, help="Directories and everything below them.")
@click.option("--force", "-f", is_flag=True, help="Missing paths are not an error.")
@_store_options
def rm(paths, recursive, force, data_dir, mount):
    """Remove store files (and with -r directories)."""
    with _store(data_dir, mount) as nx:
        for p in paths:
            try:
                nx.rm(_store_path(p), recursive=recursive)
            except NotFoundError:
                if not force:
                    raise


@click.command("mv")
@click.argument("src")
@click.argument("dst")
@click.option("--no-clobber", "-n", is_flag=True, help="Do not replace an existing DST.")
@_store_options
def mv(src, dst, no_clobber, data_dir, mount):
    """Rename store path SRC to DST (into DST when it is a directory)."""
    with _store(data_dir, mount) as nx:
        nx.mv(_store_path(src), _store_path(dst), overwrite=not no_clobber)


@click.command("cp")
@click.argument("src")
@click.argument("dst")
@click.option("--recursive", "-r", is_flag=True, help="Copy directories.")
@_store_options
def cp(src, dst, recursive, data_dir, mount):
    """Copy SRC to DST. Both are store paths unless prefixed local: (a file on this disk):
    `nexus cp local:./a.txt /a.txt`, `nexus cp /a.txt local:./a.txt`."""
    with _store(data_dir, mount) as nx:
        if src.startswith("local:") and dst.startswith("local:"):
            raise click.UsageError("one of SRC and DST must be a store path")
        if src.startswith("local:"):
            local = _local(src[6:])
            if local.is_dir():
                if not recursive:
                    raise click.UsageError(f"{src[6:]} is a directory (use -r)")
                _upload_tree(nx, local, _store_path(dst), delete=False, dry_run=False)
                return
            target = _store_path(dst)
            if nx.exists(target) and nx.info(target).type == "dir":
                target = target.rstrip("/") + "/" + local.name
            with open(local, "rb") as f:
                nx.write(target, f)
        elif dst.startswith("local:"):
            data = nx.read(_store_path(src))
            out = Path(dst[6:])
            if out.is_dir():
                out = out / src.rstrip("/").rsplit("/", 1)[-1]
            tmp = out.with_name(f".{out.name}.nexus-tmp")
            tmp.write_bytes(data)
            os.replace(tmp, out)          # whole or not at all
        else:
            nx.cp(_store_path(src), _store_path(dst), recursive=recursive)


# -- bulk transfers -----------------------------------------------------------------------------
class _LazyFile:
    """A local file opened at its first read and closed at its end: a batch of thousands of
    files holds one descriptor at a time."""

    def __init__(self, path: Path):
        self.path, self.f, self.done = path, None, False

    def read(self, n: int = -1) -> bytes:
        if self.done:
            return b""
        if self.f is None:
            self.f = open(self.path, "rb")
        data = self.f.read(n)
        if not data:
            self.close()
        return data

    def close(self) -> None:
        self.done = True
        if self.f is not None:
            self.f.close()
            self.f = None


def _local_files(root: Path, pattern: str | None = None) -> dict[str, os.stat_result]:
    """Relative path -> stat of every regular file below ``root`` (matching ``pattern``)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            if pattern and not (fnmatch.fnmatch(rel, pattern) or (
                    pattern.startswith("**/") and fnmatch.fnmatch(rel, pattern[3:]))):
                continue
            s = os.stat(full)
            if st.S_ISREG(s.st_mode):
                out[rel] = s
    return out


def _send(nx, root: Path, todo: list[tuple[str, str, os.stat_result]], label: str,
          keep_mtime: bool, batch_files: int = BATCH_FILES) -> int:
    """Write ``todo`` ((relative, store path, stat)) in batches of one transaction each;
    returns the bytes sent."""
    total = sum(s.st_size for _r, _p, s in todo)
    bar = _progress(total, label)
    sent = 0
    try:
        i = 0
        while i < len(todo):
            batch, size = [], 0
            while i < len(todo) and len(batch) < batch_files and (not batch or size < BATCH_BYTES):
                batch.append(todo[i])
                size += todo[i][2].st_size
                i += 1
            files = [_LazyFile(root / rel) for rel, _p, _s in batch]
            try:
                nx.write_batch([(p, f, s.st_mtime_ns) if keep_mtime else (p, f)
                                for (_rel, p, s), f in zip(batch, files)])
            finally:
                for f in files:
                    f.close()
            sent += size
            if bar is not None:
                bar.update(bar.task, completed=sent)
    finally:
        if bar is not None:
            bar.stop()
    return sent


def _upload_tree(nx, root: Path, dest: str, *, delete: bool, dry_run: bool,
                 pattern: str | None = None, batch_files: int = BATCH_FILES) -> dict:
    dest = "/" + dest.strip("/") if dest.strip("/") else "/"
    local = _local_files(root, pattern)
    remote: dict[str, dict] = {}
    if nx.exists(dest):
        for e in nx.ls(dest, recursive=True):
            remote[e["path"][len(dest.rstrip("/")) + 1:]] = e
    todo = []
    unchanged = 0
    for rel, s in local.items():
        have = remote.get(rel)
        if have and have["type"] == "file" and have["size"] == s.st_size and \
                have["mtime_ns"] == s.st_mtime_ns:
            unchanged += 1
            continue
        todo.append((rel, dest.rstrip("/") + "/" + rel, s))
    doomed = []
    if delete:
        keep = set(local)
        for rel in local:
            parts = rel.split("/")
            keep.update("/".join(parts[:k]) for k in range(1, len(parts)))
        for r in sorted(remote):
            if r not in keep and not any(r.startswith(d + "/") for d in doomed):
                doomed.append(r)
    report = {"copied": [t[1] for t in todo], "bytes": sum(t[2].st_size for t in todo),
              "unchanged": unchanged, "deleted": [dest.rstrip("/") + "/" + r for r in doomed],
              "dry_run": dry_run}
    if dry_run:
        return report
    _send(nx, root, todo, "sync", keep_mtime=True, batch_files=batch_files)
    for path in report["deleted"]:
        try:
            nx.rm(path, recursive=True)
        except NotFoundError:
            pass
    return report


@click.command("sync")
@click.argument("local", type=click.Path(file_okay=False))
@click.argument("dest")
@click.option("--dry-run", "-n", is_flag=True, help="Only say what would be copied and deleted.")
@click.option("--delete", is_flag=True, help="Remove store files that LOCAL does not have.")
@click.option("--batch-files", type=click.IntRange(min=1), default=BATCH_FILES, show_default=True,
              help="Files per transaction (a batch also ends past 64 MiB).")
@_store_options
@_json_opt
def sync(local, dest, dry_run, delete, batch_files, data_dir, mount, as_json):
    """Copy the local directory LOCAL to store directory DEST: only files whose size or
    modification time differ (DEST keeps LOCAL's times). Each batch of files is one
    transaction; an interrupted sync leaves whole files only, and a rerun finishes it."""
    with _store(data_dir, mount) as nx:
        root = _local(local)
        if not root.is_dir():
            _fail(f"{local}: not a local directory", EXIT_USAGE)
        report = _upload_tree(nx, root, _store_path(dest), delete=delete, dry_run=dry_run,
                              batch_files=batch_files)
        if as_json:
            _print_json(report)
            return
        verb = "would copy" if dry_run else "copied"
        if dry_run:
            for p in report["copied"]:
                click.echo(f"copy {p}")
            for p in report["deleted"]:
                click.echo(f"delete {p}")
        click.echo(f"{verb} {len(report['copied'])} files ({_human(report['bytes'])}), "
                   f"{report['unchanged']} unchanged, "
                   f"{'would delete' if dry_run else 'deleted'} {len(report['deleted'])}")


@click.command("write-batch")
@click.argument("local", type=click.Path(file_okay=False))
@click.option("--dest-prefix", required=True, metavar="STOREPATH",
              help="Store directory the files go to (their paths below LOCAL are kept).")
@click.option("--pattern", metavar="GLOB", help='Only files whose path below LOCAL matches, '
              'e.g. "**/*.pt".')
@_store_options
@_json_opt
def write_batch(local, dest_prefix, pattern, data_dir, mount, as_json):
    """Write every file below the local directory LOCAL into the store in ONE transaction."""
    with _store(data_dir, mount) as nx:
        root = _local(local)
        if not root.is_dir():
            _fail(f"{local}: not a local directory", EXIT_USAGE)
        dest = _store_path(dest_prefix).rstrip("/")
        files = _local_files(root, pattern)
        if not files:
            _fail(f"no file below {local} matches {pattern or '*'}", EXIT_NOT_FOUND)
        items = [(rel, f"{dest}/{rel}", s) for rel, s in files.items()]
        t0 = time.monotonic()
        bar = _progress(sum(s.st_size for s in files.values()), "write-batch")
        handles = [_LazyFile(root / rel) for rel in files]
        try:
            infos = nx.write_batch([(p, f) for (_r, p, _s), f in zip(items, handles)])
        finally:
            for f in handles:
                f.close()
            if bar is not None:
                bar.stop()
        total = sum(i.size for i in infos)
        if as_json:
            _print_json({"files": len(infos), "bytes": total, "paths": [i.path for i in infos]})
        else:
            click.echo(f"wrote {len(infos)} files ({_human(total)}) under {dest or '/'} in one "
                       f"transaction, {time.monotonic() - t0:.2f} s")


VERBS = (init, write, cat, info, ls, tree, size, mkdir, rmdir, rm, mv, cp, sync, write_batch)


def register(group: click.Group) -> None:
    for cmd in VERBS:
        group.add_command(cmd)
