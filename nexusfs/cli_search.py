"""nexus grep, glob, search and reindex (``register(main)`` adds them to the nexus group).

A mounted store is asked through its daemon's control socket (``--mount``, ``--data-dir``, or
the only running mount); the daemon answers for the caller the kernel names. A store that no
daemon serves (``--data-dir`` of an unmounted store) is opened here directly, under its lock,
with the same code the daemon runs (its index is reconciled at open).

grep streams: it asks for pages of results (the daemon's cursor resumes each) and prints each
page as it comes, until ``--max-results`` is reached. Output as GNU grep's: ``path:text``,
``path:line:text`` with -n, paths with -l, ``path:count`` with -c; "binary file matches" on
stderr; paths are store paths (/src/a.py). Parsed matches show under the view's path
(/docs/a.pdf.txt). Exit codes as grep's: 0 something matched, 1 nothing did, 2 an error (a bad
pattern or query, no daemon, no such path): one line on stderr.
"""
from __future__ import annotations

import json
import os
import sys

import click

PAGE = 2000


def _fail(message: str, code: int = 2):
    click.echo(f"nexus: {message}", err=True)
    sys.exit(code)


def _options(fn):
    fn = click.option("--data-dir", envvar="NEXUS_DATA_DIR", type=click.Path(file_okay=False),
                      help="The store (asked through its daemon, or opened here when not mounted).")(fn)
    fn = click.option("--mount", "mount", type=click.Path(file_okay=False),
                      help="The mount point whose daemon to ask (default: the only one).")(fn)
    return fn


class _Asker:
    """Runs command argvs on the daemon, or on a store opened here."""

    def __init__(self, mount, data_dir, hints=()):
        from . import config, runtime
        from .control.door import choose
        mount, data_dir = choose(mount, data_dir)
        self.fs = None
        self.target = None
        served = True
        if not data_dir and not mount:
            data_dir = config.enclosing_store()
        if data_dir and not mount:
            cfg = config.load(data_dir)
            real = os.path.realpath(cfg.data_dir)
            served = any(os.path.realpath(m["data_dir"]) == real for m in runtime.all_mounts())
            self.cfg = cfg
        if served:
            from .control.client import ControlError, locate
            try:
                self.target = locate(mount, data_dir, hints=[h for h in hints if h])
            except ControlError as e:
                _fail(str(e))
        elif not self.cfg.db_path.exists():
            _fail(f"no nexusfs store in {self.cfg.data_dir}")

    def store_path(self, path: str | None) -> str | None:
        if path is None:
            return None
        return self.target.store_path(path) if self.target else path

    def run(self, argvs):
        """Yield (ok, reply or (errno, message)) for each argv the generator ``argvs`` sends
        back; ``argvs`` gets each reply's data."""
        if self.target is not None:
            from .control.client import Connection, ControlError, RemoteError
            try:
                with Connection(self.target.socket_path) as conn:
                    argv = next(argvs)
                    while True:
                        try:
                            reply = conn.request(argv=argv, want=("data",))
                        except RemoteError as e:
                            _fail(e.message)
                        argv = argvs.send(reply.get("data"))
            except StopIteration:
                return
            except ControlError as e:
                _fail(str(e))
        else:
            self._offline(argvs)

    def _offline(self, argvs):
        import trio

        from .control.commands import execute_argv
        from .core.fs import FileSystem
        from .meta.db import StoreError
        from .types import Caller, FsError
        fs = FileSystem(self.cfg)
        try:
            fs.start()
        except StoreError as e:
            _fail(str(e))
        caller = Caller(uid=os.getuid(), gid=os.getgid(), groups=tuple(os.getgroups()),
                        pid=os.getpid())

        async def main():
            try:
                argv = next(argvs)
                while True:
                    reply = await execute_argv(fs.history, argv, caller)
                    if argv[0] == "reindex":
                        await fs.search.settle(timeout=24 * 3600)
                    argv = argvs.send(reply.data)
            except StopIteration:
                pass
            except FsError as e:
                return e.message
            finally:
                await fs.close()
        error = trio.run(main)
        if error:
            _fail(error)


def _print(text: str) -> None:
    try:
        sys.stdout.buffer.write(text.encode("utf-8", "surrogateescape"))
    except BrokenPipeError:
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except OSError:
            pass
        sys.exit(0)


@click.command()
@click.argument("pattern")
@click.option("-i", "--ignore-case", is_flag=True, help="Ignore ASCII case.")
@click.option("-n", "--line-number", is_flag=True, help="Print line numbers.")
@click.option("-l", "--files-with-matches", "files", is_flag=True, help="Print only the paths of files that match.")
@click.option("-c", "--count", is_flag=True, help="Print each file's number of matching lines.")
@click.option("-F", "--fixed-strings", "fixed", is_flag=True, help="PATTERN is a plain string.")
@click.option("--file-pattern", metavar="GLOB", help="Only files matching GLOB (e.g. '**/*.py').")
@click.option("--path", "path", metavar="PATH", help="Only under PATH (a store path or a path in the mount).")
@click.option("--max-results", type=click.IntRange(min=1), help="Stop after this many lines (files with -l/-c).")
@click.option("--search-mode", type=click.Choice(["auto", "parsed", "raw"]), default="auto",
              show_default=True, help="auto: documents by their parsed text, other files by "
              "their bytes; parsed: documents only; raw: every file's bytes.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per result line.")
