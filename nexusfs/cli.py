"""The nexus command line (click). Exit codes: 0 success, 1 operation failed, 2 usage error.

Errors are printed as one line on stderr ("nexus: ..."), never as a traceback.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import click

from . import config as config_mod
from . import runtime


def _fail(message: str, code: int = 1):
    click.echo(f"nexus: {message}", err=True)
    sys.exit(code)


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return str(n)


def _data_dir_for(target: str | None, data_dir: str | None):
    """The data directory named, or the one behind a mount point, or the default."""
    if data_dir:
        return config_mod.load(data_dir)
    if target:
        info = runtime.read_registry(target)
        if info:
            return config_mod.load(info["data_dir"])
        if os.path.isdir(target) and (os.path.exists(os.path.join(target, "meta.db"))):
            return config_mod.load(target)
        _fail(f"{target} is neither a nexusfs mount point nor a data directory")
    return config_mod.load()


class _Main(click.Group):
    """A configuration that cannot be used is one line on stderr and exit 1, whatever the
    command (config.load is strict: it names the file and line, the variable or the option)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except config_mod.ConfigError as e:
            _fail(str(e))


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nexusfs")
def main():
    """nexusfs: a FUSE filesystem with deduplicated storage, document views and history."""


@main.command()
@click.argument("mountpoint", type=click.Path(file_okay=False))
@click.option("--data-dir", type=click.Path(file_okay=False), help="Where the store lives "
              "(default: /var/lib/nexusfs/default as root, ~/.local/share/nexusfs/default otherwise).")
@click.option("-o", "options", multiple=True, help="Mount options, comma separated: FUSE "
              "options (allow_other, ro, auto_unmount, ...), settings of nexusfs.toml as "
              "NAME=VALUE (retain_days=7), mount(8) options (ignored).")
@click.option("--foreground", "-f", is_flag=True, help="Stay in the foreground and log to stderr.")
@click.option("--log-level", default=None,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
              help="Default: log_level of nexusfs.toml, else INFO.")
@click.option("--metrics", metavar="HOST:PORT", help="Serve Prometheus metrics at "
              "http://HOST:PORT/metrics (plain HTTP, no authentication: keep it on loopback).")
@click.option("--mode", type=click.Choice(["smart", "text", "binary"]), default=None,
              help="Document views: smart (documents, the default), text (every binary file), "
                   "binary (none).")
@click.option("--auto-parse", is_flag=True, default=None,
              help="Documents read as their text under their own names; the original bytes "
                   "are under /.raw/.")
def mount(mountpoint, data_dir, options, foreground, log_level, metrics, mode, auto_parse):
    """Mount the store at MOUNTPOINT; returns once the mount answers.

    A bad option or configuration (DATA_DIR/nexusfs.toml) is reported before anything is
    created or mounted."""
    from .meta.db import StoreError
    runtime.setup_logging(log_level or "INFO")
    opts = [o.strip() for group in options for o in group.split(",") if o.strip()]
    try:
        _, overrides = runtime.split_options(opts)
    except runtime.MountError as e:
        _fail(str(e))
    if metrics:
        overrides["metrics"] = metrics
    if mode:
        overrides["views_mode"] = mode
    if auto_parse:
        overrides["auto_parse"] = True
    if log_level:
        overrides["log_level"] = log_level
    cfg = config_mod.load(data_dir, **overrides)
    runtime.setup_logging(cfg.log_level, fmt=cfg.log_format)
    if data_dir is None:
        cfg.data_dir.mkdir(parents=True, exist_ok=True)      # the default store is made on first use
    try:
        code = runtime.mount(cfg, mountpoint, opts, foreground, overrides=overrides)
    except (runtime.MountError, StoreError) as e:
        _fail(str(e))
    if code:
        _fail(f"the daemon serving {mountpoint} stopped with an error; see "
              f"{'the log above' if foreground else str(cfg.data_dir) + '/nexusfs.log'}")
    if not foreground:
        # the mount answers: return at once (tearing the interpreter down costs a tenth of a
        # second that `mount`, fstab and scripts would wait for)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    sys.exit(0)


@main.command()
@click.argument("mountpoint", type=click.Path(file_okay=False))
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait for the flush.")
def unmount(mountpoint, timeout):
    """Flush everything and unmount MOUNTPOINT; waits until the daemon has exited."""
    mountpoint = os.path.abspath(mountpoint)
    info = runtime.read_registry(mountpoint)
    r = subprocess.run(["fusermount3", "-u", mountpoint], capture_output=True, text=True)
    if r.returncode != 0:
        msg = (r.stderr.strip().splitlines() or ["unmount failed"])[-1]
        _fail(msg.removeprefix("fusermount3: "))
    if info:
        deadline = time.monotonic() + timeout
        while runtime._alive(info["pid"]):
            if time.monotonic() > deadline:
                _fail(f"the daemon (pid {info['pid']}) is still flushing after {timeout:.0f} s")
            time.sleep(0.05)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(as_json):
    """List the running nexusfs mounts."""
    import json
    mounts = runtime.all_mounts()
    if as_json:
        click.echo(json.dumps(mounts, indent=2))
        return
    if not mounts:
        click.echo("no nexusfs mounts")
        return
    for m in mounts:
        extra = f"\tmetrics http://{m['metrics']}/metrics" if m.get("metrics") else ""
        click.echo(f"{m['mountpoint']}\tpid {m['pid']}\tdata {m['data_dir']}{extra}")


