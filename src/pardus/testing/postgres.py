"""A throw-away PostgreSQL schema for the benches: made fresh, filled, dropped after."""

from __future__ import annotations

import uuid

from sqlalchemy import create_engine, text


def new_schema(url: str, prefix: str) -> tuple[str, str]:
    """Create ``<prefix>_<random>`` in the database at ``url``; returns (schema, URL that uses it)."""
    schema = f"{prefix}_{uuid.uuid4().hex[:8]}"
    eng = create_engine(url)
    with eng.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    eng.dispose()
    sep = "&" if "?" in url else "?"
    return schema, f"{url}{sep}options=-csearch_path%3D{schema}"


def drop_schema(url: str, schema: str) -> None:
    eng = create_engine(url)
    with eng.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    eng.dispose()


def vacuum_analyze(url: str) -> None:
    """What autovacuum does to a store in use: statistics, and the visibility map index-only scans need."""
    eng = create_engine(url)
    with eng.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    eng.dispose()
