"""people sign in: password hash and revocation, web sessions; alert indexes for the inbox

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 05:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("password_hash", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("revoked", sa.DateTime(), nullable=True))
    # The first wave's "ecologist" is this wave's "reviewer" (labels photos, decides identities).
    op.execute("UPDATE \"user\" SET role = 'reviewer' WHERE role = 'ecologist'")
    op.create_table(
        "web_session",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("expires", sa.DateTime(), nullable=False),
        sa.Column("last_used", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("web_session", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_web_session_user_id"), ["user_id"], unique=False)
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_created"), ["created"], unique=False)
        batch_op.create_index(batch_op.f("ix_alert_camera_id"), ["camera_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_camera_id"))
        batch_op.drop_index(batch_op.f("ix_alert_created"))
    with op.batch_alter_table("web_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_web_session_user_id"))
    op.drop_table("web_session")
    op.execute("UPDATE \"user\" SET role = 'ecologist' WHERE role = 'reviewer'")
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_column("revoked")
        batch_op.drop_column("password_hash")
