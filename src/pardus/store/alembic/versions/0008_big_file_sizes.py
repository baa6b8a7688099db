"""big file sizes: media.file_size and import_item.size hold videos past 2 GB

A 32-bit column made PostgreSQL refuse the commit of a card holding a long video (SQLite's
INTEGER was already 64-bit); the sizes are what Pardus checks a copy against, so they must fit.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 12:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

COLUMNS = (("media", "file_size"), ("import_item", "size"))


def upgrade() -> None:
    for table, column in COLUMNS:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(column, existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=True)


def downgrade() -> None:
    for table, column in COLUMNS:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(column, existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=True)
