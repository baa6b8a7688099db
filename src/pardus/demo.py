"""The main job on the embedded default: a small simulated season, imported and processed.

It is what `make run` does on a fresh machine, so it goes through the same code a park uses
(simulate → deployments sheet → card import → processing stages → status), only on a season
small enough to finish in minutes on a laptop. Running it again reuses what is there: the
season is not generated twice and the import adds nothing.

Then it tells the season's story against the simulator's truth, the way a park would check a new
tool: the truth of the season's first half stands in for the reviewers (their labels teach the
species head; their identifications fill the leopard and tiger catalogue), and the second half is
judged: species named, individuals proposed (right, wrong, "new"), and the plot-year report's
individuals and density beside the true values.

Where MegaDetector v6 is at hand (``../shared/models`` beside the repository, or
``PARDUS_SHARED_DIR``) the demo fits it into its own data folder first, so every stage that needs
boxes uses it, as `pardus process` does once `pardus models fit-mdv6` ran; otherwise it keeps the
offline pair that comes with Pardus, and says why.
"""

from __future__ import annotations

import os
import shutil
import time
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
from pardus.simulate.load import REVIEWER, import_season, season_cards
from pardus.stats.estimates import Estimate
from pardus.store import Workspace, open_workspace

DEMO_CAMERAS = 8
DEMO_DAYS = 30
DEMO_SEED = 1
# Where the MegaDetector v6 Edge TPU file sits inside the shared folder (see its PROVENANCE.md).
MDV6_FOLDER = Path("models") / "mdv6-yolov10-c-int8-edgetpu"
MDV6 = "megadetector-v6-yolov10-c"

# (phase, done, total): one callback for every long step, so the CLI can draw progress bars.
PhaseProgress = Callable[[str, int, int], None]
# One line for the person watching, said while the demo runs (which detector, and why).
Say = Callable[[str], None]


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
    reid: ReidSummary | None = None
    report: ReportSummary | None = None
    detector: DetectorChoice | None = None
    sign_in: tuple[str, str] | None = None  # (user, password) of the demo's ranger for `pardus serve`
    seconds: dict[str, float] = field(default_factory=dict)  # phase -> wall seconds, in the order run


@dataclass
class DetectorChoice:
    """The detector every box-needing stage of the demo runs, and the one line that says why."""

    detector: str  # DetectionStage.detector: "megadetector-v6-yolov10-c", "offline", ...
    line: str
    fit_seconds: float | None = None  # how long fitting MDv6 into the data folder took, when it was done now


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


# What a re-identification proposal on a second-half photo turned out to be, in the order printed.
REID_OUTCOMES = {
    "known-right": "a catalogue leopard or tiger, named right",
    "known-other": "a catalogue leopard or tiger, named as another",
    "known-new": 'a catalogue leopard or tiger, called "new"',
    "known-open": "a catalogue leopard or tiger, left open (closest only)",
    "new-new": 'a leopard or tiger not in the catalogue, called "new" (right)',
    "new-known": "a leopard or tiger not in the catalogue, named as a known one",
    "new-open": "a leopard or tiger not in the catalogue, left open",
    "other-known": "another animal (deer, boar ...), named as a catalogue animal",
    "other-new": 'another animal (deer, boar ...), called "new"',
    "other-open": "another animal (deer, boar ...), left open (closest only)",
    "nothing": "no animal (empty scene, smoke, vehicle)",
}


@dataclass
class ReidSummary:
    """Re-identification of the second half's leopards and tigers against the true individuals, with
    the catalogue the first half's reviewers confirmed (the truth standing in for them)."""

    since: datetime
    catalogue_animals: int  # leopards and tigers confirmed on first-half photos
    catalogue_photos: int
    outcomes: dict[str, int] = field(default_factory=dict)  # REID_OUTCOMES key -> proposals
    animals_later: int = 0  # true leopards and tigers on second-half photos
    animals_later_known: int = 0  # of them, already in the catalogue
    # second-half photos of a leopard or tiger without any proposal, by reason
    unmatched: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class ReportSummary:
    """The plot-year report's headline numbers (leopards) beside what the simulator knows."""

    plot: str
    year: int
    headline: str
    seen: int  # individuals identified (confirmed) in the report
    population: Estimate | None  # best closed-population model's N, when estimable
    population_model: str | None
    density: Estimate | None  # SECR, animals per 100 km², when it could be fitted
    true_photographed: int  # leopards on the season's photos (truth)
    true_cubs: int  # of them, cubs walking with their mother (outside the density model)
    true_late: int  # of them, the leopard that settled late in the season (breaks closure on purpose)
    true_in_mask: int  # leopards living within the SECR mask around the cameras
    mask_area_km2: float
    true_density: float  # the simulation's leopard density, per 100 km²
    html: Path | None = None
    messages: list[str] = field(default_factory=list)


