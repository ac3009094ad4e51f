"""Metadata: the APSW connection, the schema and its migrations, and the metadata store."""
