"""The review table as a Timelapse CSV, and people's Timelapse work back into Pardus.

Timelapse (https://timelapse.ucalgary.ca/) keys each row by ``File`` and ``RelativePath`` (the
folder below the image-set root, written with backslashes as Timelapse does on Windows) and has
the standard fields ``DateTime`` and ``DeleteFlag``; every other column must be a data field of the
image set's template (Timelapse refuses a CSV with a column its template lacks), and several
observations of one photo are duplicate rows of that photo. So the export:

- writes one row per observation (a photo without any, one empty row to fill in); a photo a person
  labelled shows the person's observations, otherwise the machine's;
- names each photo '<deployment>/<path on the card>', the layout of a folder with one subfolder per
  card, so RelativePath + File is unique across cards (every card holds a DCIM/100MEDIA/IMG_0001.JPG);
- writes the template's fields beside the CSV (``<name>.template.json``: data label, type, choices)
  for the Template Editor, and carries ``ObservationID`` and ``MediaHash`` (sha256) so the import
  finds each row's photo by content even after folders were moved.

:func:`import_timelapse` reads such a CSV back as human observations; :func:`read_timelapse` reads
any Timelapse CSV's labels for teaching a species head.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pardus.store import Workspace
from pardus.store.models import Deployment, Detection, Individual, Media, Observation, utcnow

COLUMNS = [
    "File", "RelativePath", "DateTime", "DeleteFlag", "ObservationType", "Species", "Count", "LifeStage", "Sex",
    "Individual", "ClassificationMethod", "ClassifiedBy", "Confidence", "MaxDetectionConf", "Comments",
    "ObservationID", "MediaHash",
]  # fmt: skip
STANDARD = ("File", "RelativePath", "DateTime", "DeleteFlag")  # Timelapse's own columns
OBSERVATION_TYPES = ("animal", "human", "vehicle", "blank", "unknown", "unclassified")
PACKAGE_SOURCE = "camtrap-dp"  # photos read from a package keep the package's (already unique) paths
IMPORTED_BY = "Timelapse"


def timelapse_path(deployment_id: str, file_path: str, timestamp_source: str | None) -> PurePosixPath:
    """Where a photo sits below the image-set root: '<deployment>/<path on the card>'."""
    path = file_path.replace("\\", "/").lstrip("/")
    if timestamp_source == PACKAGE_SOURCE:
        return PurePosixPath(path)
    return PurePosixPath(deployment_id) / path


def template_fields(species: Iterable[str]) -> list[dict[str, Any]]:
    """The image set's data fields, in Timelapse's terms, for the Template Editor."""
    notes = {
        "Individual": "Catalogue code of the individual (e.g. SC_026)",
        "ClassifiedBy": "Who named it (a person's name, or the model)",
        "Comments": "Free text",
        "ObservationID": "Pardus's id of the observation this row came from; leave it, or empty for a new one",
        "MediaHash": "sha256 of the photo, so Pardus finds it by content; leave it",
    }
    return [
        {"DataLabel": "ObservationType", "Label": "Type", "Type": "FixedChoice", "List": list(OBSERVATION_TYPES)},
        {"DataLabel": "Species", "Label": "Species", "Type": "FixedChoice", "List": sorted(set(species))},
        {"DataLabel": "Count", "Label": "Count", "Type": "Counter"},
        {"DataLabel": "LifeStage", "Label": "Life stage", "Type": "FixedChoice",
         "List": ["", "adult", "subadult", "juvenile"]},
        {"DataLabel": "Sex", "Label": "Sex", "Type": "FixedChoice", "List": ["", "female", "male"]},
        {"DataLabel": "ClassificationMethod", "Label": "Method", "Type": "FixedChoice",
         "List": ["", "human", "machine"]},
        {"DataLabel": "Confidence", "Label": "Confidence", "Type": "Note"},
        {"DataLabel": "MaxDetectionConf", "Label": "Best box", "Type": "Note"},
        *({"DataLabel": k, "Label": k, "Type": "Note", "Tooltip": v} for k, v in notes.items()),
    ]  # fmt: skip


def export_timelapse(
    ws: Workspace,
    out: Path | str,
    *,
    deployment_ids: Iterable[str] | None = None,
    separator: str = "\\",
) -> int:
    """Write the review table (one row per observation) for Timelapse, and its template beside it.

    Returns the number of rows written. Photos are listed in id order, their rows together.
    """
    out = Path(out)
    n = 0
    collation = "C" if ws.db.engine.dialect.name == "postgresql" else "BINARY"
    deps = list(deployment_ids) if deployment_ids is not None else None
    species: set[str] = set()
    with ws.db.session() as s:
        best = (
            select(Detection.media_id, func.max(Detection.score).label("max_conf"))
            .group_by(Detection.media_id)
            .subquery()
        )
        q = (
            select(
                Media.id, Media.file_path, Media.camera_time, Media.timestamp, Media.deployment_id,
                Deployment.utc_offset_minutes, Media.timestamp_source, Media.sha256, best.c.max_conf,
            )  # fmt: skip
            .join(Deployment, Deployment.id == Media.deployment_id)
            .outerjoin(best, best.c.media_id == Media.id)
            .order_by(Media.id.collate(collation))
        )
        obs_q = (
            select(
                Observation.media_id, Observation.observation_type, Observation.scientific_name, Observation.count,
                Observation.life_stage, Observation.sex, Observation.individual_id,
                Observation.classification_method, Observation.classified_by, Observation.classification_probability,
                Observation.comments, Observation.id,
            )  # fmt: skip
            .where(Observation.media_id.is_not(None), Observation.superseded_by.is_(None))
            .order_by(Observation.media_id.collate(collation), Observation.id)
        )
        if deps is not None:
            q = q.where(Media.deployment_id.in_(deps))
            obs_q = obs_q.where(Observation.deployment_id.in_(deps))
        codes = dict(s.execute(select(Individual.id, Individual.code)).all())
        # Both queries are ordered by media id, so observations are merged in as the photos stream by
        # (a second connection keeps its own cursor open beside the first).
        obs_conn = ws.db.engine.connect()
        obs_iter = iter(obs_conn.execute(obs_q.execution_options(yield_per=5000, stream_results=True)))
        pending = next(obs_iter, None)
        with open(out, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(COLUMNS)
            for r in s.execute(q.execution_options(yield_per=5000, stream_results=True)):
                path = timelapse_path(r.deployment_id, r.file_path, r.timestamp_source)
                rel = str(path.parent) if str(path.parent) != "." else ""
                local = r.camera_time
                if local is None and r.timestamp is not None:
                    local = (r.timestamp + timedelta(minutes=r.utc_offset_minutes)).replace(tzinfo=None)
                obs: list[Any] = []
                while pending is not None and pending[0] < r.id:
                    pending = next(obs_iter, None)
                while pending is not None and pending[0] == r.id:
                    obs.append(pending)
                    pending = next(obs_iter, None)
                human = [o for o in obs if (o.classification_method or "").lower() == "human"]
                shown = human or obs or [None]  # a person's word stands for the photo; else the machine's
                for o in shown:
                    if o is not None and o.scientific_name:
                        species.add(o.scientific_name)
                    w.writerow([
                        path.name, rel.replace("/", separator),
                        local.strftime("%Y-%m-%d %H:%M:%S") if local else "", "false",
                        *(["", "", "", "", "", "", "", "", ""] if o is None else [
                            o.observation_type or "", o.scientific_name or "", "" if o.count is None else o.count,
                            o.life_stage or "", o.sex or "", codes.get(o.individual_id, o.individual_id) or "",
                            o.classification_method or "", o.classified_by or "",
                            "" if o.classification_probability is None else f"{o.classification_probability:.4f}",
                        ]),
                        f"{r.max_conf:.4f}" if r.max_conf is not None else "",
                        "" if o is None else (o.comments or ""), "" if o is None else o.id, r.sha256 or "",
                    ])  # fmt: skip
                    n += 1
        obs_conn.close()
    template = {
        "about": "Data fields of the Timelapse template this CSV needs: create them with the Timelapse Template "
                 "Editor (DataLabel exactly as written; File, RelativePath, DateTime and DeleteFlag are "
                 "Timelapse's own), then import the CSV with File > Import data from a CSV file.",
        "csv": out.name,
        "fields": template_fields(species),
    }  # fmt: skip
    template_path(out).write_text(json.dumps(template, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return n


def template_path(csv_path: Path) -> Path:
    """The template description written beside an exported CSV."""
    return csv_path.with_name(csv_path.stem + ".template.json")


class TimelapseError(ValueError):
    """A CSV that cannot be read as Timelapse data; says what is missing."""


@dataclass(frozen=True)
class TimelapseLabel:
    """One label of one photo: a row, or one of the '|'-joined values the export writes for a photo
    with several observations."""

    file: str  # RelativePath and File joined with '/' (Timelapse writes the folder with backslashes)
    species: str
    observation_type: str  # "" when the CSV has no ObservationType column
    classification_method: str  # "" when not said (in Timelapse itself a person typed every field)


def read_timelapse(path: Path | str, species_column: str = "Species") -> tuple[list[TimelapseLabel], int]:
    """(labels with a species, rows skipped because Timelapse marked them deleted) of a Timelapse CSV.
    Columns are matched by name, ignoring case, as Timelapse matches them to a template's data labels."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise TimelapseError(f"cannot read {path} as a CSV file ({exc})") from exc
    if not rows:
        raise TimelapseError(f"{path} is empty; a Timelapse CSV starts with a header row (File, RelativePath, ...)")
    col = {name.strip().lower(): i for i, name in enumerate(rows[0])}
    for need in ("file", species_column.lower()):
        if need not in col:
            raise TimelapseError(f"{path} has no {need if need == 'file' else species_column!r} column (its "
                                 f"columns: {', '.join(rows[0])}); a Timelapse CSV names each photo in 'File' "
                                 f"and its species in '{species_column}'")

    def cell(row: list[str], name: str) -> str:
        i = col.get(name.lower())
        return row[i].strip() if i is not None and i < len(row) else ""

    out: list[TimelapseLabel] = []
    deleted = 0
    for row in rows[1:]:
        if not any(v.strip() for v in row):
            continue
        if cell(row, "DeleteFlag").lower() == "true":
            deleted += 1
            continue
        folder = cell(row, "RelativePath").replace("\\", "/").strip("/")
        file = f"{folder}/{cell(row, 'File')}" if folder else cell(row, "File")
        names = cell(row, species_column).split("|")
        types = cell(row, "ObservationType").split("|")
        methods = cell(row, "ClassificationMethod").split("|")
        for i, name in enumerate(names):
            if name.strip():
                out.append(TimelapseLabel(file, name.strip(), types[i].strip() if i < len(types) else "",
                                          methods[i].strip() if i < len(methods) else ""))
    return out, deleted


