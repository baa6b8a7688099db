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
from datetime import datetime
from pathlib import Path

from pardus.config import Settings
from pardus.ingest.card import ImportReport
from pardus.pipeline.core import StageRun, run_stage
from pardus.pipeline.stages import default_stages
from pardus.review.queue import refresh as refresh_review_queue
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
    species: SpeciesSummary | None = None
    sign_in: tuple[str, str] | None = None  # (user, password) of the demo's ranger for `pardus serve`


@dataclass
class SpeciesSummary:
    """The species stage against the season's truth, on the photos of the second half of the season:
    out of the box (ImageNet mapped to the park's taxa) and after teaching the head on the first half."""

    since: datetime
    taught_on: dict[str, int]  # species -> labelled examples from the first half
    # species -> (photos in the second half, named right out of the box, named right by the taught head)
    rows: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    animal_events: int = 0
    blank_frames_in_animal_events: int = 0
    # fire / smoke / other -> (photos in the second half, photos the fire head flagged)
    hazards: dict[str, tuple[int, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


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
    teach: bool = True,
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
    with open_workspace(settings) as ws:
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
        if teach:
            result.species = teach_and_compare(ws, season, result, progress)
        with ws.db.session() as s:  # the review desk's queue, as `pardus process` leaves it
            refresh_review_queue(s)
        result.sign_in = demo_sign_in(ws)
        return result


DEMO_USER = "demo"


def demo_sign_in(ws: Workspace) -> tuple[str, str]:
    """An admin to try every page of the demo's web app with (alerts, review desk, identities). A new
    random password each run (printed once, never stored in clear), so a demo left running on a
    field laptop has no well-known password."""
    import secrets

    from pardus.people.accounts import add_user

    password = "-".join(secrets.token_hex(3) for _ in range(3))
    add_user(ws, DEMO_USER, "admin", password=password, token=False)
    return DEMO_USER, password


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


def teach_and_compare(ws: Workspace, season: Path, result: DemoResult,
                      progress: PhaseProgress | None = None) -> SpeciesSummary | None:
    """Review the first half of the season (the truth stands in for the reviewers), teach the species
    and fire heads on it, run them on the second half, and count what each found against the truth.
    None when the species stage did not run (weights not installed)."""
    from sqlalchemy import func, select

    from pardus.pipeline.classify import SpeciesStage, models_dir
    from pardus.pipeline.hazard import FireSmokeStage
    from pardus.pipeline.teach import train_head
    from pardus.simulate.load import record_reviewed_truth, truth_media
    from pardus.store.models import Detection, Media, Observation

    out_of_box = next((st for st in result.stages if st.stage == "species"), None)
    if out_of_box is None:
        return None
    # The season's middle from trustworthy times only: a camera clock reset to 2000 would put it in 2012.
    with ws.db.session() as s:
        t0, t1 = s.execute(select(func.min(Media.timestamp), func.max(Media.timestamp))
                           .where(Media.timestamp_issues.is_(None))).one()
        if t0 is None:  # no photo with a trustworthy time: split on what there is
            t0, t1 = s.execute(select(func.min(Media.timestamp), func.max(Media.timestamp))).one()
    since = t0 + (t1 - t0) / 2
    record_reviewed_truth(ws, season)
    summary = SpeciesSummary(since=since, taught_on={})
    try:
        head, problems = train_head(ws, "species", until=since, min_examples=3,
                                    progress=lambda d, n: progress("teach species", d, n) if progress else None)
    except ValueError as exc:  # a season too short to teach from: say so, keep the out-of-the-box results
        summary.notes.append(f"species head not trained: {exc}")
        return summary
    summary.taught_on = dict(head.examples)
    summary.notes += problems
    with ws.db.session() as s:
        later = list(s.scalars(select(Media.id).where(Media.timestamp >= since)))
        by_hash = {h: mid for h, mid in s.execute(select(Media.sha256, Media.id)) if h}
    taught = SpeciesStage(head_dir=models_dir(ws))

    def bar(name: str) -> Callable[[int, int], None]:
        return lambda d, n: progress(name, d, n) if progress else None

    result.stages.append(run_stage(ws, taught, media_ids=later, progress=bar("process species (taught)")))
    fire: FireSmokeStage | None = None
    try:
        train_head(ws, "fire", until=since, max_per_class=40, progress=bar("teach fire and smoke"))
        fire = FireSmokeStage(head_dir=models_dir(ws))
        result.stages.append(run_stage(ws, fire, media_ids=later, progress=bar("process fire-smoke")))
    except ValueError as exc:
        summary.notes.append(f"fire head not trained: {exc}")
    later_set = set(later)
    with ws.db.session() as s:
        names: dict[tuple[str, str], set[str | None]] = {}
        for mid, by, name in s.execute(select(Observation.media_id, Observation.classified_by,
                                              Observation.scientific_name)
                                       .where(Observation.classified_by.in_([out_of_box.model, taught.model_key]))):
            names.setdefault((mid, by), set()).add(name)
        flagged = set(s.scalars(select(Detection.media_id).where(Detection.category.in_(("fire", "smoke")))))
        events = select(Observation.extra).where(Observation.observation_level == "event",
                                                 Observation.observation_type == "animal",
                                                 Observation.classified_by.like(taught.model_key + "%"))
        for extra in s.scalars(events):
            summary.animal_events += 1
            summary.blank_frames_in_animal_events += int((extra or {}).get("blank_frames", 0))
    rows: dict[str, list[int]] = {}
    hazards: dict[str, list[int]] = {}
    seen: set[tuple[str, str]] = set()
    for r, mid in truth_media(season, by_hash):
        if mid is None or mid not in later_set:
            continue
        kind = r["content"] if r["content"] in ("fire", "smoke") else "other"
        if (mid, "hazard") not in seen:
            seen.add((mid, "hazard"))
            h = hazards.setdefault(kind, [0, 0])
            h[0] += 1
            h[1] += fire is not None and mid in flagged
        sp = r["scientific_name"]
        if r["content"] not in ("animal", "human") or not sp or (mid, sp) in seen:
            continue
        seen.add((mid, sp))
        row = rows.setdefault(sp, [0, 0, 0])
        row[0] += 1
        row[1] += sp in names.get((mid, out_of_box.model), set())
        row[2] += sp in names.get((mid, taught.model_key), set())
    summary.rows = {k: (v[0], v[1], v[2]) for k, v in sorted(rows.items())}
    summary.hazards = {k: (v[0], v[1]) for k, v in sorted(hazards.items())}
    return summary


def species_lines(summary: SpeciesSummary) -> list[str]:
    """What the CLI prints about the species stage (kept here, beside the numbers it explains)."""
    lines = [f"Species on the photos from {summary.since:%Y-%m-%d %H:%M} on, after teaching the head on the "
             f"reviewed photos before it ({sum(summary.taught_on.values())} examples):",
             f"  {'species':32} {'photos':>6} {'ImageNet map':>13} {'taught head':>12}"]
    for sp, (n, a, b) in summary.rows.items():
        lines.append(f"  {sp:32} {n:6d} {a:13d} {b:12d}")
    lines.append(f"  {summary.animal_events} animal events decided per burst, absorbing "
                 f"{summary.blank_frames_in_animal_events} frames the detector called blank")
    if summary.hazards:
        lines.append("  fire and smoke (photos flagged / photos): " + ", ".join(
            f"{k} {f}/{n}" for k, (n, f) in summary.hazards.items()))
    lines += [f"  note: {n}" for n in summary.notes[:5]]
    return lines
