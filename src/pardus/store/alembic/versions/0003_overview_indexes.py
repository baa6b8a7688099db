"""season overview at a million photos: stage_state.deployment_id and grouped-count indexes

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 05:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stage_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deployment_id", sa.String(length=64), nullable=True))
    # Existing states learn their photo's deployment; new ones get it when they are created.
    op.execute("UPDATE stage_state SET deployment_id = "
               "(SELECT media.deployment_id FROM media WHERE media.id = stage_state.media_id)")
    with op.batch_alter_table("stage_state", schema=None) as batch_op:
        batch_op.create_index("ix_stage_state_deployment", ["deployment_id", "stage", "status"], unique=False)
    with op.batch_alter_table("media", schema=None) as batch_op:
        batch_op.create_index("ix_media_deployment_flags", ["deployment_id", "timestamp_issues", "file_issues"],
                              unique=False)
    with op.batch_alter_table("observation", schema=None) as batch_op:
        batch_op.create_index("ix_observation_deployment_type", ["deployment_id", "observation_type", "media_id"],
                              unique=False)
        batch_op.create_index("ix_observation_deployment_method",
                              ["deployment_id", "classification_method", "media_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("media", schema=None) as batch_op:
        batch_op.drop_index("ix_media_deployment_flags")
    with op.batch_alter_table("observation", schema=None) as batch_op:
        batch_op.drop_index("ix_observation_deployment_method")
        batch_op.drop_index("ix_observation_deployment_type")
    with op.batch_alter_table("stage_state", schema=None) as batch_op:
        batch_op.drop_index("ix_stage_state_deployment")
        batch_op.drop_column("deployment_id")