# --- people's Timelapse work back into Pardus ---------------------------------------------------


@dataclass
class TimelapseImportReport:
    rows: int = 0
    added: int = 0  # new human observations
    superseded: int = 0  # earlier human observations a row corrected
    unchanged: int = 0
    deleted: int = 0  # rows Timelapse marked deleted (DeleteFlag), not used
    unlabelled: int = 0
    unmatched: list[str] = field(default_factory=list)


_LIFE_STAGES = ("adult", "subadult", "juvenile")
_SEXES = ("female", "male", "unknown")


def _media_index(s: Session) -> tuple[dict[str, str], dict[str, str]]:
    """(sha256 -> media id, '<deployment>/<path>' or a package's path -> media id) of every photo."""
    by_hash: dict[str, str] = {}
    by_path: dict[str, str] = {}
    for mid, sha, dep, path, source in s.execute(
        select(Media.id, Media.sha256, Media.deployment_id, Media.file_path, Media.timestamp_source)
    ):
        if sha:
            by_hash[sha] = mid
        by_path[str(timelapse_path(dep, path, source))] = mid
    return by_hash, by_path


def import_timelapse(
    ws: Workspace,
    path: Path | str,
    *,
    image_root: Path | str | None = None,
    reviewer: str = IMPORTED_BY,
    skip_unmatched: bool = False,
) -> TimelapseImportReport:
    """Read a Timelapse CSV (Pardus's export, edited in Timelapse) back as human observations.

    Each row's photo is found by ``MediaHash``, else by the content of ``image_root``/RelativePath/File,
    else by '<deployment>/<path on the card>'. A row that says what its source observation
    (``ObservationID``) said, or what an active human observation of the photo already says, changes
    nothing, so importing twice adds nothing. Any other labelled row becomes a media-level human
    observation by ``reviewer``; a person's earlier observation (without an individual) that the
    row changed is superseded by it. The whole file is checked first: a bad value, an unknown
    individual or (without ``skip_unmatched``) a photo Pardus does not hold refuses the file with
    the rows named, and nothing is written.
    """
    from pardus.store.blobs import sha256_file

    path = Path(path)
    root = Path(image_root) if image_root is not None else None
    if root is not None and not root.is_dir():
        raise TimelapseError(f"--image-root {root} is not a folder")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise TimelapseError(f"cannot read {path} as a CSV file ({exc})") from None
    if not rows or "file" not in {c.strip().lower() for c in rows[0]}:
        raise TimelapseError(f"{path} has no header with a 'File' column; a Timelapse CSV starts with "
                             "File, RelativePath, DateTime, DeleteFlag, ...")
    col = {name.strip().lower(): i for i, name in enumerate(rows[0])}

    def cell(row: list[str], name: str) -> str:
        i = col.get(name.lower())
        return row[i].strip() if i is not None and i < len(row) else ""

    rep = TimelapseImportReport()
    problems: list[str] = []
    with ws.db.session() as s:
        by_hash, by_path = _media_index(s)
        codes = {c: i for i, c in s.execute(select(Individual.id, Individual.code))}
        planned: list[tuple[str, tuple[Any, ...], str, str]] = []  # (media, label, source obs id, row text)
        for n, row in enumerate(rows[1:], start=2):
            if not any(v.strip() for v in row):
                continue
            rep.rows += 1
            if cell(row, "DeleteFlag").lower() == "true":
                rep.deleted += 1
                continue
            folder = cell(row, "RelativePath").replace("\\", "/").strip("/")
            name = f"{folder}/{cell(row, 'File')}" if folder else cell(row, "File")
            mid = by_hash.get(cell(row, "MediaHash").lower())
            if mid is None and root is not None and (root / name).is_file():
                mid = by_hash.get(sha256_file(root / name))
            if mid is None:
                mid = by_path.get(name)
            if mid is None:
                rep.unmatched.append(name)
                continue
            typ, species = cell(row, "ObservationType").lower(), cell(row, "Species")
            if not typ and not species:
                rep.unlabelled += 1
                continue
            typ = typ or "animal"
            where = f"row {n} ({name})"
            if typ not in OBSERVATION_TYPES:
                problems.append(f"{where}: ObservationType {typ!r} is not one of {', '.join(OBSERVATION_TYPES)}")
            count_text = cell(row, "Count")
            count = None
            if count_text:
                try:
                    count = int(count_text)
                    if count < 0 or count > 100_000:
                        raise ValueError
                except ValueError:
                    problems.append(f"{where}: Count {count_text!r} is not a whole number of animals")
            stage, sex = cell(row, "LifeStage").lower(), cell(row, "Sex").lower()
            if stage and stage not in _LIFE_STAGES:
                problems.append(f"{where}: LifeStage {stage!r} is not one of {', '.join(_LIFE_STAGES)}")
            if sex and sex not in _SEXES:
                problems.append(f"{where}: Sex {sex!r} is not one of {', '.join(_SEXES)}")
            code = cell(row, "Individual")
            if code and code not in codes:
                problems.append(f"{where}: there is no individual {code!r} in the catalogue; create it first "
                                "(`pardus individuals`), or leave Individual empty")
            label = (typ, species or None, count if count and count > 0 else None, stage or None, sex or None,
                     codes.get(code) if code else None)
            planned.append((mid, label, cell(row, "ObservationID"), where))
        if problems:
            raise TimelapseError(f"{path}: {len(problems)} row(s) cannot be read, nothing was imported:\n  "
                                 + "\n  ".join(problems[:20]) + ("\n  ..." if len(problems) > 20 else ""))
        if rep.unmatched and (not skip_unmatched or not planned):
            raise TimelapseError(
                f"{len(rep.unmatched)} row(s) name a photo Pardus does not hold (first: {rep.unmatched[0]}); give "
                "--image-root FOLDER (the image set's root) to find them by content, import their cards first, "
                "or --skip-unmatched to import the others. Nothing was imported."
            )
        _write_labels(s, planned, reviewer, rep)
    return rep


