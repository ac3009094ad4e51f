"""nexusfs: a FUSE filesystem over an APSW metadata store and a deduplicating chunk store.

Layers (imports point downward only): types/config -> meta, chunks, access -> core -> fuse_ops,
runtime, cli. See DESIGN.md in the steering repository and README.md here.
"""

__version__ = "0.1.0"


def __getattr__(name):
    # the API (nexusfs.connect, nexusfs.ConflictError...), imported on first use so that the
    # daemon and the CLI do not pay for it
    import importlib
    api = importlib.import_module(".api", __name__)
    if name in api.__all__:
        return getattr(api, name)
    raise AttributeError(f"module 'nexusfs' has no attribute {name!r}")