def demo_settings(out: Path) -> Settings:
    """The demo keeps its own data folder beside its season, never the user's real one."""
    return Settings(data_dir=out / "pardus-data")


def _shown(path: Path) -> str:
    """A path as short as it can be said from here (``../shared/models/...`` when run from the repo)."""
    rel = os.path.relpath(path)
    return rel if not rel.startswith(os.path.join("..", "..")) else str(Path(path).resolve())


def shared_folder() -> Path:
    """The shared folder holding ``models/``: ``PARDUS_SHARED_DIR`` when set, else the ``shared``
    folder beside this repository (found from this file, so it does not depend on where
    `pardus demo` is started), else ``../shared`` from the current folder."""
    if os.environ.get("PARDUS_SHARED_DIR"):
        return Path(os.environ["PARDUS_SHARED_DIR"])
    repo = Path(__file__).resolve().parents[2]
    if (repo / "pyproject.toml").is_file():
        return repo.parent / "shared"
    return Path("..") / "shared"


def choose_detector(settings: Settings, shared: Path | None = None,
                    progress: PhaseProgress | None = None) -> DetectorChoice:
    """Make MegaDetector v6 the demo's detector where its file is at hand, else keep the offline pair.

    It fits MDv6 into the demo's own data folder (copy of the file plus the recovered Edge TPU first
    layer, what `pardus models fit-mdv6` writes), so ``detect_choice`` picks it for the detect stage
    and everything that crops its boxes. Any reason not to (the user chose a detector, no file, not
    the checked file, a recovery error) keeps the offline pair, and the line says which.
    """
    from pardus.models.mdv6 import RecoveryError, first_layer_path, ready, recover_first_layer
    from pardus.models.registry import MEGADETECTOR_V6_C

    models = settings.data_dir / "models"
    pair = "the offline pair (YOLOX-tiny + COCO SSD, installed with Pardus)"
    if settings.detector == "offline":
        return DetectorChoice("offline", f"Detector: {pair}, as PARDUS_DETECTOR=offline asks.")
    if settings.detector != "auto":
        return DetectorChoice(settings.detector, f"Detector: {settings.detector}, as PARDUS_DETECTOR asks.")
    if ready(models):
        return DetectorChoice(MDV6, f"Detector: MegaDetector v6, already fitted into {_shown(models)}; every stage "
                                    "that needs boxes uses it.")
    tflite = (shared or shared_folder()) / MDV6_FOLDER / (MEGADETECTOR_V6_C.filename or "")
    if not tflite.is_file():
        return DetectorChoice("offline", f"Detector: {pair}: no MegaDetector v6 file at {_shown(tflite)} (set "
                                         "PARDUS_SHARED_DIR to the folder holding models/).")
    if progress:
        progress("fit MegaDetector v6", 0, 1)
    t0 = time.perf_counter()
    try:
        layer = recover_first_layer(tflite)
        if layer.source_sha256 != MEGADETECTOR_V6_C.sha256:
            return DetectorChoice("offline", f"Detector: {pair}: {tflite} is not the checked MegaDetector v6 "
                                             f"file (SHA-256 {layer.source_sha256[:12]}...).")
        models.mkdir(parents=True, exist_ok=True)
        target = models / tflite.name
        shutil.copyfile(tflite, target)
        layer.save(first_layer_path(target))  # written last: `ready` needs both files
    except (RecoveryError, ValueError, OSError) as exc:
        return DetectorChoice("offline", f"Detector: {pair}: fitting MegaDetector v6 from {tflite} failed: {exc}")
    finally:
        if progress:
            progress("fit MegaDetector v6", 1, 1)
    seconds = time.perf_counter() - t0
    return DetectorChoice(MDV6, f"Detector: MegaDetector v6, fitted from {_shown(tflite.parent)} into "
                                f"{_shown(models)} in {seconds:.1f} s; every stage that needs boxes uses it "
                                "(AGPL-3.0 weights).", fit_seconds=seconds)


