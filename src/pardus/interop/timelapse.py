"""The review table as a Timelapse CSV: one row per photo, the way Timelapse shows and imports data.

Timelapse (https://timelapse.ucalgary.ca/) keys each row by ``File`` and ``RelativePath`` (the
folder below the image-set root, written with backslashes as Timelapse does on Windows) and has
the standard fields ``DateTime`` and ``DeleteFlag``; every other column is matched by name to a
data field of the user's template (Species, Count, ... ). Pardus writes its review facts under
such names, so a template with the same data labels imports them, and reviewers can work in
Timelapse on photos Pardus has already sorted. Rows are streamed from the database.

:func:`read_timelapse` reads such a CSV back (Timelapse's own, or this export) for teaching a
species head from the labels people typed in Timelapse.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path, PurePosixPath

from sqlalchemy import func, select

from pardus.store import Workspace
from pardus.store.models import Deployment, Detection, Individual, Media, Observation

COLUMNS = [
    "File", "RelativePath", "DateTime", "DeleteFlag", "Deployment", "Location", "ObservationType", "Species",
    "Count", "LifeStage", "Sex", "Behavior", "Individual", "ClassificationMethod", "ClassifiedBy", "Confidence",
    "MaxDetectionConf", "Person", "Favorite", "Comments",
]  # fmt: skip


def export_timelapse(
    ws: Workspace,
    out: Path | str,
    *,
    deployment_ids: Iterable[str] | None = None,
    separator: str = "\\",
) -> int:
    """Write the review table (media with their observations and best detection) for Timelapse.

    Several observations on one photo are joined with '|' in each column, in the same order, so a
    photo with a leopard and a roe deer reads 'Panthera pardus|Capreolus pygargus' / '1|2'.
    Returns the number of rows written.
    """
    out = Path(out)
    n = 0
    # Photos and observations are merged by id, so both must sort ids the way Python compares them.
    collation = "C" if ws.db.engine.dialect.name == "postgresql" else "BINARY"
    with ws.db.session() as s:
        best = (
            select(Detection.media_id, func.max(Detection.score).label("max_conf"))
            .group_by(Detection.media_id)
            .subquery()
        )
        person = (
            select(Detection.media_id)
            .where(Detection.category == "person", Detection.score >= 0.2)
            .group_by(Detection.media_id)
            .subquery()
        )
        q = (
            select(
                Media.id, Media.file_path, Media.camera_time, Media.timestamp, Media.deployment_id,
                Deployment.location_id, Deployment.utc_offset_minutes, Media.favorite, Media.comments,
                best.c.max_conf, person.c.media_id.label("person"),
            )  # fmt: skip
            .join(Deployment, Deployment.id == Media.deployment_id)
            .outerjoin(best, best.c.media_id == Media.id)
            .outerjoin(person, person.c.media_id == Media.id)
            .order_by(Media.id.collate(collation))
        )
        if deployment_ids is not None:
            q = q.where(Media.deployment_id.in_(list(deployment_ids)))
        obs_q = (
            select(
                Observation.media_id, Observation.observation_type, Observation.scientific_name, Observation.count,
                Observation.life_stage, Observation.sex, Observation.behavior, Observation.individual_id,
                Observation.classification_method, Observation.classified_by, Observation.classification_probability,
            )  # fmt: skip
            .where(Observation.media_id.is_not(None))
            .order_by(Observation.media_id.collate(collation), Observation.id)
        )
        if deployment_ids is not None:
            obs_q = obs_q.where(Observation.deployment_id.in_(list(deployment_ids)))
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
                path = PurePosixPath(r.file_path.replace("\\", "/"))
                rel = str(path.parent) if str(path.parent) != "." else ""
                local = r.camera_time
                if local is None and r.timestamp is not None:
                    local = (r.timestamp + timedelta(minutes=r.utc_offset_minutes)).replace(tzinfo=None)
                obs: list[tuple] = []
                while pending is not None and pending[0] < r.id:
                    pending = next(obs_iter, None)
                while pending is not None and pending[0] == r.id:
                    o = list(pending[1:])
                    o[6] = codes.get(o[6], o[6])
                    obs.append(tuple(o))
                    pending = next(obs_iter, None)

                def col(i: int, obs: list[tuple] = obs) -> str:
                    vals = ["" if o[i] is None else str(o[i]) for o in obs]
                    return "|".join(vals) if any(vals) else ""

                w.writerow(
                    [
                        path.name,
                        rel.replace("/", separator),
                        local.strftime("%Y-%m-%d %H:%M:%S") if local else "",
                        "false",
                        r.deployment_id,
                        r.location_id or "",
                        col(0), col(1), col(2), col(3), col(4), col(5), col(6), col(7), col(8), col(9),
                        f"{r.max_conf:.4f}" if r.max_conf is not None else "",
                        "true" if r.person else "false",
                        "true" if r.favorite else "false",
                        r.comments or "",
                    ]
                )
                n += 1
        obs_conn.close()
    return n


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