@main.command()
@click.argument("target", required=False)
@click.option("--data-dir", type=click.Path(file_okay=False), help="The store to describe.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def stats(target, data_dir, as_json):
    """Figures of a store: files, logical and stored bytes, dedup and compression savings,
    chunks and packs; while mounted also dirty bytes, cache hit ratio, and FUSE requests and
    latencies by operation (asked of the daemon; /.nexus/stats shows the same)."""
    import json
    from . import metrics
    cfg = _data_dir_for(target, data_dir)
    s = None
    real = os.path.realpath(cfg.data_dir)
    if any(os.path.realpath(m["data_dir"]) == real for m in runtime.all_mounts()):
        from .control.client import ControlError, call
        try:
            s = call(cfg.socket_path, cmd="stats", want=("data",)).get("data")
        except ControlError as e:
            click.echo(f"nexus: the daemon did not answer ({e}); reading the store instead",
                       err=True)
    if s is None:
        if not cfg.db_path.exists():
            _fail(f"no nexusfs store in {cfg.data_dir}")
        s = metrics.offline_figures(cfg)
    if as_json:
        click.echo(json.dumps(s, indent=2))
        return
    ops: dict[str, dict] = {}
    for key, value in s.items():
        if key.startswith("op."):
            name, _, field = key[3:].rpartition(".")
            ops.setdefault(name, {})[field] = value
            continue
        shown = _human(value) if key.endswith("bytes") and isinstance(value, (int, float)) else value
        click.echo(f"{key}: {shown}")
    if ops:
        click.echo(f"{'operation':<14}{'count':>10}{'errors':>8}{'avg us':>10}{'max us':>11}")
        for name, o in ops.items():
            click.echo(f"{name:<14}{o.get('count', 0):>10}{o.get('errors', 0):>8}"
                       f"{o.get('avg_us', 0):>10.1f}{o.get('max_us', 0):>11.1f}")


@main.command()
@click.option("--data-dir", type=click.Path(file_okay=False), help="The store to check.")
@click.option("--quick", is_flag=True, help="Check references only, do not read chunk data.")
def fsck(data_dir, quick):
    """Verify every reference and every chunk of a store; exit 0 only when clean."""
    from .check import check
    cfg = config_mod.load(data_dir)
    if not cfg.db_path.exists():
        _fail(f"no nexusfs store in {cfg.data_dir}")
    with click.progressbar(length=1, label="verifying chunks", file=sys.stderr) as bar:
        def progress(done, total):
            bar.length = max(total, 1)
            bar.update(done - bar.pos)
        problems = check(cfg, verify_data=not quick, progress=progress)
    for p in problems:
        click.echo(p)
    if problems:
        _fail(f"{len(problems)} problem(s) found")
    click.echo("clean")


@main.command()
@click.option("--data-dir", type=click.Path(file_okay=False), help="The store to collect.")
@click.option("--mount", "mount", type=click.Path(file_okay=False),
              help="The mount point whose daemon should collect (default: the only one).")
def gc(data_dir, mount):
    """Free the space of deleted data: apply history retention, drop chunks nothing retained
    refers to, compact pack files. Never frees what a retained version or a snapshot uses.

    A mounted store is collected by its daemon (asked over the control socket); a store that
    is not mounted is opened and collected here."""
    import trio
    from .core.fs import FileSystem
    from .core.gc import collect
    from .meta.db import StoreError
    cfg = config_mod.load(data_dir) if data_dir else None
    served = cfg is None or any(os.path.realpath(m["data_dir"]) == os.path.realpath(cfg.data_dir)
                                for m in runtime.all_mounts())
    if served:
        from .control.client import ControlError, call, locate
        try:
            target = locate(mount, data_dir)
            with click.progressbar(length=1, label="collecting (in the daemon)",
                                   file=sys.stderr) as bar:
                reply = call(target.socket_path, argv=["gc"], want=("text",))
                bar.update(1)
        except ControlError as e:
            _fail(str(e))
        click.echo((reply.get("text") or "").rstrip("\n"))
        return
    if not cfg.db_path.exists():
        _fail(f"no nexusfs store in {cfg.data_dir}")
    fs = FileSystem(cfg)
    try:
        fs.start()
    except StoreError as e:
        _fail(str(e))

    async def run():
        with click.progressbar(length=1, label="compacting packs", file=sys.stderr) as bar:
            def progress(done, total):
                bar.length = max(total, 1)
                bar.update(done - bar.pos)
            fs.garbage_hint = 1
            result = await collect(fs, progress=progress)
        await fs.close()
        return result
    r = trio.run(run)
    click.echo(f"chunks freed: {r.chunks_freed}, packs compacted: {r.packs_deleted}, "
               f"bytes returned: {_human(r.bytes_freed)}")


# snapshot, log, undo, versions, cat, ls: they ask the running daemon over its control socket
from .control.cli_commands import register as _register_control  # noqa: E402

_register_control(main)

# init, write, cat, ls, tree, size, info, cp, mv, rm, mkdir, rmdir, sync, write-batch: the store
# without a mount (cat and ls keep --at); through the daemon when one serves the store
from .cli_files import register as _register_files  # noqa: E402

_register_files(main)

# grep, glob, search, reindex: the search index (daemon, or the store opened here)
from .cli_search import register as _register_search  # noqa: E402

_register_search(main)


if __name__ == "__main__":
    main()