class Laps:
    """Wall seconds per phase of the demo, in the order run, for the printout's last line: where the
    time of `make run` goes (detection per photo above all)."""

    def __init__(self, seconds: dict[str, float]) -> None:
        self.seconds = seconds
        self.started = self.last = time.perf_counter()

    def __call__(self, phase: str | None) -> None:
        """Close the phase that just ended (None: time not worth a line, e.g. nothing to fit)."""
        now = time.perf_counter()
        if phase:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + now - self.last
        self.last = now

    def total(self) -> float:
        return time.perf_counter() - self.started


def run_demo(
    out: Path,
    *,
    cameras: int = DEMO_CAMERAS,
    days: int = DEMO_DAYS,
    seed: int = DEMO_SEED,
    progress: PhaseProgress | None = None,
    teach: bool = True,
    shared: Path | None = None,
    say: Say | None = None,
) -> DemoResult:
    """Simulate (or reuse) the season, import it, process it and compare what was found with the truth.

    ``shared``: the folder whose ``models/`` may hold MegaDetector v6 (default :func:`shared_folder`).
    ``say`` hears the one line about the detector as soon as it is chosen.
    """
    out = Path(out)
    season = out / "season"
    settings = demo_settings(out)
    seconds: dict[str, float] = {}
    lap = Laps(seconds)
    detector = choose_detector(settings, shared, progress)
    if say:
        say(detector.line)
    lap("fit MegaDetector v6" if detector.fit_seconds is not None else None)
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
        lap("simulate")
    with open_workspace(settings) as ws:
        result = DemoResult(season=season, data_dir=settings.data_dir, generated=generated, detector=detector,
                            seconds=seconds)
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
        lap("import")

        def bar(name: str) -> Callable[[int, int], None]:
            return lambda d, n: progress(name, d, n) if progress else None

        stages = default_stages(settings)
        lap("load models")
        # Re-identification waits until the first half's reviewers have filled the catalogue and taught
        # the species head (below): as in a park, the head that knows the park's deer keeps them out of
        # the leopard catalogue's proposals.
        reid = next((st for st in stages if st.name == "reid"), None) if teach else None
        for stage in stages:
            if stage is not reid:
                result.stages.append(run_stage(ws, stage, progress=bar(f"process {stage.name}")))
                lap(stage.name)
        result.detection_vs_truth = detection_vs_truth(ws, season)
        if teach:
            since = season_middle(ws)
            if reid is not None:
                known, photos = confirm_first_half(ws, season, since, progress=bar("reviewers confirm the first half"))
                lap("first-half catalogue")
            result.species = teach_and_compare(ws, season, result, progress, since=since)
            lap("teach species and fire")
            if reid is not None:
                later = second_half(ws, since)
                # Normally none: the whole truth is recorded only after re-identification, below.
                leaked = identified_photos(ws, later)
                matched = run_stage(ws, reid, media_ids=later, progress=bar("process reid"))
                result.stages.append(matched)
                lap("reid")
                result.reid = reid_vs_truth(ws, season, since, known, photos, proposals_by=reid.model_key)
                if matched.done and leaked:
                    result.reid.notes.append(
                        f"the catalogue already held {leaked} second-half photos when they were matched (a demo "
                        "folder made before the re-identification model changed): these results flatter; delete "
                        f"{out} for a fair test")
            if result.species is not None:  # the reviewers finish the season: the report counts their work
                from pardus.simulate.load import record_reviewed_truth

                record_reviewed_truth(ws, season)
            if progress:
                progress("plot-year report", 0, 1)
            result.report = report_vs_truth(ws, season, out / "report")
            if progress:
                progress("plot-year report", 1, 1)
            lap("report")
        with ws.db.session() as s:  # the review desk's queue, as `pardus process` leaves it
            refresh_review_queue(s)
        result.sign_in = demo_sign_in(ws)
        seconds["total"] = lap.total()
        return result


