BEGIN TRANSACTION;
CREATE TABLE chunks (
    id          BLOB PRIMARY KEY, -- BLAKE3-256 of the raw bytes; verified on every read
    raw_len     INTEGER NOT NULL, -- decoded length
    codec       INTEGER NOT NULL, -- 0 raw, 1 zstd
    stored_len  INTEGER NOT NULL, -- encoded length
    pack        INTEGER,          -- pack file number, NULL when inline
    pack_offset INTEGER,          -- offset of the encoded bytes within the pack
    data        BLOB              -- encoded bytes of small chunks kept inline; NULL when in a pack
);
INSERT INTO "chunks" VALUES(X'F3E78CFC197D0B36443750760AFE968999ED5EB059EBDF88F40564DF966E852E',840,1,38,NULL,NULL,X'28B52FFD604802E50000A87072696E74282776657273696F6E206F6E6527290A010061623599');
INSERT INTO "chunks" VALUES(X'4CF80765E8AEE19F298B359AB0FE31BCC0C67581BAF25AC64DD4CB2E718B5192',1050,1,39,NULL,NULL,X'28B52FFD601A03ED0000A87072696E74282776657273696F6E2074776F27290A010005C07F3201');
INSERT INTO "chunks" VALUES(X'8ABE87831039A18F3858AFD1B7E6CBE92FB1E54D52FBF1414C0097F8F11ACDC6',780,1,44,NULL,NULL,X'28B52FFD600C02150100D0646566207574696C28293A0A2020202072657475726E2034320A0100BEEB6A8E01');
INSERT INTO "chunks" VALUES(X'4559C621E55C404070B9658760BEB49C6E1DFAEE518A3D588CF6E560EF9B1BAC',2500,1,43,NULL,NULL,X'28B52FFD60C4080D0100C852656164206D653A20C3BC6EC3AF63C3B664C3A92C20C39F0A0100A186FD3906');
INSERT INTO "chunks" VALUES(X'18D1E6B4AD5377AA9A0F81936390071692421A4C38DB5D4430B69FBA8CA2F007',12288,1,276,NULL,NULL,X'28B52FFD60002F5508000410000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F202122232425262728292A2B2C2D2E2F303132333435363738393A3B3C3D3E3F404142434445464748494A4B4C4D4E4F505152535455565758595A5B5C5D5E5F606162636465666768696A6B6C6D6E6F707172737475767778797A7B7C7D7E7F808182838485868788898A8B8C8D8E8F909192939495969798999A9B9C9D9E9FA0A1A2A3A4A5A6A7A8A9AAABACADAEAFB0B1B2B3B4B5B6B7B8B9BABBBCBDBEBFC0C1C2C3C4C5C6C7C8C9CACBCCCDCECFD0D1D2D3D4D5D6D7D8D9DADBDCDDDEDFE0E1E2E3E4E5E6E7E8E9EAEBECEDEEEFF0F1F2F3F4F5F6F7F8F9FAFBFCFDFEFF010000FD6E805F53');
INSERT INTO "chunks" VALUES(X'3622B8EA0784C01E0C6DBAADCD945587043052967A1841779E84EFFE7F3E4241',12,0,12,NULL,NULL,X'77617320746D702E7478740A');
INSERT INTO "chunks" VALUES(X'A8B6A164FEE7439469AAB7CFDE8D3B27F73219CEE3532EF311D22D25CF66ED61',5,0,5,NULL,NULL,X'676F6E650A');
CREATE TABLE dentries (
    id        INTEGER PRIMARY KEY, -- readdir cookie
    parent    INTEGER NOT NULL,  -- inode of the containing directory
    name      BLOB NOT NULL,     -- entry name, 1..255 bytes, no '/' or NUL
    ino       INTEGER NOT NULL,  -- inode the name points to
    seq_from  INTEGER NOT NULL,  -- operation that created the entry (or repointed it)
    seq_to    INTEGER            -- operation that removed it; NULL while live
);
INSERT INTO "dentries" VALUES(1,1,X'737263',2,1,NULL);
INSERT INTO "dentries" VALUES(2,2,X'6170702E7079',3,2,NULL);
INSERT INTO "dentries" VALUES(3,2,X'6C6962',4,6,NULL);
INSERT INTO "dentries" VALUES(4,4,X'7574696C2E7079',5,7,NULL);
INSERT INTO "dentries" VALUES(5,1,X'646F6373',6,9,NULL);
INSERT INTO "dentries" VALUES(6,6,X'726561646D652E747874',7,10,NULL);
INSERT INTO "dentries" VALUES(7,6,X'656D707479',8,12,NULL);
INSERT INTO "dentries" VALUES(8,1,X'646174612E62696E',9,13,NULL);
INSERT INTO "dentries" VALUES(9,1,X'746D702E747874',10,15,17);
INSERT INTO "dentries" VALUES(10,1,X'72656E616D65642E747874',10,17,NULL);
INSERT INTO "dentries" VALUES(11,1,X'7472617368',11,18,NULL);
INSERT INTO "dentries" VALUES(12,11,X'64656C657465642E747874',12,19,21);
INSERT INTO "dentries" VALUES(13,1,X'6C696E6B',13,22,NULL);
INSERT INTO "dentries" VALUES(14,2,X'7574696C2D686172646C696E6B2E7079',5,23,NULL);
CREATE TABLE doc_kinds (
    ino    INTEGER PRIMARY KEY,  -- the file
    kind   TEXT NOT NULL,        -- "pdf", "xlsx", "docx", ... (nexusfs.views.detect)
    etag   BLOB NOT NULL         -- BLAKE3 of the file's chunk list: the content it was seen with
);
CREATE TABLE extents (
    ino       INTEGER NOT NULL,  -- the file
    offset    INTEGER NOT NULL,  -- byte offset in the file where this extent starts
    length    INTEGER NOT NULL,  -- bytes covered (= the chunk's raw length)
    chunk     BLOB NOT NULL,     -- BLAKE3-256 id of the chunk holding the bytes
    seq_from  INTEGER NOT NULL,  -- operation that wrote the extent
    seq_to    INTEGER            -- operation that replaced or removed it; NULL while live
);
INSERT INTO "extents" VALUES(3,0,840,X'F3E78CFC197D0B36443750760AFE968999ED5EB059EBDF88F40564DF966E852E',3,5);
INSERT INTO "extents" VALUES(3,0,1050,X'4CF80765E8AEE19F298B359AB0FE31BCC0C67581BAF25AC64DD4CB2E718B5192',5,NULL);
INSERT INTO "extents" VALUES(5,0,780,X'8ABE87831039A18F3858AFD1B7E6CBE92FB1E54D52FBF1414C0097F8F11ACDC6',8,NULL);
INSERT INTO "extents" VALUES(7,0,2500,X'4559C621E55C404070B9658760BEB49C6E1DFAEE518A3D588CF6E560EF9B1BAC',11,NULL);
INSERT INTO "extents" VALUES(9,0,12288,X'18D1E6B4AD5377AA9A0F81936390071692421A4C38DB5D4430B69FBA8CA2F007',14,NULL);
INSERT INTO "extents" VALUES(10,0,12,X'3622B8EA0784C01E0C6DBAADCD945587043052967A1841779E84EFFE7F3E4241',16,NULL);
INSERT INTO "extents" VALUES(12,0,5,X'A8B6A164FEE7439469AAB7CFDE8D3B27F73219CEE3532EF311D22D25CF66ED61',20,21);
CREATE TABLE inode_history (
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
INSERT INTO "inode_history" VALUES(3,2,3,33188,1,0,0,0,0,0,1795312004482738659,1795312004482738659,1795312004482738659,NULL);
INSERT INTO "inode_history" VALUES(3,3,5,33188,1,0,0,0,840,2,1795312004482738659,1795312004482987938,1795312004482987938,NULL);
INSERT INTO "inode_history" VALUES(5,7,8,33188,1,0,0,0,0,0,1795312004484149731,1795312004484149731,1795312004484149731,NULL);
INSERT INTO "inode_history" VALUES(5,8,23,33188,1,0,0,0,780,2,1795312004484149731,1795312004484211142,1795312004484211142,NULL);
INSERT INTO "inode_history" VALUES(7,10,11,33188,1,0,0,0,0,0,1795312004484422195,1795312004484422195,1795312004484422195,NULL);
INSERT INTO "inode_history" VALUES(7,11,24,33188,1,0,0,0,2500,5,1795312004484422195,1795312004484474433,1795312004484474433,NULL);
INSERT INTO "inode_history" VALUES(9,13,14,33188,1,0,0,0,0,0,1795312004484668811,1795312004484668811,1795312004484668811,NULL);
INSERT INTO "inode_history" VALUES(10,15,16,33188,1,0,0,0,0,0,1795312004484965672,1795312004484965672,1795312004484965672,NULL);
INSERT INTO "inode_history" VALUES(10,16,17,33188,1,0,0,0,12,1,1795312004484965672,1795312004485006913,1795312004485006913,NULL);
INSERT INTO "inode_history" VALUES(12,19,20,33188,1,0,0,0,0,0,1795312004485342070,1795312004485342070,1795312004485342070,NULL);
INSERT INTO "inode_history" VALUES(12,20,21,33188,1,0,0,0,5,1,1795312004485342070,1795312004485390512,1795312004485390512,NULL);
CREATE TABLE inodes (
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
INSERT INTO "inodes" VALUES(1,16877,5,0,0,0,0,0,1795312004447462709,1795312004485556157,1795312004485556157,NULL,0,0);
INSERT INTO "inodes" VALUES(2,16877,3,0,0,0,0,0,1795312004482540625,1795312004485602977,1795312004485602977,NULL,1,0);
INSERT INTO "inodes" VALUES(3,33188,1,0,0,0,1050,3,1795312004482738659,1795312004483626375,1795312004483626375,NULL,5,0);
INSERT INTO "inodes" VALUES(4,16877,2,0,0,0,0,0,1795312004484081751,1795312004484149731,1795312004484149731,NULL,6,0);
INSERT INTO "inodes" VALUES(5,33188,2,0,0,0,780,2,1795312004484149731,1795312004484211142,1795312004485602977,NULL,23,0);
INSERT INTO "inodes" VALUES(6,16877,2,0,0,0,0,0,1795312004484368296,1795312004484620079,1795312004484620079,NULL,9,0);
INSERT INTO "inodes" VALUES(7,33188,1,0,0,0,2500,5,1795312004484422195,1795312004484474433,1795312004485653472,NULL,24,0);
INSERT INTO "inodes" VALUES(8,33152,1,0,0,0,0,0,1795312004484620079,1795312004484620079,1795312004484620079,NULL,12,0);
INSERT INTO "inodes" VALUES(9,33188,1,0,0,0,12288,24,1795312004484668811,1795312004484709732,1795312004484709732,NULL,14,0);
INSERT INTO "inodes" VALUES(10,33188,1,0,0,0,12,1,1795312004484965672,1795312004485006913,1795312004485112019,NULL,17,0);
INSERT INTO "inodes" VALUES(11,16877,2,0,0,0,0,0,1795312004485304404,1795312004485507816,1795312004485507816,NULL,18,0);
INSERT INTO "inodes" VALUES(13,41471,1,0,0,0,10,0,1795312004485556157,1795312004485556157,1795312004485556157,X'7372632F6170702E7079',22,0);
CREATE TABLE oplog (
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
INSERT INTO "oplog" VALUES(1,1795312004482317374,0,0,1,'make_dump','release-fixture','mkdir','/src',NULL,2,0,NULL);
INSERT INTO "oplog" VALUES(2,1795312004482725289,0,0,1,'make_dump','release-fixture','create','/src/app.py',NULL,3,0,NULL);
INSERT INTO "oplog" VALUES(3,1795312004483051593,0,0,1,'make_dump','release-fixture','write','/src/app.py',NULL,3,0,NULL);
INSERT INTO "oplog" VALUES(4,1795312004483525776,0,0,1,'make_dump','release-fixture','snapshot-create','/','release',1,0,NULL);
INSERT INTO "oplog" VALUES(5,1795312004483653926,0,0,1,'make_dump','release-fixture','write','/src/app.py',NULL,3,0,NULL);
INSERT INTO "oplog" VALUES(6,1795312004484067259,0,0,1,'make_dump','release-fixture','mkdir','/src/lib',NULL,4,0,NULL);
INSERT INTO "oplog" VALUES(7,1795312004484137243,0,0,1,'make_dump','release-fixture','create','/src/lib/util.py',NULL,5,0,NULL);
INSERT INTO "oplog" VALUES(8,1795312004484238323,0,0,1,'make_dump','release-fixture','write','/src/lib/util.py',NULL,5,0,NULL);
INSERT INTO "oplog" VALUES(9,1795312004484354585,0,0,1,'make_dump','release-fixture','mkdir','/docs',NULL,6,0,NULL);
INSERT INTO "oplog" VALUES(10,1795312004484411249,0,0,1,'make_dump','release-fixture','create','/docs/readme.txt',NULL,7,0,NULL);
INSERT INTO "oplog" VALUES(11,1795312004484495644,0,0,1,'make_dump','release-fixture','write','/docs/readme.txt',NULL,7,0,NULL);
INSERT INTO "oplog" VALUES(12,1795312004484610885,0,0,1,'make_dump','release-fixture','create','/docs/empty',NULL,8,0,NULL);
INSERT INTO "oplog" VALUES(13,1795312004484657595,0,0,1,'make_dump','release-fixture','create','/data.bin',NULL,9,0,NULL);
INSERT INTO "oplog" VALUES(14,1795312004484730102,0,0,1,'make_dump','release-fixture','write','/data.bin',NULL,9,0,NULL);
INSERT INTO "oplog" VALUES(15,1795312004484955987,0,0,1,'make_dump','release-fixture','create','/tmp.txt',NULL,10,0,NULL);
INSERT INTO "oplog" VALUES(16,1795312004485024098,0,0,1,'make_dump','release-fixture','write','/tmp.txt',NULL,10,0,NULL);
INSERT INTO "oplog" VALUES(17,1795312004485099440,0,0,1,'make_dump','release-fixture','rename','/tmp.txt','/renamed.txt',10,0,NULL);
INSERT INTO "oplog" VALUES(18,1795312004485294209,0,0,1,'make_dump','release-fixture','mkdir','/trash',NULL,11,0,NULL);
INSERT INTO "oplog" VALUES(19,1795312004485335700,0,0,1,'make_dump','release-fixture','create','/trash/deleted.txt',NULL,12,0,NULL);
INSERT INTO "oplog" VALUES(20,1795312004485415038,0,0,1,'make_dump','release-fixture','write','/trash/deleted.txt',NULL,12,0,NULL);
INSERT INTO "oplog" VALUES(21,1795312004485499824,0,0,1,'make_dump','release-fixture','unlink','/trash/deleted.txt',NULL,12,0,NULL);
INSERT INTO "oplog" VALUES(22,1795312004485549247,0,0,1,'make_dump','release-fixture','symlink','/link',NULL,13,0,NULL);
INSERT INTO "oplog" VALUES(23,1795312004485596567,0,0,1,'make_dump','release-fixture','link','/src/lib/util.py','/src/util-hardlink.py',5,0,NULL);
INSERT INTO "oplog" VALUES(24,1795312004485642636,0,0,1,'make_dump','release-fixture','setxattr','/docs/readme.txt','user.tag',7,0,NULL);
CREATE TABLE rebac_tuples (
    id         INTEGER PRIMARY KEY,  -- tuple number, shown by `rebac list`, used by `rebac delete`
    subject    TEXT NOT NULL,        -- 'user:UID', 'group:GID' (Unix group) or 'team:NAME'
    relation   TEXT NOT NULL,        -- owner-of | editor-of | viewer-of | member-of
    obj_kind   TEXT NOT NULL,        -- 'ino' (a file or directory, followed through renames) or 'team'
    obj        TEXT NOT NULL,        -- the inode number, or the team name
    expires_ns INTEGER,              -- no effect from this time on (NULL: no expiry)
    created_ns INTEGER NOT NULL,     -- when it was made
    created_by INTEGER NOT NULL      -- uid of the caller who made it
);
CREATE TABLE snapshots (
    name       TEXT PRIMARY KEY, -- [A-Za-z0-9._-]{1,128}
    seq        INTEGER NOT NULL, -- the tree as of this seq
    root_ino   INTEGER NOT NULL, -- the directory the snapshot shows (1 for the whole tree)
    path       TEXT NOT NULL,    -- that directory's path when the snapshot was taken
    created_ns INTEGER NOT NULL  -- when it was taken
);
INSERT INTO "snapshots" VALUES('release',3,1,'/',1795312004483534168);
CREATE TABLE store_info (
    key   TEXT PRIMARY KEY,      -- the fact's name
    value                        -- its value (integer or text)
);
INSERT INTO "store_info" VALUES('schema_version',3);
INSERT INTO "store_info" VALUES('store_id','f25111d8-ad17-4aa3-a94a-32330ead097a');
INSERT INTO "store_info" VALUES('created_ns',1795312004447462709);
CREATE TABLE versions (
    ino       INTEGER NOT NULL,  -- the file
    seq       INTEGER NOT NULL,  -- the operation after which this version's state holds
    size      INTEGER NOT NULL,  -- the file's size in that version
    mtime_ns  INTEGER NOT NULL,  -- its modification time
    PRIMARY KEY (ino, seq)
) WITHOUT ROWID;
INSERT INTO "versions" VALUES(3,3,840,1795312004482987938);
INSERT INTO "versions" VALUES(3,5,1050,1795312004483626375);
INSERT INTO "versions" VALUES(5,8,780,1795312004484211142);
INSERT INTO "versions" VALUES(7,11,2500,1795312004484474433);
INSERT INTO "versions" VALUES(9,14,12288,1795312004484709732);
INSERT INTO "versions" VALUES(10,16,12,1795312004485006913);
INSERT INTO "versions" VALUES(10,17,12,1795312004485006913);
INSERT INTO "versions" VALUES(12,20,5,1795312004485390512);
INSERT INTO "versions" VALUES(12,21,5,1795312004485390512);
CREATE TABLE view_cache (
    key        BLOB PRIMARY KEY, -- nexusfs.views.cache_key(etag, kind)
    data       BLOB NOT NULL,    -- zstd of ParseResult.to_bytes()
    text_len   INTEGER NOT NULL, -- bytes of the .txt view
    md_len     INTEGER NOT NULL, -- bytes of the .md view
    created_ns INTEGER NOT NULL
);
CREATE TABLE xattrs (
    ino    INTEGER NOT NULL,     -- owner inode
    name   BLOB NOT NULL,        -- full name with namespace prefix, e.g. user.mime
    value  BLOB NOT NULL,        -- value bytes (may be empty)
    PRIMARY KEY (ino, name)
) WITHOUT ROWID;
INSERT INTO "xattrs" VALUES(7,X'757365722E746167',X'72656C65617365');
CREATE INDEX oplog_by_path ON oplog(path);
CREATE INDEX oplog_by_path2 ON oplog(path2) WHERE path2 IS NOT NULL;
CREATE INDEX oplog_by_undo ON oplog(undo_of) WHERE undo_of IS NOT NULL;
CREATE INDEX oplog_by_time ON oplog(time_ns);
CREATE INDEX oplog_by_agent ON oplog(agent) WHERE agent IS NOT NULL;
CREATE INDEX oplog_by_uid ON oplog(uid, seq);
CREATE INDEX oplog_by_ino ON oplog(ino, seq);
CREATE INDEX inode_history_by_seq ON inode_history(seq_to);
CREATE UNIQUE INDEX dentries_live ON dentries(parent, name) WHERE seq_to IS NULL;
CREATE INDEX dentries_list ON dentries(parent, id) WHERE seq_to IS NULL;
CREATE INDEX dentries_live_ino ON dentries(ino) WHERE seq_to IS NULL;
CREATE INDEX dentries_hist ON dentries(parent, name, seq_from);
CREATE INDEX dentries_by_ino ON dentries(ino, seq_from);
CREATE INDEX dentries_opened ON dentries(seq_from);
CREATE INDEX dentries_closed ON dentries(seq_to) WHERE seq_to IS NOT NULL;
CREATE UNIQUE INDEX extents_live ON extents(ino, offset) WHERE seq_to IS NULL;
CREATE INDEX extents_hist ON extents(ino, seq_from);
CREATE INDEX extents_closed ON extents(ino, seq_to) WHERE seq_to IS NOT NULL;
CREATE INDEX extents_by_chunk ON extents(chunk);
CREATE INDEX view_cache_lengths ON view_cache (key, text_len, md_len);
CREATE INDEX rebac_by_obj ON rebac_tuples (obj_kind, obj);
DELETE FROM "sqlite_sequence";
INSERT INTO "sqlite_sequence" VALUES('inodes',13);
COMMIT;
