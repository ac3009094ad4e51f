"""Daemon wiring: open the store, mount, daemonize, run the trio loop, commit on a timer,
handle signals, notify readiness, and shut down cleanly.

Process rules: the mount happens in the process the user started (so errors reach the
terminal); without --foreground it forks before trio starts and before any thread exists, and
the parent exits with 0 only once the child reports that the mount answers (the kernel's INIT
request was handled and a statfs of the mount point, from a worker thread, came back), or
prints the child's reason and exits 1. Under systemd (Type=notify) READY=1 is sent at that
same moment.

Signals: SIGTERM/SIGINT -> STOPPING=1; commit every buffered write while still serving;
unmount from a helper process while still serving (the kernel writes back its cached pages
first); if the mount is busy, leave the loop and detach it lazily instead; then commit and sync
everything, checkpoint, exit 0. Further SIGTERM/SIGINT during that are logged and ignored
(SIGKILL aborts; the store stays consistent, unsynced writes are lost). SIGHUP re-reads
DATA_DIR/nexusfs.toml and applies what can change live (config.LIVE); a bad file is logged and
changes nothing. SIGUSR1 logs the request counts and latencies.

The daemon never touches its own mount point from the trio thread (the kernel would wait for
an answer that thread is not there to give): statfs and unmount run in threads or processes.
"""
from __future__ import annotations

import errno
import faulthandler
import hashlib
import json
import logging
import logging.handlers
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import trio

from . import config as config_mod
from . import fuse_ops, metrics
from .config import Config
from .control.ctlfile import attach as attach_ctl
from .control.server import serve_control
from .core.fs import FileSystem
from .meta import db

log = logging.getLogger("nexusfs")

# mount(8) and fstab options that mean nothing to a FUSE mount (or are FUSE defaults anyway)
IGNORED_OPTIONS = {"auto", "noauto", "nofail", "_netdev", "user", "users", "nouser", "owner",
                   "group", "defaults", "rw", "dev", "nodev", "suid", "nosuid", "exec",
                   "noexec", "async", "atime", "noatime", "relatime", "norelatime",
                   "strictatime", "nostrictatime", "diratime", "nodiratime", "lazytime",
                   "nolazytime", "x-systemd.automount"}
# options handed to FUSE (libfuse and the kernel)
FUSE_OPTIONS = {"allow_other", "allow_root", "auto_unmount", "ro", "sync", "dirsync",
                "default_permissions", "debug"}
FUSE_VALUE_OPTIONS = ("max_read=", "blksize=", "context=", "fscontext=", "defcontext=",
                      "rootcontext=")
# where `umount` finds the helper that waits for the flush (daemon/umount.fuse.nexusfs)
UMOUNT_HELPERS = ("/sbin/umount.fuse.nexusfs", "/usr/sbin/umount.fuse.nexusfs")
UTAB = Path("/run/mount/utab")


class MountError(Exception):
    pass


def registry_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/run/nexusfs")
    base = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/nexusfs-{os.geteuid()}"
    return Path(base) / "nexusfs"


def registry_file(mountpoint: str) -> Path:
    key = hashlib.sha256(os.path.realpath(mountpoint).encode()).hexdigest()[:24]
    return registry_dir() / f"{key}.json"


SYSTEM_REGISTRY = Path("/run/nexusfs")


def _registry_dirs() -> list[Path]:
    """Where to look for running mounts: one's own, then (for users) root's, so that a user
    of a shared mount (allow_other) finds its control socket."""
    own = registry_dir()
    return [own] if os.geteuid() == 0 or own == SYSTEM_REGISTRY else [own, SYSTEM_REGISTRY]


def read_registry(mountpoint: str) -> dict | None:
    name = registry_file(mountpoint).name
    for d in _registry_dirs():
        try:
            return json.loads((d / name).read_text())
        except (OSError, ValueError):
            continue
    return None


