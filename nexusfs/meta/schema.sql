-- nexusfs metadata schema, version 1 (the canonical definition; migrations.py upgrades older stores).
-- All times are integer nanoseconds since the epoch. Names and link targets are raw bytes.

-- Facts about the store itself: schema_version, store_id, created_ns.
CREATE TABLE IF NOT EXISTS store_info (
    key   TEXT PRIMARY KEY,      -- the fact's name
    value                        -- its value (integer or text)
);

-- One row per inode: files, directories, symlinks, FIFOs, sockets, device nodes.
CREATE TABLE IF NOT EXISTS inodes (
    ino       INTEGER PRIMARY KEY AUTOINCREMENT, -- inode number; never reused; 1 is the root
    mode      INTEGER NOT NULL,  -- st_mode: file type and permission bits
    nlink     INTEGER NOT NULL,  -- names pointing here (directories: 2 + subdirectories)
    uid       INTEGER NOT NULL,  -- owner
    gid       INTEGER NOT NULL,  -- group
    rdev      INTEGER NOT NULL DEFAULT 0, -- device number for character/block devices
    size      INTEGER NOT NULL DEFAULT 0, -- logical size in bytes (holes included)
    blocks    INTEGER NOT NULL DEFAULT 0, -- st_blocks: 512-byte units covered by extents
    atime_ns  INTEGER NOT NULL,  -- last access (relatime rules)
    mtime_ns  INTEGER NOT NULL,  -- last content change
    ctime_ns  INTEGER NOT NULL,  -- last change of content or attributes
    target    BLOB               -- symlink target; NULL for other types
);

-- Directory entries. The id is the readdir cookie: new entries get larger ids, so a listing in
-- progress never returns an entry twice or skips one when others come and go.
CREATE TABLE IF NOT EXISTS dentries (
    id      INTEGER PRIMARY KEY, -- readdir cookie
    parent  INTEGER NOT NULL,    -- inode of the containing directory
    name    BLOB NOT NULL,       -- entry name, 1..255 bytes, no '/' or NUL
    ino     INTEGER NOT NULL     -- inode the name points to
);
CREATE UNIQUE INDEX IF NOT EXISTS dentries_by_name ON dentries(parent, name);
CREATE INDEX IF NOT EXISTS dentries_by_ino ON dentries(ino);

-- File content: each regular file is an ordered set of extents; bytes not covered by an extent
-- are a hole and read as zeros. Extents never overlap.
CREATE TABLE IF NOT EXISTS extents (
    ino     INTEGER NOT NULL,    -- the file
    offset  INTEGER NOT NULL,    -- byte offset in the file where this extent starts
    length  INTEGER NOT NULL,    -- bytes covered (= the chunk's raw length)
    chunk   BLOB NOT NULL,       -- BLAKE3-256 id of the chunk holding the bytes
    PRIMARY KEY (ino, offset)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS extents_by_chunk ON extents(chunk);

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

-- Extended attributes.
CREATE TABLE IF NOT EXISTS xattrs (
    ino    INTEGER NOT NULL,     -- owner inode
    name   BLOB NOT NULL,        -- full name with namespace prefix, e.g. user.mime
    value  BLOB NOT NULL,        -- value bytes (may be empty)
    PRIMARY KEY (ino, name)
) WITHOUT ROWID;
