"""Search: an always-current FTS5 index (index.db) over file names, text files and the parsed
text of documents, and the queries on it — grep (regex, narrowed by a trigram index and
confirmed against live content), glob, ranked search (BM25). See docs/search.md.

Modules: regex (grep -E to Python, required literals, globs), query (ranked-search syntax,
snippets), index (the index database), service (hooks, background indexer, reconciliation),
ops (the queries), perm (who may see a result).
"""
