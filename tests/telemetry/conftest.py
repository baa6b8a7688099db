"""Fixtures of the telemetry tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def workspace_sqlite(sqlite_settings):
    """One SQLite workspace for a test (property tests reuse it across examples)."""
    from pardus.store import open_workspace

    with open_workspace(sqlite_settings) as ws:
        yield ws
