"""the review desk: sequences queue, people's decisions, superseded observations

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 05:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("observation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("review_decision_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("superseded_by", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_observation_review_decision_id"), ["review_decision_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_observation_superseded_by"), ["superseded_by"], unique=False)
    op.create_table(
        "review_item",
        sa.Column("sequence_id", sa.String(length=64), nullable=False),
        sa.Column("deployment_id", sa.String(length=64), nullable=False),
        sa.Column("plot", sa.String(length=128), nullable=True),
        sa.Column("camera_day", sa.String(length=10), nullable=True),
        sa.Column("start", sa.DateTime(), nullable=True),
        sa.Column("end", sa.DateTime(), nullable=True),
        sa.Column("media_count", sa.Integer(), nullable=False),
        sa.Column("first_media_id", sa.String(length=64), nullable=False),
        sa.Column("time_issues", sa.Boolean(), nullable=False),
        sa.Column("machine_type", sa.String(length=16), nullable=True),
        sa.Column("machine_species", sa.String(length=255), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("human_type", sa.String(length=16), nullable=True),
        sa.Column("human_species", sa.String(length=255), nullable=True),
        sa.Column("reviewed_by", sa.String(length=128), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(), nullable=True),
        sa.Column("disagree", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("sequence_id"),
    )
    with op.batch_alter_table("review_item", schema=None) as batch_op:
        batch_op.create_index("ix_review_item_camera_day", ["deployment_id", "start", "sequence_id"], unique=False)
        batch_op.create_index("ix_review_item_confidence", ["confidence", "sequence_id"], unique=False)
        batch_op.create_index("ix_review_item_unreviewed_camera_day",
                              ["reviewed_at", "deployment_id", "start", "sequence_id"], unique=False)
        batch_op.create_index("ix_review_item_unreviewed_confidence", ["reviewed_at", "confidence", "sequence_id"],
                              unique=False)
        batch_op.create_index(batch_op.f("ix_review_item_plot"), ["plot"], unique=False)
        batch_op.create_index(batch_op.f("ix_review_item_machine_type"), ["machine_type"], unique=False)
    op.create_table(
        "review_decision",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("sequence_id", sa.String(length=64), nullable=False),
        sa.Column("batch_id", sa.String(length=64), nullable=True),
        sa.Column("by", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("observation_type", sa.String(length=16), nullable=False),
        sa.Column("scientific_name", sa.String(length=255), nullable=True),
        sa.Column("count", sa.Integer(), nullable=True),
        sa.Column("machine_type", sa.String(length=16), nullable=True),
        sa.Column("machine_species", sa.String(length=255), nullable=True),
        sa.Column("machine_confidence", sa.Float(), nullable=True),
        sa.Column("undone_at", sa.DateTime(), nullable=True),
        sa.Column("undone_by", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("review_decision", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_review_decision_sequence_id"), ["sequence_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_review_decision_batch_id"), ["batch_id"], unique=False)


def downgrade() -> None:
    op.drop_table("review_decision")
    op.drop_table("review_item")
    with op.batch_alter_table("observation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_observation_superseded_by"))
        batch_op.drop_index(batch_op.f("ix_observation_review_decision_id"))
        batch_op.drop_column("superseded_by")
        batch_op.drop_column("review_decision_id")
