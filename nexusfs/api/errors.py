"""The errors of the nexusfs API and CLI, one class per kind of failure the caller can act on,
each with the errno it stands for and the nexus CLI's exit code for it.

``from_errno(errno, message)`` turns a core FsError or a daemon's error reply into the right
class, so both doors (embedded store, daemon) raise the same exceptions. Pure data, no I/O.
"""
from __future__ import annotations

import errno as E
import os

# exit codes of the nexus file verbs (docs/api.md, README); 2 is click's usage error
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_CONFLICT, EXIT_LOCKED, EXIT_DENIED, \
    EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 5, 6, 130


class NexusError(Exception):
    """Any failure of a nexusfs operation: ``str()`` is one line; ``errno`` and ``exit_code``."""

    exit_code = EXIT_FAILED
    default_errno = E.EIO

    def __init__(self, message: str, errno: int | None = None):
        super().__init__(message)
        self.errno = errno if errno is not None else self.default_errno
        self.message = message


class NotFoundError(NexusError):
    exit_code = EXIT_NOT_FOUND
    default_errno = E.ENOENT


class ConflictError(NexusError):
    """A conditional write lost: the file's etag is no longer the one given (``if_match``), or
    the file exists (``if_none_match``). ``current_etag`` is what the file has now (None when
    it does not exist)."""

    exit_code = EXIT_CONFLICT
    default_errno = E.ESTALE

    def __init__(self, message: str, errno: int | None = None, current_etag: str | None = None):
        super().__init__(message, errno)
        self.current_etag = current_etag


class StoreLockedError(NexusError):
    """The store is held by another process (a daemon starting, another embedded user)."""

    exit_code = EXIT_LOCKED
    default_errno = E.EBUSY


class PermissionDenied(NexusError):
    exit_code = EXIT_DENIED
    default_errno = E.EACCES


class InvalidPathError(NexusError):
    """A store path that is not absolute, or holds a NUL byte."""

    exit_code = EXIT_USAGE
    default_errno = E.EINVAL


class StoreError(NexusError):
    """No usable store there (not a data directory, cannot connect...)."""


_BY_ERRNO = {E.ENOENT: NotFoundError, E.ESTALE: ConflictError, E.EACCES: PermissionDenied,
             E.EPERM: PermissionDenied, E.EBUSY: StoreLockedError}


def from_errno(errno: int, message: str | None = None, path: str | None = None) -> NexusError:
    text = message or os.strerror(errno)
    if path and not text.startswith(path):
        text = f"{path}: {text}"
    cls = _BY_ERRNO.get(errno, NexusError)
    return cls(text, errno)
