"""Bring a simulated season into a Pardus workspace the way a field team would: the deployments
sheet first, then every card, including the accidental second copy of one card.

Kept beside the simulator (not in ingest) because it knows the season's folder layout; the
import itself is the real one (``pardus.ingest``), so a season exercises the production path.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
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


def truth_media(season: Path, media_by_hash: dict[str, str]) -> list[tuple[dict[str, str], str | None]]:
    """Each row of ``truth/images.csv`` with the id of the stored photo it became (or None).

    Photos are matched by content hash, so the copy of a card and a renamed file still find
    their Media row; ``media_by_hash`` maps sha256 to media id.
    """
    import csv
    import hashlib

    season = Path(season)
    out = []
    with (season / "truth" / "images.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            path = season / row["path"]
            key = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
            out.append((row, media_by_hash.get(key) if key else None))
    return out


REVIEWER = "virtual-park truth"
_TYPES = {"animal": "animal", "human": "human", "vehicle": "vehicle", "blank": "blank"}


def record_reviewed_truth(ws: Workspace, season: Path, reviewer: str = REVIEWER, *,
                          skip: Collection[str] = ()) -> int:
    """Record the season's true content as if reviewers had labelled and identified every photo.

    It stands for the finished manual review a park does today, so the statistics can be checked
    end to end against known truth ("individuals seen" must equal the animals photographed).
    Rows are ``classification_method='human'`` with ``classified_by`` naming the truth, so they are
    never mistaken for a person's work. Photos are matched by content hash (the copy of a card
    points at the same Media row); running it twice adds nothing. Returns the observations added.
    ``skip``: media ids left unreviewed for now (the demo's second half, judged before its truth is
    recorded: re-identification skips a photo a person already identified).
    """
    import csv

    from sqlalchemy import select

    from pardus.ingest.timefix import time_is_trusted
    from pardus.store.models import Individual, Media, Observation, utcnow

    season = Path(season)
    animals = {
        r["individual_id"]: r
        for r in csv.DictReader((season / "truth" / "animals.csv").open(newline="", encoding="utf-8"))
    }
    added = 0
    with ws.db.session() as s:
        by_id = {m.id: m for m in s.scalars(select(Media))}
        rows = truth_media(season, {m.sha256: m.id for m in by_id.values() if m.sha256})
        individuals = {i.code: i for i in s.scalars(select(Individual))}
        done = {
            (o.media_id, o.scientific_name, o.individual_id)
            for o in s.scalars(select(Observation).where(Observation.classified_by == reviewer))
        }
        for r, media_id in rows:
            obs_type = _TYPES.get(r["content"], "unknown")
            media = by_id.get(media_id) if media_id else None
            if media is None or media_id in skip:
                continue  # not imported (e.g. the damaged file the importer refused): nothing to label
            ind_id = None
            code = r["individual_id"]
            if code:
                ind = individuals.get(code)
                if ind is None:
                    a = animals.get(code, {})
                    # The truth writes M/F; the catalogue (and Camtrap DP) speak female/male.
                    sex = {"M": "male", "F": "female"}.get(a.get("sex") or "")
                    ind = Individual(code=code, scientific_name=r["scientific_name"] or None, sex=sex)
                    s.add(ind)
                    s.flush()
                    individuals[code] = ind
                ind_id = ind.id
                t = media.timestamp
                if t is not None and time_is_trusted(media.timestamp_issues):  # a reset clock dates nothing
                    ind.first_seen = min(ind.first_seen or t, t)
                    ind.last_seen = max(ind.last_seen or t, t)
            key = (media.id, r["scientific_name"] or None, ind_id)
            if key in done:
                continue
            done.add(key)
            has_box = r["bbox_width"] not in ("", None)
            s.add(
                Observation(
                    deployment_id=media.deployment_id,
                    media_id=media.id,
                    observation_level="media",
                    observation_type=obs_type,
                    scientific_name=r["scientific_name"] or None,
                    count=int(r["count"]) if r["count"] and int(r["count"]) > 0 else None,  # blank: no count
                    individual_id=ind_id,
                    bbox_x=float(r["bbox_x"]) if has_box else None,
                    bbox_y=float(r["bbox_y"]) if has_box else None,
                    bbox_width=float(r["bbox_width"]) if has_box else None,
                    bbox_height=float(r["bbox_height"]) if has_box else None,
                    classification_method="human",
                    classified_by=reviewer,
                    classification_timestamp=utcnow(),
                    classification_probability=1.0,
                    comments=r["content"] if obs_type == "unknown" else None,
                    extra={"flank": r["flank"]} if r["flank"] else {},
                )
            )
            added += 1
    return added
