"""The main job on the embedded default: a small simulated season, imported and processed.

It is what `make run` does on a fresh machine, so it goes through the same code a park uses
(simulate → deployments sheet → card import → processing stages → status), only on a season
small enough to finish in a couple of minutes on a laptop. Running it again reuses what is
there: the season is not generated twice and the import adds nothing.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pardus.config import Settings
from pardus.ingest.card import ImportReport
from pardus.pipeline.core import StageRun, run_stage
from pardus.pipeline.stages import default_stages
from pardus.simulate import simulate_season
from pardus.simulate.load import import_season, season_cards
from pardus.store import Workspace, open_workspace

DEMO_CAMERAS = 8
DEMO_DAYS = 30
DEMO_SEED = 1

# (phase, done, total): one callback for every long step, so the CLI can draw progress bars.
PhaseProgress = Callable[[str, int, int], None]


@dataclass
class DemoResult:
    season: Path
    data_dir: Path
    generated: bool
    reports: list[ImportReport] = field(default_factory=list)
    stages: list[StageRun] = field(default_factory=list)
    # content -> (photos, found): how many photos of each true content the detectors called non-blank
    detection_vs_truth: dict[str, tuple[int, int]] = field(default_factory=dict)


def demo_settings(out: Path) -> Settings:
    """The demo keeps its own data folder beside its season, never the user's real one."""
    return Settings(data_dir=out / "pardus-data")


def run_demo(
    out: Path,
    *,
    cameras: int = DEMO_CAMERAS,
    days: int = DEMO_DAYS,
    seed: int = DEMO_SEED,
    progress: PhaseProgress | None = None,
) -> DemoResult:
    out = Path(out)
    season = out / "season"
    generated = False
    if not (season / "truth" / "params.json").is_file():
        if season.exists():
            # A season cut off while it was being written: start it again from nothing.
            shutil.rmtree(season)

        def on_frame(done: int, total: int) -> None:
            if progress:
                progress("simulate", done, total)

        simulate_season(season, cameras=cameras, days=days, seed=seed, progress=on_frame)
        generated = True
    settings = demo_settings(out)
    ws: Workspace = open_workspace(settings)
    try:
        result = DemoResult(season=season, data_dir=settings.data_dir, generated=generated)
        # One bar over all cards: files done so far on earlier cards plus this card's count.
        total_files = sum(1 for card, _ in season_cards(season) for p in card.rglob("*") if p.is_file())
        before = {"files": 0, "card": "", "last": 0}

        def on_card(card: str, done: int, _total: int) -> None:
            if card != before["card"]:
                before["files"] += before["last"]
                before["card"] = card
            before["last"] = done
            if progress:
                progress("import cards", before["files"] + done, total_files)

        result.reports = import_season(ws, season, progress=on_card)
        for rep in result.reports:
            rep.write_csv(settings.data_dir / "reports" / f"import-{rep.deployment_id}-{rep.run_id[:8]}.csv")
        for stage in default_stages(settings):

            def on_stage(done: int, total: int, name: str = stage.name) -> None:
                if progress:
                    progress(f"process {name}", done, total)

            result.stages.append(run_stage(ws, stage, progress=on_stage))
        result.detection_vs_truth = detection_vs_truth(ws, season)
        return result
    finally:
        ws.close()


def detection_vs_truth(ws: Workspace, season: Path) -> dict[str, tuple[int, int]]:
    """Per true content (animal, human, vehicle, blank, smoke, fire): photos, and how many of them
    the detection stage called non-blank. Empty when no detection has run."""
    from sqlalchemy import select

    from pardus.simulate.load import truth_media
    from pardus.store.models import Media, Observation

    with ws.db.session() as s:
        by_hash = {h: mid for h, mid in s.execute(select(Media.sha256, Media.id)) if h}
        calls: dict[str, set[str]] = {}
        for mid, kind in s.execute(
            select(Observation.media_id, Observation.observation_type).where(
                Observation.classification_method == "machine"
            )
        ):
            calls.setdefault(mid, set()).add(kind)
    if not calls:
        return {}
    out: dict[str, list[int]] = {}
    seen: set[str] = set()
    for row, mid in truth_media(season, by_hash):
        if mid is None or mid in seen or mid not in calls:
            continue
        seen.add(mid)
        c = out.setdefault(row["content"], [0, 0])
        c[0] += 1
        c[1] += calls[mid] != {"blank"}
    return {k: (v[0], v[1]) for k, v in sorted(out.items())}
