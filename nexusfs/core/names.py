"""Small shared helpers of the core: name validation and the clock."""
from __future__ import annotations

import errno
import time

from ..types import NAME_MAX, FsError


def now_ns() -> int:
    return time.time_ns()


def check_name(name: bytes) -> None:
    if len(name) > NAME_MAX:
        raise FsError(errno.ENAMETOOLONG)
    if not name or b"/" in name or b"\0" in name:
        raise FsError(errno.EINVAL)
