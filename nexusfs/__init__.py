"""nexusfs: a FUSE filesystem over an APSW metadata store and a deduplicating chunk store.

Layers (imports point downward only): types/config -> meta, chunks, access -> core -> fuse_ops,
runtime, cli. See DESIGN.md in the steering repository and README.md here.
"""

__version__ = "0.1.0"
