"""Bring a simulated season into a Pardus workspace the way a field team would: the deployments
sheet first, then every card, including the accidental second copy of one card.

Kept beside the simulator (not in ingest) because it knows the season's folder layout; the
import itself is the real one (``pardus.ingest``), so a season exercises the production path.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pardus.ingest.card import ImportReport, import_card
from pardus.ingest.deployments import load_deployments_csv
from pardus.store import Workspace

CardProgress = Callable[[str, int, int], None]


def season_cards(season: Path) -> list[tuple[Path, str]]:
    """(card folder, deployment id) for every card; a ``-copy`` folder belongs to its original."""
    cards = sorted(p for p in (Path(season) / "cards").iterdir() if p.is_dir())
    return [(c, c.name.removesuffix("-copy")) for c in cards]


def import_season(ws: Workspace, season: Path, progress: CardProgress | None = None) -> list[ImportReport]:
    """Record the deployments, then import each card; returns one report per card."""
    season = Path(season)
    sheet = season / "deployments.csv"
    if not sheet.is_file():
        raise FileNotFoundError(f"{sheet} not found: give the folder written by `pardus simulate`")
    with ws.db.session() as s:
        load_deployments_csv(s, sheet)
    reports = []
    for card, dep in season_cards(season):
        def on_file(done: int, total: int, _name: str, card: Path = card) -> None:
            if progress:
                progress(card.name, done, total)

        reports.append(import_card(ws, card, dep, progress=on_file))
    return reports
