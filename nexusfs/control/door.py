"""Where a CLI control command runs: the daemon serving the store, or the store itself.

``ask()`` answers one control command (snapshot, log, undo, versions, rebac, ...) with the
reply the control socket would give ({"text", "data"}). The daemon is asked when one listens
on the store's control socket (``--mount``, ``--data-dir``, the store the current directory is
in, the only running mount, or the mount holding a path the command was given); a store named
by ``--data-dir`` or the current directory that no daemon serves is opened in this process for
the one command, through the embedded API door, so the commands work in a container without FUSE. The opened store is held
exclusively for the command: a daemon or another process that has it gives a clear error.

Blocking; one command per call. Failures are ``ControlError`` with a one-line message.
"""
from __future__ import annotations

import os
from collections.abc import Callable

from .client import Connection, ControlError, NoDaemon, Target, locate


def choose(mount: str | None, data_dir: str | None) -> tuple[str | None, str | None]:
    """``--mount`` wins over a data directory that came from $NEXUS_DATA_DIR (both given on
    the command line stay a usage error for the caller to report)."""
    if mount and data_dir and data_dir == os.environ.get("NEXUS_DATA_DIR"):
        return mount, None
    return mount, data_dir


def ask(mount: str | None, data_dir: str | None, build: Callable[[Callable[[str], str]], list],
        *, hints=(), want: tuple[str, ...] = ("text", "data")) -> dict:
    """The reply to the argv ``build(store_path)`` makes (``store_path`` turns a path the user
    gave, under the mount point or a store path, into a store path)."""
    from .. import config
    mount, data_dir = choose(mount, data_dir)
    if not mount and not data_dir:
        data_dir = config.enclosing_store()
    target = locate(mount, data_dir, hints=[h for h in hints if h])
    try:
        conn = Connection(target.socket_path)
    except NoDaemon:
        if mount or not data_dir:
            raise
        return _ask_store(config.load(data_dir), build)
    with conn:
        return conn.request(argv=build(target.store_path), want=want)


def _ask_store(cfg, build) -> dict:
    from ..api.embedded import EmbeddedStore
    from ..api.errors import NexusError
    if not cfg.db_path.exists():
        raise ControlError(f"no nexusfs store in {cfg.data_dir}")
    argv = build(Target(cfg.socket_path).store_path)
    try:
        store = EmbeddedStore(cfg)
        try:
            return store.request(argv)
        finally:
            store.close()
    except NexusError as e:
        raise ControlError(str(e)) from None
