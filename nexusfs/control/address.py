"""AF_UNIX addresses for socket paths of any length.

sun_path holds 107 bytes; a data directory can be deeper than that. A longer path is reached
through an O_PATH descriptor of its directory: ``/proc/self/fd/N/NAME`` is short and names the
same place for bind() and connect(). The descriptor lives as long as the ``with`` block.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

SUN_PATH_MAX = 100          # leave room below the kernel's 107 for the NUL and safety


@contextmanager
def unix_address(path: str | os.PathLike):
    path = Path(path)
    if len(os.fsencode(path)) <= SUN_PATH_MAX:
        yield os.fspath(path)
        return
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)
