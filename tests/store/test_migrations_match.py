"""The models and the migrations describe the same schema.

A column added to ``models.py`` but not to a migration would exist in tests that create tables
from the models and be missing on every real installation, which Alembic builds. Alembic's own
autogenerate comparison finds such drift; an empty diff is the contract.
"""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from pardus.store.models import Base


def test_autogenerate_finds_no_difference_between_models_and_migrations(workspace) -> None:
    with workspace.db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == [], f"models.py and the Alembic migrations differ: {diff}"