def all_mounts() -> list[dict]:
    out, seen = [], set()
    for d in _registry_dirs():
        if not d.is_dir():
            continue
        for f in sorted(d.glob("*.json")):
            try:
                info = json.loads(f.read_text())
            except (OSError, ValueError):
                continue
            if info.get("mountpoint") in seen:
                continue
            if _alive(info.get("pid", 0)):
                seen.add(info.get("mountpoint"))
                out.append(info)
            elif os.access(f, os.W_OK):
                f.unlink(missing_ok=True)
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    # a daemon that has exited but not been reaped yet (its parent is init, which may reap
    # late) is a zombie: kill(pid, 0) still succeeds, yet it holds no mount and no lock
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except FileNotFoundError:
        return False
    except (OSError, IndexError):
        return True


def on_journal() -> bool:
    """Is stderr connected to journald? (JOURNAL_STREAM names the stream's device:inode; a
    service whose stderr goes elsewhere has INVOCATION_ID without a matching JOURNAL_STREAM.)"""
    stream = os.environ.get("JOURNAL_STREAM")
    if stream:
        try:
            st = os.fstat(2)
            return stream == f"{st.st_dev}:{st.st_ino}"
        except OSError:
            return False
    return bool(os.environ.get("INVOCATION_ID"))


def setup_logging(level: str = "INFO", log_file: Path | None = None, fmt: str = "text") -> None:
    """Log to ``log_file``, or to stderr: journald-style (``<N>`` priority prefixes, no time)
    when stderr is the journal, JSON lines with ``fmt="json"``, plain text otherwise."""
    root = logging.getLogger()
    root.handlers.clear()
    if log_file is not None:
        handler: logging.Handler = logging.handlers.WatchedFileHandler(log_file)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_formatter(fmt, journal=log_file is None and on_journal()))
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))


def reconfigure_logging(level: str, fmt: str) -> None:
    """A reload: new level and format on the handlers already in place."""
    root = logging.getLogger()
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    for handler in root.handlers:
        journal = isinstance(handler.formatter, _JournalFormatter)
        handler.setFormatter(_formatter(fmt, journal=journal))


def _formatter(fmt: str, journal: bool) -> logging.Formatter:
    if journal:
        return _JournalFormatter(json_body=fmt == "json")
    if fmt == "json":
        return _JsonFormatter()
    return _TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


def _fields(record: logging.LogRecord) -> dict:
    """Structured fields of a record: ``log.info(msg, extra={"fields": {...}})``."""
    f = getattr(record, "fields", None)
    return f if isinstance(f, dict) else {}


def _kv(fields: dict) -> str:
    return "".join(f" {k}={json.dumps(v) if isinstance(v, str) and (' ' in v or not v) else v}"
                   for k, v in fields.items())


class _TextFormatter(logging.Formatter):
    def format(self, record):
        text = super().format(record)
        fields = _fields(record)
        if not fields:
            return text
        head, sep, tail = text.partition("\n")
        return head + _kv(fields) + sep + tail