def _label_of(o: Observation) -> tuple[Any, ...]:
    return (o.observation_type, o.scientific_name, o.count if o.count and o.count > 0 else None, o.life_stage,
            o.sex, o.individual_id)


def _write_labels(s: Session, planned: list[tuple[str, tuple[Any, ...], str, str]], reviewer: str,
                  rep: TimelapseImportReport) -> None:
    """Add the rows that say something new; supersede the person's observations they corrected."""
    media_ids = sorted({p[0] for p in planned})
    active: dict[str, list[Observation]] = {}
    for i in range(0, len(media_ids), 500):
        for o in s.scalars(select(Observation).where(Observation.media_id.in_(media_ids[i : i + 500]),
                                                     Observation.superseded_by.is_(None))):
            active.setdefault(o.media_id or "", []).append(o)
    now = utcnow()
    for mid, label, source_id, _where in planned:
        here = active.get(mid, [])
        source = next((o for o in here if o.id == source_id), None)
        if (source is not None and _label_of(source) == label) or any(
            _label_of(o) == label for o in here if (o.classification_method or "").lower() == "human"
        ):
            rep.unchanged += 1
            continue
        media = s.get(Media, mid)
        assert media is not None
        typ, name, count, stage, sex, ind = label
        new = Observation(
            deployment_id=media.deployment_id, media_id=mid, event_id=media.sequence_id, observation_level="media",
            observation_type=typ, scientific_name=name, count=count, life_stage=stage, sex=sex, individual_id=ind,
            classification_method="human", classified_by=reviewer, classification_timestamp=now,
        )  # fmt: skip
        s.add(new)
        s.flush()
        here.append(new)
        rep.added += 1
        if (source is not None and (source.classification_method or "").lower() == "human"
                and source.individual_id is None and source.superseded_by is None):
            source.superseded_by = f"timelapse:{new.id}"
            rep.superseded += 1