def season_middle(ws: Workspace) -> datetime:
    """The middle of the season from trustworthy times only: a camera clock reset to 2000 would put
    it in 2012. The first half is the part "reviewed", the second the part judged."""
    from sqlalchemy import func, select

    from pardus.store.models import Media

    with ws.db.session() as s:
        t0, t1 = s.execute(select(func.min(Media.timestamp), func.max(Media.timestamp))
                           .where(Media.timestamp_issues.is_(None))).one()
        if t0 is None:  # no photo with a trustworthy time: split on what there is
            t0, t1 = s.execute(select(func.min(Media.timestamp), func.max(Media.timestamp))).one()
    return t0 + (t1 - t0) / 2


def identified_photos(ws: Workspace, media_ids: list[str]) -> int:
    """How many of these photos a person (or the truth standing in) has identified an individual on."""
    from sqlalchemy import func, select

    from pardus.store.models import Observation

    with ws.db.session() as s:
        return s.scalar(select(func.count(func.distinct(Observation.media_id))).where(
            Observation.classification_method == "human", Observation.individual_id.is_not(None),
            Observation.media_id.in_(media_ids))) or 0


def second_half(ws: Workspace, since: datetime) -> list[str]:
    """Media ids of the photos taken from ``since`` on (the part of the season that is judged)."""
    from sqlalchemy import select

    from pardus.store.models import Media

    with ws.db.session() as s:
        return list(s.scalars(select(Media.id).where(Media.timestamp >= since)))


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

    from pardus.pipeline.stages import current_detector_key
    from pardus.simulate.load import truth_media
    from pardus.store.models import Media, Observation

    # Only the calls of the detector that runs now: a demo folder processed again after MegaDetector
    # v6 was fitted keeps the older detector's calls beside them.
    detector = current_detector_key(ws.settings)
    with ws.db.session() as s:
        by_hash = {h: mid for h, mid in s.execute(select(Media.sha256, Media.id)) if h}
        calls: dict[str, set[str]] = {}
        for mid, kind in s.execute(
            select(Observation.media_id, Observation.observation_type).where(
                Observation.classification_method == "machine", Observation.classified_by == detector
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
                      progress: PhaseProgress | None = None, *, since: datetime | None = None
                      ) -> SpeciesSummary | None:
    """Review the first half of the season (the truth stands in for the reviewers), teach the species
    and fire heads on it, run them on the second half, and count what each found against the truth.
    None when the species stage did not run (weights not installed). ``since``: the second half's
    start (default :func:`season_middle`)."""
    from sqlalchemy import select

    from pardus.pipeline.classify import SpeciesStage, models_dir
    from pardus.pipeline.hazard import FireSmokeStage
    from pardus.pipeline.stages import current_detector_key
    from pardus.pipeline.teach import train_head
    from pardus.simulate.load import record_reviewed_truth, truth_media
    from pardus.store.models import Detection, Media, Observation

    out_of_box = next((st for st in result.stages if st.stage == "species"), None)
    if out_of_box is None:
        return None
    since = since or season_middle(ws)
    later = second_half(ws, since)
    # The reviewers' labels of the first half teach; the second half's truth is recorded after
    # re-identification has matched it (run_demo), or its cats would already be identified.
    record_reviewed_truth(ws, season, skip=set(later))
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
        by_hash = {h: mid for h, mid in s.execute(select(Media.sha256, Media.id)) if h}
    taught = SpeciesStage(head_dir=models_dir(ws), boxes_from=current_detector_key(ws.settings))

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


@dataclass
class MarkedTruth:
    """The true leopards and tigers of the imported photos, one row per animal (``truth/objects.csv``,
    so a mother's cubs count too) with the photo's media id; each photo's corrected time (None when
    it cannot be trusted: the reset camera's photos dated 2000 belong to neither half) and true
    content (animal, blank, ...)."""

    rows: list[tuple[dict[str, str], str]]
    times: dict[str, datetime | None]
    content: dict[str, str]

    def half(self, since: datetime, second: bool) -> list[tuple[dict[str, str], str]]:
        """The rows of photos taken before ``since`` (or from it on, ``second``); undated ones in neither."""
        return [(r, mid) for r, mid in self.rows
                if (t := self.times.get(mid)) is not None and (t >= since) == second]


def _marked_truth(season: Path, ws: Workspace) -> MarkedTruth:
    """Read :class:`MarkedTruth` of the season against this workspace's photos."""
    import csv

    from sqlalchemy import select

    from pardus.ingest.timefix import time_is_trusted
    from pardus.reid.stage import MARKED_SPECIES
    from pardus.simulate.load import truth_media
    from pardus.store.models import Media

    with ws.db.session() as s:
        times = {mid: t if time_is_trusted(issues) else None
                 for mid, t, issues in s.execute(select(Media.id, Media.timestamp, Media.timestamp_issues))}
        by_hash = {h: mid for h, mid in s.execute(select(Media.sha256, Media.id)) if h}
    photos = [(r, mid) for r, mid in truth_media(season, by_hash) if mid]
    media_of = {r["path"]: mid for r, mid in photos}
    rows = []
    with (season / "truth" / "objects.csv").open(newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            mid = media_of.get(r["path"])
            if mid and r["individual_id"] and r["scientific_name"] in MARKED_SPECIES:
                rows.append((r, mid))
    return MarkedTruth(rows, times, {mid: r["content"] for r, mid in photos})


def _box(r: dict[str, str]) -> tuple[float, float, float, float]:
    return float(r["bbox_x"]), float(r["bbox_y"]), float(r["bbox_width"]), float(r["bbox_height"])


def confirm_first_half(ws: Workspace, season: Path, since: datetime, by: str = REVIEWER,
                       progress: Callable[[int, int], None] | None = None) -> tuple[set[str], int]:
    """The first half's reviewers put its leopards and tigers into the catalogue (the truth stands in
    for them), through the catalogue's own operations (create, confirm a photo), as the identity desk
    would. Returns the codes the first half put in the catalogue and on how many photos. Running it
    again adds nothing; rows are written as the truth's reviewer, so ``record_reviewed_truth`` does
    not add them twice."""
    import csv

    from sqlalchemy import select

    from pardus.reid.catalogue import FLANKS, Catalogue
    from pardus.store.models import Individual, Observation

    first = _marked_truth(season, ws).half(since, second=False)
    with (season / "truth" / "animals.csv").open(newline="", encoding="utf-8") as f:
        sexes = {a["individual_id"]: {"F": "female", "M": "male"}.get(a["sex"]) for a in csv.DictReader(f)}
    cat = Catalogue(ws)
    with ws.db.session() as s:
        codes = {c for c in s.scalars(select(Individual.code))}
        done = {(mid, code) for mid, code in s.execute(
            select(Observation.media_id, Individual.code).join(Individual, Individual.id == Observation.individual_id)
            .where(Observation.classification_method == "human"))}
    for i, (r, mid) in enumerate(first):
        code = r["individual_id"]
        if code not in codes:
            cat.create(by=by, code=code, species=r["scientific_name"], sex=sexes.get(code))
            codes.add(code)
        if (mid, code) not in done:
            cat.confirm_photo(mid, code, by=by, box=_box(r), flank=r["flank"] if r["flank"] in FLANKS else None)
            done.add((mid, code))
        if progress:
            progress(i + 1, len(first))
    return {r["individual_id"] for r, _ in first}, len({mid for _, mid in first})


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def reid_vs_truth(ws: Workspace, season: Path, since: datetime, known: set[str], photos: int = 0,
                  proposals_by: str | None = None) -> ReidSummary:
    """Each re-identification proposal on a second-half photo, judged against the true animal under
    its box (the truth object it overlaps most): the machine's first candidate, or "new". ``known``:
    the codes the first half put in the catalogue (on ``photos`` photos); ``proposals_by``: only the
    proposals of this re-identification model (an older model's stay in the queue beside them).
    Photos of a leopard or tiger without any proposal are counted by why (no animal box; the species
    stage named another species, which re-identification skips)."""
    from sqlalchemy import select

    from pardus.pipeline.classify import animal_boxes
    from pardus.pipeline.stages import current_detector_key
    from pardus.reid.desk import pending_proposals
    from pardus.store.models import Detection, Observation

    marked = _marked_truth(season, ws)
    later = marked.half(since, second=True)
    truth: dict[str, list[dict[str, str]]] = {}
    for r, mid in later:
        truth.setdefault(mid, []).append(r)
    summary = ReidSummary(since=since, catalogue_animals=len(known), catalogue_photos=photos,
                          outcomes=dict.fromkeys(REID_OUTCOMES, 0))
    animals = {r["individual_id"] for r, _ in later}
    summary.animals_later, summary.animals_later_known = len(animals), len(animals & known)
    with ws.db.session() as s:
        mine = None if proposals_by is None else set(s.scalars(
            select(Observation.id).where(Observation.classified_by == proposals_by)))
        proposed: set[str] = set()
        after: str | None = None
        while page := pending_proposals(s, limit=200, after=after):
            after = page[-1].id
            for p in page:
                t = marked.times.get(p.media_id)
                if t is None or t < since or (mine is not None and p.id not in mine):
                    continue
                proposed.add(p.media_id)
                box = p.box or (0.0, 0.0, 0.0, 0.0)
                under = max(truth.get(p.media_id, []), key=lambda r: _overlap(_box(r), box), default=None)
                # Named: the first open candidate a photo lined up with (the desk's verdict). Candidates
                # with coat votes only are shown as the closest, never as the animal: "left to a person".
                best = next((c.code for c in p.open_candidates if c.verified), None)
                closest = best is None and bool(p.open_candidates) and not p.is_new
                if under is None or _overlap(_box(under), box) < 0.1:
                    if marked.content.get(p.media_id) not in ("animal", "human"):
                        summary.outcomes["nothing"] += 1
                    else:  # a deer the species stage left unnamed is matched too: a proposal a person must clear
                        summary.outcomes["other-open" if closest else
                                         "other-new" if p.is_new or best is None else "other-known"] += 1
                    continue
                code = under["individual_id"]
                said = ("open" if closest else "new" if p.is_new or best is None
                        else "right" if best == code else "other")
                if code in known:
                    summary.outcomes[f"known-{said}"] += 1
                else:
                    summary.outcomes["new-new" if said == "new" else "new-open" if said == "open" else "new-known"] += 1
        missed = [mid for mid in truth if mid not in proposed]
        boxed = set(s.scalars(select(Detection.media_id).where(
            Detection.media_id.in_(missed), *animal_boxes(current_detector_key(ws.settings)))))
    for mid in missed:
        why = "named another species by the species stage" if mid in boxed else "no animal box from the detector"
        summary.unmatched[why] = summary.unmatched.get(why, 0) + 1
    return summary


LEOPARD = "Panthera pardus orientalis"


def report_vs_truth(ws: Workspace, season: Path, out_dir: Path) -> ReportSummary:
    """Write the plot-year report of the season's plot and year (leopards), and put its headline
    numbers beside the simulator's: leopards photographed, living around the cameras, and density.
    When the report cannot be made its headline says why (in the report's own words)."""
    import csv
    import json

    from pardus.stats.report import ReportError, build_report

    truth = season / "truth"
    params = json.loads((truth / "params.json").read_text(encoding="utf-8"))
    with (truth / "animals.csv").open(newline="", encoding="utf-8") as f:
        animals = {a["individual_id"]: a for a in csv.DictReader(f)}
    with (truth / "objects.csv").open(newline="", encoding="utf-8") as f:
        seen = {r["individual_id"] for r in csv.DictReader(f) if r["scientific_name"] == LEOPARD and r["individual_id"]}
    leo = params["species"].get(LEOPARD, {})
    summary = ReportSummary(
        plot=params["plot"]["name"], year=int(params["season_start_local"][:4]), headline="", seen=0,
        population=None, population_model=None, density=None, true_photographed=len(seen),
        true_cubs=sum(1 for i in seen if animals.get(i, {}).get("mother_id")),
        true_late=sum(1 for i in seen if int(animals.get(i, {}).get("arrival_day") or 0) > 0),
        true_in_mask=int(leo.get("animals_in_mask", 0)), mask_area_km2=float(leo.get("mask_area_km2", 0.0)),
        true_density=float(leo.get("density_per_km2", 0.0)) * 100)
    try:
        rep, files = build_report(ws, summary.plot, summary.year, out_dir)
    except (ReportError, ArithmeticError) as exc:  # an overflow in a fit is the stats room's to fix: say it
        summary.headline = "no report: " + (str(exc) if isinstance(exc, ReportError)
                                            else f"it failed ({type(exc).__name__}: {exc})")
        return summary
    best = rep.closed.best if rep.closed and rep.closed.best and rep.closed.best.estimable else None
    summary.headline, summary.seen = rep.headline, rep.this_year.seen if rep.this_year else 0
    summary.population, summary.population_model = (best.n_hat, best.model) if best else (None, None)
    summary.density = rep.secr.density_per_100km2() if rep.secr else None
    summary.html, summary.messages = files.get("report.html"), list(rep.messages)
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


def reid_lines(summary: ReidSummary) -> list[str]:
    """What the CLI prints about re-identification: one row per kind of outcome, in plain words."""
    n = sum(summary.outcomes.values())
    right = summary.outcomes.get("known-right", 0) + summary.outcomes.get("new-new", 0)
    lines = [f"Re-identification on the photos from {summary.since:%Y-%m-%d %H:%M} on, against the true animals:",
             f"  catalogue: {summary.catalogue_animals} leopards and tigers the reviewers confirmed on "
             f"{summary.catalogue_photos} photos before it",
             f"  the photos after it show {summary.animals_later} leopards and tigers, "
             f"{summary.animals_later_known} of them in the catalogue",
             f"  {'what the box shows, and what the machine proposed':62} {'proposals':>9}"]
    for key, words in REID_OUTCOMES.items():
        lines.append(f"  {words:62} {summary.outcomes.get(key, 0):9d}")
    lines.append(f"  right: {right} of {n} proposals" if n else "  no proposal on these photos")
    for why, photos in sorted(summary.unmatched.items()):
        lines.append(f"  photos of a leopard or tiger without a proposal, {why}: {photos}")
    lines += [f"  note: {x}" for x in summary.notes[:3]]
    return lines


def _estimate(e: Estimate | None, digits: int = 1) -> str:
    if e is None:
        return "not estimated"
    return f"{e.value:.{digits}f} ({round(e.level * 100)}% CI {e.lcl:.{digits}f}-{e.ucl:.{digits}f})"


def report_lines(summary: ReportSummary) -> list[str]:
    """What the CLI prints about the plot-year report: its headline, and its numbers beside the truth."""
    r = summary
    which = ", ".join(x for x in (f"{r.true_cubs} of them cubs" if r.true_cubs else "",
                                  f"{r.true_late} a late arrival" if r.true_late else "") if x)
    model = f" (model {r.population_model})" if r.population_model else ""
    lines = [f'Plot-year report, plot "{r.plot}" {r.year} (leopards), beside the simulator\'s truth:',
             f"  headline: {r.headline}",
             f"  {'':34} {'report':26} truth",
             f"  {'individual leopards identified':34} {r.seen:<26d} {r.true_photographed} photographed"
             + (f" ({which})" if which else ""),
             f"  {'leopards using the plot' + model:34} {_estimate(r.population):26} {r.true_in_mask} living within "
             f"{r.mask_area_km2:,.0f} km² around the cameras",
             f"  {'density per 100 km² (SECR)':34} {_estimate(r.density, 2):26} {r.true_density:.2f}"]
    lines += [f"  note: {m}" for m in r.messages[:3]]
    if r.html:
        lines.append(f"  the whole report: {r.html.resolve()}")
    return lines


def _duration(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m} min {s:02d} s" if m else f"{s} s"


def time_lines(result: DemoResult) -> list[str]:
    """Where the demo's time went (wall clock), so a slow step shows, e.g. detection per photo."""
    sec = dict(result.seconds)
    total = sec.pop("total", None)
    if total is None:
        return []
    detect = next((st for st in result.stages if st.stage == "detect"), None)
    parts = []
    for phase, s in sec.items():
        if s < 0.5:
            continue  # a step with nothing left to do (the demo run again)
        rate = f", {detect.done / s:.1f} photos/s" if phase == "detect" and detect and detect.done and s else ""
        parts.append(f"{phase} {_duration(s)}{rate}")
    return [f"Time: {_duration(total)} in all ({'; '.join(parts)})."]


def story_lines(result: DemoResult) -> list[str]:
    """The season's story against its truth, after the detections: species, individuals, the report,
    and where the time went."""
    lines = species_lines(result.species) if result.species else []
    lines += reid_lines(result.reid) if result.reid else []
    lines += report_lines(result.report) if result.report else []
    return lines + time_lines(result)