class _JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, pid, and the fields."""

    def format(self, record):
        t = time.gmtime(record.created)
        out = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(record.msecs):03d}Z",
               "level": record.levelname, "logger": record.name, "message": record.getMessage(),
               "pid": record.process}
        out.update(_fields(record))
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class _JournalFormatter(logging.Formatter):
    """journald reads a leading <N> as the syslog priority of the line; every line of a
    multi-line record (a traceback) carries it, so none of them is logged at the default."""
    PRI = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}

    def __init__(self, json_body: bool = False):
        super().__init__()
        self.json_body = json_body

    def format(self, record):
        pri = f"<{self.PRI.get(record.levelno, 6)}>"
        if self.json_body:
            body = _JsonFormatter().format(record)
            return pri + body
        text = f"{record.name}: {record.getMessage()}" + _kv(_fields(record))
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return "\n".join(pri + line for line in text.split("\n"))


def sd_notify(message: str) -> None:
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(addr)
            s.sendall(message.encode())
    except OSError as e:
        log.warning("sd_notify failed: %s", e)


def recover_stale(mountpoint: str) -> None:
    """A mount point left by a crashed daemon ("Transport endpoint is not connected") is
    detached so that the new mount can take its place."""
    try:
        os.stat(mountpoint)
        # stat may be answered from the kernel's attribute cache (attr_timeout) without asking
        # the dead daemon; statfs always goes to the daemon, so it sees the dead connection
        os.statvfs(mountpoint)
    except OSError as e:
        if e.errno in (errno.ENOTCONN, errno.ECONNABORTED):
            log.warning("%s: stale mount of a crashed daemon, detaching it", mountpoint)
            subprocess.run(["fusermount3", "-u", "-z", mountpoint], check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if subprocess.run(["mountpoint", "-q", mountpoint]).returncode == 0:
                subprocess.run(["umount", "-l", mountpoint], check=False)
            return
        if e.errno == errno.ENOENT:
            raise MountError(f"mount point {mountpoint} does not exist") from None
        raise MountError(f"mount point {mountpoint}: {e.strerror}") from None


def split_options(options: list[str]) -> tuple[list[str], dict[str, str]]:
    """``-o`` options as (FUSE options, nexusfs settings): mount(8)-only options are dropped,
    ``NAME=VALUE`` with NAME a setting of config.py is a setting for this mount, anything else
    unknown is a MountError naming it."""
    fuse, settings = [], {}
    known = {f for f in Config.__dataclass_fields__ if f != "data_dir"}
    for opt in options:
        name, eq, value = opt.partition("=")
        if opt in IGNORED_OPTIONS or opt.startswith(("x-", "comment=")):
            continue
        if opt in FUSE_OPTIONS or opt.startswith(FUSE_VALUE_OPTIONS):
            fuse.append(opt)
        elif eq and name in known:
            settings[name] = value
        elif name in ("fsname", "subtype"):
            raise MountError(f"mount option {opt!r}: nexusfs sets {name} itself")
        else:
            raise MountError(f"unknown mount option {opt!r} (FUSE options: "
                             f"{', '.join(sorted(FUSE_OPTIONS))}, {', '.join(FUSE_VALUE_OPTIONS)}"
                             f"...; nexusfs settings as NAME=VALUE, e.g. retain_days=7)")
    return fuse, settings


def mount_options(options: list[str], fsname: str) -> set[str]:
    opts = fuse_ops.base_options(fsname)
    opts.update(split_options(options)[0])
    return opts


def mount(cfg: Config, mountpoint: str, options: list[str], foreground: bool,
          log_level: str | None = None, overrides: dict | None = None) -> int:
    """Mount and serve until unmounted or signalled. Returns the exit status (0) or raises
    MountError (StoreError for an unusable data directory) with a one-line reason; then
    nothing is mounted. ``overrides`` are the settings given on the command line (a reload
    keeps them)."""
    launched = _process_started()           # the command the user ran (before any fork)
    mountpoint = os.path.abspath(mountpoint)
    if log_level:
        cfg = replace(cfg, log_level=log_level.upper())
    fuse_opts = mount_options(options, str(cfg.data_dir))     # bad options: nothing touched
    served = read_registry(mountpoint)
    if served and _alive(served.get("pid", 0)) and os.path.ismount(mountpoint):
        if os.path.realpath(served["data_dir"]) == os.path.realpath(cfg.data_dir):
            log.info("%s is already served from %s", mountpoint, cfg.data_dir)
            return 0
        raise MountError(f"{mountpoint} is already a nexusfs mount of {served['data_dir']}")
    recover_stale(mountpoint)
    reg = registry_file(mountpoint)   # resolves the path: must happen before we serve it
    if not os.path.isdir(mountpoint):
        raise MountError(f"mount point {mountpoint} is not a directory")
    if os.path.ismount(mountpoint):
        raise MountError(f"{mountpoint} is already a mount point")
    metrics_sock = None
    if cfg.metrics:
        try:
            metrics_sock = metrics.bind(cfg.metrics)
        except OSError as e:
            raise MountError(f"cannot serve metrics on {cfg.metrics}: "
                             f"{e.strerror or e}") from None
    if foreground:
        try:
            return _serve_store(cfg, overrides or {}, mountpoint, fuse_opts, reg, metrics_sock,
                                launched=launched)
        finally:
            if metrics_sock is not None:
                metrics_sock.close()
    # The store is opened in the daemon process, never before the fork: SQLite's locks belong
    # to the process that took them, so a connection opened here and used by the child would
    # leave the child unlocked (another process opening the store would then reset the
    # WAL index under it).
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(ready_w)
        if metrics_sock is not None:
            metrics_sock.close()
        status = b""
        while chunk := os.read(ready_r, 4096):
            status += chunk
            if status.startswith(b"ok"):
                return 0
        os.close(ready_r)
        reason = status.decode(errors="replace").strip().removeprefix("error: ")
        raise MountError(reason or f"the daemon serving {mountpoint} failed to start; see "
                                   f"{cfg.data_dir}/nexusfs.log")
    os.close(ready_r)
    code = 1
    try:
        os.setsid()
        code = _serve_store(cfg, overrides or {}, mountpoint, fuse_opts, reg, metrics_sock,
                            ready_w, launched)
    except (MountError, db.StoreError) as e:
        _report_failure(ready_w, str(e))
    except BaseException as e:
        log.exception("the daemon failed")
        _report_failure(ready_w, f"the daemon failed: {e}")
    finally:
        logging.shutdown()
        os._exit(code)            # the child never returns into the command line code


def _report_failure(ready_w: int, reason: str) -> None:
    try:
        os.write(ready_w, b"error: " + reason.encode(errors="replace"))
    except OSError:
        pass                      # already reported (or the parent is gone)


def _serve_store(cfg: Config, overrides: dict, mountpoint: str, fuse_opts: set[str], reg: Path,
                 metrics_sock: socket.socket | None, ready_w: int | None = None,
                 launched: float = 0.0) -> int:
    """Open the store, mount it and serve until unmounted or signalled (in the daemon
    process: the foreground command, or the child of the fork). StoreError and MountError
    mean nothing is mounted."""
    root = logging.getLogger()
    early = None
    if ready_w is not None:
        # until the log file can be opened (the store may not exist yet), keep what is logged
        # (a migration, a recovery); it goes to the file, or to the terminal on failure
        early = logging.handlers.MemoryHandler(100_000, flushLevel=logging.CRITICAL + 1)
        terminal, root.handlers = root.handlers[:], [early]
    try:
        fs = FileSystem(cfg)
        fs.start()
        attach_ctl(fs)
        ops = fuse_ops.Operations(fs)
        try:
            fuse_ops.init(ops, mountpoint, fuse_opts)
        except Exception as e:
            trio.run(fs.close)
            raise MountError(f"cannot mount {mountpoint}: {e}") from e
    except BaseException:
        if early is not None:
            root.handlers = terminal
            early.setTarget(terminal[0] if terminal else None)
            early.close()
        raise
    daemon = Daemon(cfg, overrides, fs, ops, mountpoint, metrics_sock, launched)
    if early is not None:
        setup_logging(cfg.log_level, cfg.data_dir / "nexusfs.log", cfg.log_format)
        early.setTarget(root.handlers[0])
        early.close()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1):
            os.dup2(devnull, fd)
        os.close(devnull)
        # stderr goes to the log: a crash of native code (faulthandler) leaves its traces there
        err = os.open(cfg.data_dir / "nexusfs.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(err, 2)
        os.close(err)
    faulthandler.enable(all_threads=True)
    reg.parent.mkdir(parents=True, exist_ok=True)
    info = {"pid": os.getpid(), "mountpoint": mountpoint, "data_dir": str(cfg.data_dir)}
    if metrics_sock is not None:
        info["metrics"] = metrics.bound_address(metrics_sock)
    reg.write_text(json.dumps(info))
    try:
        trio.run(daemon.serve, ready_w)
    finally:
        reg.unlink(missing_ok=True)
        if daemon.utab_entry:
            _unregister_for_umount(mountpoint)
    return 1 if daemon.failed else 0


def _raise_readahead(mountpoint: str, kb: int) -> None:
    """Let the kernel read ahead ``kb`` KiB on this mount (its default for FUSE, 128 KiB, cuts
    sequential reads into many small requests; the kernel clamps it to what INIT agreed, so
    this runs after INIT). Found through /proc/self/mountinfo, so the mount itself is never
    touched; best effort."""
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
                if point == mountpoint:
                    with open(f"/sys/class/bdi/{fields[2]}/read_ahead_kb", "w") as ra:
                        ra.write(str(kb))
                    log.info("read-ahead on %s: %d KiB", mountpoint, kb)
                    return
        log.warning("no mountinfo line for %s: read-ahead left as is", mountpoint)
    except OSError as e:
        log.debug("cannot raise read-ahead: %s", e)


def _utab_has(mountpoint: str) -> bool:
    target = "TARGET=" + re.sub(r"[\s\\]", lambda m: f"\\{ord(m.group()):03o}", mountpoint)
    try:
        return any(target in line.split() for line in UTAB.read_text().splitlines())
    except OSError:
        return False


def _register_for_umount(source: str, mountpoint: str) -> bool:
    """Make `umount MOUNTPOINT` run daemon/umount.fuse.nexusfs (which waits for the flush):
    umount(8) looks for a helper only for mounts it has a userspace entry for, so one is added
    (`mount --fake`, which performs no mount). Root only, and only when the helper is
    installed; best effort. True when an entry was added."""
    if os.geteuid() != 0 or not any(os.path.exists(h) for h in UMOUNT_HELPERS):
        return False
    if _utab_has(mountpoint) or shutil.which("mount") is None:
        return False
    r = subprocess.run(["mount", "--fake", "--internal-only", "-t", "fuse.nexusfs", "-o",
                        "x-nexusfs", source, mountpoint], capture_output=True, text=True)
    if r.returncode != 0:
        log.debug("no utab entry for %s: %s", mountpoint, r.stderr.strip())
    return r.returncode == 0


def _mounted(mountpoint: str) -> bool:
    """Is ``mountpoint`` in this namespace's mount table (without touching it)?"""
    try:
        with open("/proc/self/mountinfo") as f:
            return any(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)),
                              line.split()[4]) == mountpoint for line in f)
    except OSError:
        return False


