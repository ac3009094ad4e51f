-- nexusfs metadata schema, version 1 (the canonical definition; db.py's MIGRATIONS upgrade older stores).
-- All times are integer nanoseconds since the epoch. Names and link targets are raw bytes.
--
-- History is a property of the rows: every committed mutation has a sequence number (seq, the
-- oplog's key). Rows describing the tree carry the range [seq_from, seq_to) of sequence numbers
-- for which they held; seq_to IS NULL marks the live row. "The tree as of S" is therefore a query
-- (seq_from <= S AND (seq_to IS NULL OR seq_to > S)), a snapshot is a named seq, and undoing op S
-- re-opens the rows S closed and closes the rows S opened. Partial indexes on live rows keep
-- current-state lookups as fast as a plain table.

-- Facts about the store itself: schema_version, store_id, created_ns.
CREATE TABLE IF NOT EXISTS store_info (
    key   TEXT PRIMARY KEY,      -- the fact's name
    value                        -- its value (integer or text)
);

-- The operation log: one row per operation, successful or not; seq orders all history.
CREATE TABLE IF NOT EXISTS oplog (
    seq      INTEGER PRIMARY KEY, -- sequence number, strictly increasing
    time_ns  INTEGER NOT NULL,   -- when the operation was performed
    uid      INTEGER NOT NULL,   -- caller's user id
    gid      INTEGER NOT NULL,   -- caller's group id
    pid      INTEGER NOT NULL,   -- caller's process id (0 when unknown)
    process  TEXT,               -- caller's process name (/proc/PID/comm)
    agent    TEXT,               -- caller's NEXUS_AGENT environment variable, if set
    op       TEXT NOT NULL,      -- create, mkdir, mknod, symlink, link, unlink, rmdir, rename, write, truncate, setattr, setxattr, removexattr, restore, undo, ...
    path     TEXT,               -- the path the operation acted on
    path2    TEXT,               -- the second path (rename target, link name)
    ino      INTEGER,            -- the inode the operation acted on
    result   INTEGER NOT NULL DEFAULT 0, -- 0 on success, else the errno returned
    undo_of  INTEGER             -- for undo operations: the seq they reversed
);
CREATE INDEX IF NOT EXISTS oplog_by_path ON oplog(path);
CREATE INDEX IF NOT EXISTS oplog_by_path2 ON oplog(path2) WHERE path2 IS NOT NULL;
CREATE INDEX IF NOT EXISTS oplog_by_undo ON oplog(undo_of) WHERE undo_of IS NOT NULL;
CREATE INDEX IF NOT EXISTS oplog_by_time ON oplog(time_ns);
CREATE INDEX IF NOT EXISTS oplog_by_agent ON oplog(agent) WHERE agent IS NOT NULL;
CREATE INDEX IF NOT EXISTS oplog_by_uid ON oplog(uid, seq);
CREATE INDEX IF NOT EXISTS oplog_by_ino ON oplog(ino, seq);

-- The live attributes of every inode: files, directories, symlinks, FIFOs, sockets, devices.
CREATE TABLE IF NOT EXISTS inodes (
    ino       INTEGER PRIMARY KEY AUTOINCREMENT, -- inode number; never reused; 1 is the root
    mode      INTEGER NOT NULL,  -- st_mode: file type and permission bits
    nlink     INTEGER NOT NULL,  -- names pointing here (directories: 2 + subdirectories)
    uid       INTEGER NOT NULL,  -- owner
    gid       INTEGER NOT NULL,  -- group
    rdev      INTEGER NOT NULL DEFAULT 0, -- device number for character/block devices
    size      INTEGER NOT NULL DEFAULT 0, -- logical size in bytes (holes included)
    blocks    INTEGER NOT NULL DEFAULT 0, -- st_blocks: 512-byte units covered by extents
    atime_ns  INTEGER NOT NULL,  -- last access
    mtime_ns  INTEGER NOT NULL,  -- last content change
    ctime_ns  INTEGER NOT NULL,  -- last change of content or attributes
    target    BLOB,              -- symlink target; NULL for other types
    seq       INTEGER NOT NULL DEFAULT 0, -- the operation since which these values hold
    generation INTEGER NOT NULL DEFAULT 0 -- bumped when undo/restore change the inode behind
                                 -- the kernel's back, so it drops its cached copy (size included)
);

-- Earlier attribute states of inodes (including deleted ones), each valid for [seq_from, seq_to).
CREATE TABLE IF NOT EXISTS inode_history (
    ino       INTEGER NOT NULL,  -- the inode
    seq_from  INTEGER NOT NULL,  -- first operation for which the state held
    seq_to    INTEGER NOT NULL,  -- the operation that changed it
    mode      INTEGER NOT NULL,  -- as in inodes
    nlink     INTEGER NOT NULL,
    uid       INTEGER NOT NULL,
    gid       INTEGER NOT NULL,
    rdev      INTEGER NOT NULL,
    size      INTEGER NOT NULL,
    blocks    INTEGER NOT NULL,
    atime_ns  INTEGER NOT NULL,
    mtime_ns  INTEGER NOT NULL,
    ctime_ns  INTEGER NOT NULL,
    target    BLOB,
    PRIMARY KEY (ino, seq_to)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS inode_history_by_seq ON inode_history(seq_to);

-- Directory entries, live and past. The id is the readdir cookie: new entries get larger ids,
-- so a listing in progress never returns an entry twice or skips one when others come and go.
CREATE TABLE IF NOT EXISTS dentries (
    id        INTEGER PRIMARY KEY, -- readdir cookie
    parent    INTEGER NOT NULL,  -- inode of the containing directory
    name      BLOB NOT NULL,     -- entry name, 1..255 bytes, no '/' or NUL
    ino       INTEGER NOT NULL,  -- inode the name points to
    seq_from  INTEGER NOT NULL,  -- operation that created the entry (or repointed it)
    seq_to    INTEGER            -- operation that removed it; NULL while live
);
CREATE UNIQUE INDEX IF NOT EXISTS dentries_live ON dentries(parent, name) WHERE seq_to IS NULL;
CREATE INDEX IF NOT EXISTS dentries_list ON dentries(parent, id) WHERE seq_to IS NULL;
CREATE INDEX IF NOT EXISTS dentries_live_ino ON dentries(ino) WHERE seq_to IS NULL;
CREATE INDEX IF NOT EXISTS dentries_hist ON dentries(parent, name, seq_from);
CREATE INDEX IF NOT EXISTS dentries_by_ino ON dentries(ino, seq_from);
CREATE INDEX IF NOT EXISTS dentries_opened ON dentries(seq_from);
CREATE INDEX IF NOT EXISTS dentries_closed ON dentries(seq_to) WHERE seq_to IS NOT NULL;

-- File content, live and past: each regular file is an ordered set of extents; bytes not covered
-- by an extent are a hole and read as zeros. Live extents never overlap.
CREATE TABLE IF NOT EXISTS extents (
    ino       INTEGER NOT NULL,  -- the file
    offset    INTEGER NOT NULL,  -- byte offset in the file where this extent starts
    length    INTEGER NOT NULL,  -- bytes covered (= the chunk's raw length)
    chunk     BLOB NOT NULL,     -- BLAKE3-256 id of the chunk holding the bytes
    seq_from  INTEGER NOT NULL,  -- operation that wrote the extent
    seq_to    INTEGER            -- operation that replaced or removed it; NULL while live
);
CREATE UNIQUE INDEX IF NOT EXISTS extents_live ON extents(ino, offset) WHERE seq_to IS NULL;
CREATE INDEX IF NOT EXISTS extents_hist ON extents(ino, seq_from);
CREATE INDEX IF NOT EXISTS extents_closed ON extents(ino, seq_to) WHERE seq_to IS NOT NULL;
CREATE INDEX IF NOT EXISTS extents_by_chunk ON extents(chunk);

-- Version cut points of regular files: close-after-write, fsync, rename, unlink, truncate, setattr.
CREATE TABLE IF NOT EXISTS versions (
    ino       INTEGER NOT NULL,  -- the file
    seq       INTEGER NOT NULL,  -- the operation after which this version's state holds
    size      INTEGER NOT NULL,  -- the file's size in that version
    mtime_ns  INTEGER NOT NULL,  -- its modification time
    PRIMARY KEY (ino, seq)
) WITHOUT ROWID;

-- Named snapshots: a snapshot is a sequence number (and the subtree it names), nothing copied.
CREATE TABLE IF NOT EXISTS snapshots (
    name       TEXT PRIMARY KEY, -- [A-Za-z0-9._-]{1,128}
    seq        INTEGER NOT NULL, -- the tree as of this seq
    root_ino   INTEGER NOT NULL, -- the directory the snapshot shows (1 for the whole tree)
    path       TEXT NOT NULL,    -- that directory's path when the snapshot was taken
    created_ns INTEGER NOT NULL  -- when it was taken
);

-- The chunk index: one row per distinct content chunk (deduplication happens here).
CREATE TABLE IF NOT EXISTS chunks (
    id          BLOB PRIMARY KEY, -- BLAKE3-256 of the raw bytes; verified on every read
    raw_len     INTEGER NOT NULL, -- decoded length
    codec       INTEGER NOT NULL, -- 0 raw, 1 zstd
    stored_len  INTEGER NOT NULL, -- encoded length
    pack        INTEGER,          -- pack file number, NULL when inline
    pack_offset INTEGER,          -- offset of the encoded bytes within the pack
    data        BLOB              -- encoded bytes of small chunks kept inline; NULL when in a pack
);

-- Document kinds of regular files, detected from content and name when a write is committed
-- (what lets a listing show NAME.txt / NAME.md views without reading or parsing anything).
CREATE TABLE IF NOT EXISTS doc_kinds (
    ino    INTEGER PRIMARY KEY,  -- the file
    kind   TEXT NOT NULL,        -- "pdf", "xlsx", "docx", ... (nexusfs.views.detect)
    etag   BLOB NOT NULL         -- BLAKE3 of the file's chunk list: the content it was seen with
);

-- Parsed views, by (content, parser version): a copy of a document is never parsed twice.
CREATE TABLE IF NOT EXISTS view_cache (
    key        BLOB PRIMARY KEY, -- nexusfs.views.cache_key(etag, kind)
    data       BLOB NOT NULL,    -- zstd of ParseResult.to_bytes()
    text_len   INTEGER NOT NULL, -- bytes of the .txt view
    md_len     INTEGER NOT NULL, -- bytes of the .md view
    created_ns INTEGER NOT NULL
);
-- The view sizes without the rows: text_len and md_len come after the data blob, which a
-- large view keeps in overflow pages that SQLite would walk to reach them (a cold listing
-- of 1,000 documents with 300 KB views: 550 ms without this index, 4 ms with it).
CREATE INDEX IF NOT EXISTS view_cache_lengths ON view_cache (key, text_len, md_len);

-- Extended attributes (live state only: not versioned).
CREATE TABLE IF NOT EXISTS xattrs (
    ino    INTEGER NOT NULL,     -- owner inode
    name   BLOB NOT NULL,        -- full name with namespace prefix, e.g. user.mime
    value  BLOB NOT NULL,        -- value bytes (may be empty)
    PRIMARY KEY (ino, name)
) WITHOUT ROWID;

-- Relationship-based grants (schema version 2): "subject relation object [until expiry]".
-- Live state, not versioned; each change is logged in oplog. core/access.py turns the live
-- tuples into ACL entries the kernel enforces (see docs/access.md).
CREATE TABLE IF NOT EXISTS rebac_tuples (
    id         INTEGER PRIMARY KEY,  -- tuple number, shown by `rebac list`, used by `rebac delete`
    subject    TEXT NOT NULL,        -- 'user:UID', 'group:GID' (Unix group) or 'team:NAME'
    relation   TEXT NOT NULL,        -- owner-of | editor-of | viewer-of | member-of
    obj_kind   TEXT NOT NULL,        -- 'ino' (a file or directory, followed through renames) or 'team'
    obj        TEXT NOT NULL,        -- the inode number, or the team name
    expires_ns INTEGER,              -- no effect from this time on (NULL: no expiry)
    created_ns INTEGER NOT NULL,     -- when it was made
    created_by INTEGER NOT NULL      -- uid of the caller who made it
);
CREATE INDEX IF NOT EXISTS rebac_by_obj ON rebac_tuples (obj_kind, obj);
