"""The filesystem core: inode-based async operations over the metadata and chunk stores."""