def _unregister_for_umount(mountpoint: str) -> None:
    """Drop the userspace entry once the mount is gone (umount(8) drops it itself; an unmount
    by other means, `nexus unmount` or a signal, would leave it behind)."""
    if _utab_has(mountpoint) and not _mounted(mountpoint):
        subprocess.run(["umount", "--fake", "--internal-only", mountpoint], capture_output=True)


def _process_started() -> float:
    """When this process started, in CLOCK_BOOTTIME seconds (0.0 if unknown)."""
    try:
        with open("/proc/self/stat", "rb") as f:
            ticks = int(f.read().rsplit(b")", 1)[1].split()[19])
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


class Daemon:
    """A mounted store while it serves: readiness, signals, reloads and the shutdown."""

    READY_TIMEOUT = 30.0          # seconds the kernel has to send INIT and answer a statfs

    def __init__(self, cfg: Config, overrides: dict, fs: FileSystem, ops, mountpoint: str,
                 metrics_sock: socket.socket | None = None, launched: float = 0.0):
        self.cfg = cfg
        self.overrides = overrides
        self.fs = fs
        self.ops = ops
        self.mountpoint = mountpoint
        self.metrics_sock = metrics_sock
        self.started = time.time()
        self.launched = launched or _process_started()
        self.stopping = False
        self._stopping_sent = False
        self.closing = False
        self.failed: str | None = None
        self.ready = False
        self.utab_entry = False
        self.loop_running = False
        self._init_seen: trio.Event | None = None
        self._stop_done: trio.Event | None = None      # set when a signalled stop has run
        fs.stats_sources.append(self._figures)

    def _figures(self, s: dict) -> dict:
        return metrics.daemon_figures(self.fs.cfg, s,
                                      self.ops.op_stats.snapshot(),
                                      self.started, self.mountpoint)

    def metrics_text(self) -> str:
        return metrics.exposition(self.fs.stats(), self.ops.op_stats.snapshot())

    # -- life cycle ---------------------------------------------------------------------------
    async def serve(self, ready_w: int | None) -> None:
        self._init_seen = trio.Event()
        self.ops.on_init = self._init_seen.set
        handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1)
        # what the receiver restores when it closes: the last moments of the process (all is
        # flushed by then) must not be cut short by a signal still on its way
        for signum in handled:
            signal.signal(signum, signal.SIG_IGN)
        with trio.open_signal_receiver(*handled) as signals:
            async with trio.open_nursery() as outer:
                outer.start_soon(self._signals, signals, outer)
                try:
                    await self._run(ready_w)
                finally:
                    self.stopping = self.closing = True
                    outer.start_soon(self._report_flush)
                    with trio.CancelScope(shield=True):
                        if self._stop_done is not None:
                            await self._stop_done.wait()
                        await self._close()
                    outer.cancel_scope.cancel()
        log.info("stopped cleanly" if not self.failed else "stopped")

    async def _run(self, ready_w: int | None) -> None:
        self.fs.docs.start_pool()        # document parse workers start in the background
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_batch_timer, self.fs)
            await _start_control(nursery, self.fs)
            if self.metrics_sock is not None:
                await nursery.start(metrics.serve, self.metrics_sock, self.metrics_text)
            nursery.start_soon(self._announce, ready_w)
            self.loop_running = True
            try:
                await fuse_ops.serve()
            finally:
                self.loop_running = False
                self.stopping = True
                self._notify_stopping()
                nursery.cancel_scope.cancel()

    async def _announce(self, ready_w: int | None) -> None:
        """Report ready (to the waiting parent, to systemd) once the mount answers: INIT was
        handled, and a statfs of the mount point from a worker thread came back."""
        t0 = time.monotonic()
        try:
            with trio.fail_after(self.READY_TIMEOUT):
                await self._init_seen.wait()
                await trio.to_thread.run_sync(os.statvfs, self.mountpoint,
                                              abandon_on_cancel=True)
        except (trio.TooSlowError, OSError) as e:
            reason = (f"the mount at {self.mountpoint} does not answer: "
                      f"{'no INIT from the kernel' if isinstance(e, trio.TooSlowError) else e}")
            log.error("%s", reason)
            self.failed = reason
            if ready_w is not None:      # (closed by the daemon's exit: fds may be reused)
                os.write(ready_w, b"error: " + reason.encode())
            sd_notify(f"STATUS={reason}\nERRNO={getattr(e, 'errno', 0) or errno.EIO}")
            fuse_ops.terminate()
            return
        await trio.to_thread.run_sync(_raise_readahead, self.mountpoint, self.cfg.readahead_kb)
        self.utab_entry = await trio.to_thread.run_sync(
            _register_for_umount, str(self.cfg.data_dir), self.mountpoint)
        self.ready = True
        if ready_w is not None:
            os.write(ready_w, b"ok")
        sd_notify(f"READY=1\nSTATUS=serving {self.mountpoint}\nMAINPID={os.getpid()}")
        fields = {"init_to_ready_s": round(time.monotonic() - t0, 3)}
        if self.launched:
            fields["start_to_ready_s"] = round(
                time.clock_gettime(time.CLOCK_BOOTTIME) - self.launched, 3)
        log.info("serving %s at %s", self.cfg.data_dir, self.mountpoint, extra={"fields": fields})

    async def _signals(self, signals, nursery: trio.Nursery) -> None:
        async for signum in signals:
            name = signal.Signals(signum).name
            if signum == signal.SIGUSR1:
                for key, value in metrics.op_figures(self.ops.op_stats.snapshot()).items():
                    log.info("%s: %s", key, value)
                continue
            if signum == signal.SIGHUP:
                if self.stopping:
                    log.info("SIGHUP while stopping: ignored")
                else:
                    self.reload()
                continue
            if self.stopping:
                dirty = sum(df.dirty_bytes() for df in self.fs.dirty.values())
                log.warning("%s: already stopping (%d bytes still to commit); SIGKILL aborts "
                            "(what was synced is kept)", name, dirty)
                continue
            self.stopping = True
            log.info("%s: flushing and unmounting", name)
            self._notify_stopping()
            self._stop_done = trio.Event()
            nursery.start_soon(self._stop)

    def _notify_stopping(self) -> None:
        if not self._stopping_sent:
            self._stopping_sent = True
            sd_notify("STOPPING=1\nSTATUS=flushing and unmounting")

    async def _stop(self) -> None:
        """Commit what is buffered while the mount still serves, then unmount from a helper
        process (the loop keeps answering the kernel's last writes); a busy mount is left by
        ending the loop instead, and detached lazily after the final flush."""
        try:
            try:
                for ino in list(self.fs.dirty):
                    await self.fs.commit_file(ino)
                await self.fs.sync(durable=False)
            except Exception:
                log.exception("commit before unmount failed; the final flush retries")
            if self.loop_running and shutil.which("fusermount3"):
                r = await trio.run_process(["fusermount3", "-u", self.mountpoint], check=False,
                                           capture_stdout=True, capture_stderr=True)
                if r.returncode == 0:
                    return
                if self.loop_running:
                    log.warning("cannot unmount %s now (%s): leaving the loop, the mount is "
                                "detached after the flush", self.mountpoint,
                                r.stderr.decode(errors="replace").strip()
                                .removeprefix("fusermount3: "))
            if self.loop_running:
                fuse_ops.terminate()
        finally:
            self._stop_done.set()

    async def _close(self) -> None:
        t0 = time.monotonic()
        dirty = sum(df.dirty_bytes() for df in self.fs.dirty.values())
        try:
            await self.fs.close()
        except Exception:
            log.exception("flush at shutdown failed")
            self.failed = self.failed or "flush at shutdown failed"
        try:
            fuse_ops.close(unmount=True)      # a no-op when the kernel already unmounted us
        except Exception as e:
            log.warning("unmount at shutdown: %s", e)
        log.info("flushed and closed", extra={"fields": {
            "flush_s": round(time.monotonic() - t0, 3), "buffered_bytes": dirty}})

    async def _report_flush(self) -> None:
        """While the final flush runs: progress for systemd (and more time to stop)."""
        while True:
            dirty = sum(df.dirty_bytes() for df in self.fs.dirty.values())
            sd_notify(f"STATUS=flushing: {dirty} bytes buffered\nEXTEND_TIMEOUT_USEC=30000000")
            await trio.sleep(5)

    # -- reload -------------------------------------------------------------------------------
    def reload(self) -> bool:
        """Re-read the configuration; apply what can change live. False (and nothing changed)
        when the file is bad."""
        sd_notify(f"RELOADING=1\nMONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")
        try:
            new, applied, later = config_mod.reload(self.cfg, **self.overrides)
        except config_mod.ConfigError as e:
            log.error("SIGHUP: configuration not reloaded, nothing changed: %s", e)
            sd_notify(f"READY=1\nSTATUS=serving {self.mountpoint} (reload failed: {e})")
            return False
        self.apply(new, applied)
        for name, (old, value) in applied.items():
            log.info("SIGHUP: %s %s -> %s", name, old, value)
        for name in later:
            log.warning("SIGHUP: %s changed; it takes effect at the next mount", name)
        if not applied and not later:
            log.info("SIGHUP: configuration unchanged")
        log.debug("configuration now: %s", {n: getattr(self.cfg, n) for n in sorted(config_mod.LIVE)})
        sd_notify(f"READY=1\nSTATUS=serving {self.mountpoint}")
        return True

    def apply(self, cfg: Config, applied: dict) -> None:
        self.cfg = self.fs.cfg = self.fs.content.cfg = self.ops.cfg = cfg
        if "log_level" in applied or "log_format" in applied:
            reconfigure_logging(cfg.log_level, cfg.log_format)
        if "chunk_cache_bytes" in applied:
            from .chunks.cache import ChunkCache
            old = self.fs.content.cache
            cache = ChunkCache(cfg.chunk_cache_bytes)
            cache.hits, cache.misses = old.hits, old.misses
            self.fs.content.cache = cache


async def _start_control(nursery: trio.Nursery, fs: FileSystem) -> None:
    """The control socket (nexus snapshot/log/undo/...), listening before we report ready; it
    stops when the nursery is cancelled at shutdown. A mount without it still serves files."""
    try:
        await nursery.start(serve_control, fs.history, fs.cfg.socket_path)
    except OSError as e:
        log.warning("no control socket at %s: %s", fs.cfg.socket_path, e)


async def _batch_timer(fs: FileSystem) -> None:
    while True:
        await trio.sleep(fs.cfg.commit_interval)
        try:
            await fs.periodic()
        except Exception:
            log.exception("periodic commit failed")
