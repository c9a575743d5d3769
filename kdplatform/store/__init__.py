"""The data-access layer, the bottom of kdplatform: it imports nothing of the package above it.

schema (ORM, enums, the tables a run owns), db (the one engine and connection factory), locking (waiting
out DuckDB's locks, the console gate), migrate (alembic), ingest (bulk Arrow in and out), postgres
(advisory locks), transfer (a job between databases), snapshot (a job's content for comparisons).
"""
