"""A reviewed virtual-park season shared by the format tests (built once per session: it takes seconds)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pardus.config import Settings
from pardus.simulate import simulate_season
from pardus.simulate.load import import_season, record_reviewed_truth
from pardus.store import Workspace, open_workspace


@dataclass
class Season:
    folder: Path
    ws: Workspace


@pytest.fixture(scope="session")
def reviewed_season(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Season]:
    """Six cameras for twenty days, dense leopards, the truth recorded as people's finished review.

    The season carries the field's mess (one camera's clock resets to 2000), which the exports must
    not publish as records.
    """
    root = tmp_path_factory.mktemp("formats-season")
    simulate_season(root / "season", cameras=6, days=20, seed=5, leopard_density_per_km2=0.04,
                    frame_size=(320, 180), workers=1)  # fmt: skip
    ws = open_workspace(Settings(data_dir=root / "data"))
    import_season(ws, root / "season")
    assert record_reviewed_truth(ws, root / "season") > 0
    yield Season(root / "season", ws)
    ws.close()
    shutil.rmtree(root, ignore_errors=True)