@_options
def grep(pattern, ignore_case, line_number, files, count, fixed, file_pattern, path,
         max_results, search_mode, as_json, mount, data_dir):
    """Lines matching PATTERN (extended regex, as grep -E) in every file of the store, like
    `grep -r` over the mount but narrowed by the index. Parsed matches show as NAME.txt."""
    from .control.search_commands import grep_text
    asker = _Asker(mount, data_dir, hints=[path])
    base = ["grep", pattern, "--search-mode", search_mode]
    for flag, on in (("--ignore-case", ignore_case), ("--fixed-strings", fixed),
                     ("--files-with-matches", files), ("--count", count)):
        if on:
            base.append(flag)
    if path:
        base += ["--path", asker.store_path(path)]
    if file_pattern:
        base += ["--file-pattern", file_pattern]
    state = {"shown": 0, "matched": False}

    def pages():
        after = None
        while True:
            room = PAGE if max_results is None else min(PAGE, max_results - state["shown"])
            data = yield base + ["--limit", str(room)] + (["--after", after] if after else [])
            results = data["results"]
            state["shown"] += len(results)
            for r in results:
                if r.get("binary") and not as_json:
                    click.echo(f"nexus: {r['path']}: binary file matches", err=True)
                    state["matched"] = True
                    continue
                if "count" not in r or r["count"]:
                    state["matched"] = True
                _print(json.dumps(r, ensure_ascii=False) + "\n" if as_json else
                       grep_text([r], numbers=line_number))
            sys.stdout.flush()
            after = data.get("next")
            if not after or (max_results is not None and state["shown"] >= max_results):
                return
    asker.run(pages())
    sys.exit(0 if state["matched"] else 1)


@click.command()
@click.argument("pattern")
@click.option("--path", "path", metavar="PATH", help="Only under PATH.")
@click.option("--max-results", type=click.IntRange(min=1), help="Stop after this many paths.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@_options
def glob(pattern, path, max_results, as_json, mount, data_dir):
    """Paths matching a glob: * and ? within a name, ** across directories, [abc]. A pattern
    without / matches names anywhere ('*.py'); with /, paths from the root ('src/**/test_*.py')."""
    asker = _Asker(mount, data_dir, hints=[path])
    argv = ["glob", pattern] + (["--path", asker.store_path(path)] if path else []) + \
        (["--limit", str(max_results)] if max_results else [])
    found = []

    def one():
        found.extend((yield argv) or [])
    asker.run(one())
    if as_json:
        _print(json.dumps(found, indent=2, ensure_ascii=False) + "\n")
    else:
        _print("".join(f"{g['path']}\n" for g in found))
    sys.exit(0 if found else 1)


@click.command()
@click.argument("query", nargs=-1, required=True)
@click.option("--limit", default=10, show_default=True, type=click.IntRange(min=1), help="Results.")
@click.option("--path", "path", metavar="PATH", help="Only under PATH.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@_options
def search(query, limit, path, as_json, mount, data_dir):
    """Files ranked by relevance to QUERY (BM25 over names and text, parsed documents
    included), each with its best line: path:line: snippet. Words must all occur (stemmed);
    "a phrase", prefix*, OR, NOT and parentheses work."""
    asker = _Asker(mount, data_dir, hints=[path])
    argv = ["search", "--limit", str(limit)] + (["--path", asker.store_path(path)] if path else []) \
        + ["--", " ".join(query)]
    found = []

    def one():
        found.extend((yield argv) or [])
    asker.run(one())
    if as_json:
        _print(json.dumps(found, indent=2, ensure_ascii=False) + "\n")
    else:
        from .search.ops import results_text
        _print(results_text(found))
    sys.exit(0 if found else 1)


@click.command()
@_options
def reindex(mount, data_dir):
    """Rebuild the search index from scratch, with a progress bar (root only). The index is
    kept current by itself; this is for a suspected damage or a changed parser."""
    import time
    asker = _Asker(mount, data_dir)
    if asker.target is None:
        click.echo("indexing (the store is not mounted: opened here) ...", err=True)
        done = []

        def offline():
            done.append((yield ["reindex"]))
        asker.run(offline())
        click.echo(f"indexed {done[0]['queued'] if done else 0} files")
        return
    from .control.client import ControlError, RemoteError, call
    try:
        queued = call(asker.target.socket_path, argv=["reindex"], want=("data",))["data"]["queued"]
        with click.progressbar(length=max(queued, 1), label="indexing", file=sys.stderr) as bar:
            while True:
                s = call(asker.target.socket_path, argv=["index", "status"], want=("data",))["data"]
                bar.update(max(0, queued - s["pending"]) - bar.pos)
                if not s["pending"]:
                    break
                time.sleep(0.2)
    except RemoteError as e:
        _fail(e.message, 1)
    except ControlError as e:
        _fail(str(e))
    click.echo(f"indexed {queued} files")


def register(main: click.Group) -> None:
    for cmd in (grep, glob, search, reindex):
        main.add_command(cmd)
