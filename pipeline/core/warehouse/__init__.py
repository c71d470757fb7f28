"""The warehouse: where every stage reads and writes.

In: frames from the stages. Out: DuckDB tables and views.

    catalog.py     every table declared once: columns, types, keys, partition; DDL, empty frames
                   and pandera models come from it
    connection.py  connections that wait for a held lock, idempotent slice replacement
    views.py       the SQL views over the marts (warehouse/queries/*.sql)
    fingerprint.py digests of rows (DuckDB or a frame) and of code, to key caches
    session_rows.py a year's per-answer table written session by session
    table_record.py whether a table still holds what its step wrote from the same inputs
    publish.py     the read-only copy analysts open
"""
