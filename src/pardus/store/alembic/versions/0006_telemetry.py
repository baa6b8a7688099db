"""telemetry: fixes without a position, record identity and outlier flags; tags; fire hotspots

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 08:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("telemetry_fix", schema=None) as batch_op:
        batch_op.alter_column("latitude", existing_type=sa.Float(), nullable=True)
        batch_op.alter_column("longitude", existing_type=sa.Float(), nullable=True)
        batch_op.add_column(sa.Column("event_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("sensor_type", sa.String(length=32), nullable=False, server_default="gps"))
        batch_op.add_column(sa.Column("animal", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("visible", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(sa.Column("outlier", sa.String(length=32), nullable=True))
        batch_op.create_unique_constraint("uq_telemetry_fix_record", ["tag_id", "sensor_type", "timestamp"])
        batch_op.create_index("ix_telemetry_fix_individual_time", ["individual_id", "timestamp"], unique=False)

    op.create_table(
        "telemetry_tag",
        sa.Column("tag_id", sa.String(length=64), nullable=False),
        sa.Column("animal", sa.String(length=128), nullable=True),
        sa.Column("taxon", sa.String(length=255), nullable=True),
        sa.Column("study", sa.String(length=500), nullable=True),
        sa.Column("individual_id", sa.String(length=64), nullable=True),
        sa.Column("linked_by", sa.String(length=128), nullable=True),
        sa.Column("linked_at", sa.DateTime(), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("tag_id"),
    )
    op.create_index("ix_telemetry_tag_individual_id", "telemetry_tag", ["individual_id"], unique=False)

    op.create_table(
        "fire_hotspot",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("acquired", sa.DateTime(), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.Column("instrument", sa.String(length=16), nullable=False),
        sa.Column("satellite", sa.String(length=16), nullable=True),
        sa.Column("confidence", sa.String(length=16), nullable=True),
        sa.Column("frp", sa.Float(), nullable=True),
        sa.Column("daynight", sa.String(length=1), nullable=True),
        sa.Column("in_park", sa.Boolean(), nullable=False),
        sa.Column("distance_m", sa.Float(), nullable=True),
        sa.Column("location_id", sa.String(length=64), nullable=True),
        sa.Column("alert_id", sa.String(length=64), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_fire_hotspot_acquired", "fire_hotspot", ["acquired"], unique=False)
    op.create_index("ix_fire_hotspot_in_park", "fire_hotspot", ["in_park"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_fire_hotspot_in_park", table_name="fire_hotspot")
    op.drop_index("ix_fire_hotspot_acquired", table_name="fire_hotspot")
    op.drop_table("fire_hotspot")
    op.drop_index("ix_telemetry_tag_individual_id", table_name="telemetry_tag")
    op.drop_table("telemetry_tag")
    with op.batch_alter_table("telemetry_fix", schema=None) as batch_op:
        batch_op.drop_index("ix_telemetry_fix_individual_time")
        batch_op.drop_constraint("uq_telemetry_fix_record", type_="unique")
        for col in ("outlier", "visible", "animal", "sensor_type", "event_id"):
            batch_op.drop_column(col)
        batch_op.alter_column("longitude", existing_type=sa.Float(), nullable=False)
        batch_op.alter_column("latitude", existing_type=sa.Float(), nullable=False)
