"""The nexusfs API: use a store from a program without FUSE (see docs/api.md).

    import nexusfs
    with nexusfs.connect("./nexus-data") as nx:
        nx.write("/workspace/a.txt", b"x")

``connect`` goes through the daemon's control socket when one serves the store, and opens the
store in-process otherwise; ``aconnect`` is the same for trio and asyncio.
"""
from .client import AsyncNexus, FileInfo, Nexus, ReadResult, aconnect, connect
from .errors import (ConflictError, InvalidPathError, NexusError, NotFoundError,
                     PermissionDenied, StoreError, StoreLockedError)

__all__ = ["AsyncNexus", "ConflictError", "FileInfo", "InvalidPathError", "Nexus", "NexusError",
           "NotFoundError", "PermissionDenied", "ReadResult", "StoreError", "StoreLockedError",
           "aconnect", "connect"]
