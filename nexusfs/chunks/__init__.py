"""Content storage: chunking, chunk ids, encoding, pack files and the chunk cache.

Knows nothing of files, inodes or SQLite: the chunk index lives in the metadata store and only
the core joins the two.
"""
