"""History: the operation log, versions, time travel, snapshots, undo and retention, built on
the validity ranges the metadata store keeps on its rows."""
