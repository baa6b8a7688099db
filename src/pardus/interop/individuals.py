"""The individuals catalogue on its own: who each animal is, and the photos that show it, flank by flank.

Camtrap DP carries individuals only as a column of observations; a partner park comparing ID
sheets, a researcher matching animals across a border, or a ranger printing the catalogue wants the
catalogue itself: one record per animal (code, name, species, sex, first and last sighting, former
codes merged into it) and every photo a person confirmed, grouped by the flank it shows (left,
right, unknown), with where and when it was taken and the box around the animal.

Leopards are poached where they are known to be: a sensitive place leaves with its coordinates
rounded to ``coordinate_precision`` (0.1 degree by default, as in Camtrap DP), and any exact
coordinate of one written in free text (notes) is blurred the same way (:class:`Redactor`).
Photos whose time cannot be trusted (a reset clock) carry no time, only the reason. Only people's
decisions are the catalogue: the machine's proposals are not exported.

Two forms: a ``.json`` file (individuals with their photos nested per flank), or a folder with
``individuals.csv`` (one row per animal, photo counts per flank) and ``individual_photos.csv`` (one
row per photo, keyed by ``individualCode``), for a spreadsheet or ``read.csv``.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from pardus.ingest.timefix import time_is_trusted
from pardus.interop.camtrap_dp import (
    DEFAULT_SENSITIVE_PRECISION,
    Redactor,
    camtrap_sex,
    fmt_dt,
    round_to,
)
from pardus.store import Workspace
from pardus.store.models import Deployment, Individual, Location, Media, Observation

FLANKS = ("left", "right", "unknown")
INDIVIDUAL_COLUMNS = (
    "individualCode", "name", "scientificName", "sex", "firstSeen", "lastSeen", "photos", "photosLeft",
    "photosRight", "photosFlankUnknown", "locations", "formerCodes", "notes",
)  # fmt: skip
PHOTO_COLUMNS = (
    "individualCode", "flank", "observationID", "mediaID", "file", "sha256", "timestamp", "timeIssue",
    "deploymentID", "locationID", "latitude", "longitude", "coordinatesRounded", "bboxX", "bboxY", "bboxWidth",
    "bboxHeight", "confirmedBy", "confirmedAt",
)  # fmt: skip


class IndividualsExportError(ValueError):
    """The catalogue cannot be written as asked; the message says what to change."""


@dataclass
class IndividualsReport:
    individuals: int = 0
    photos: int = 0
    obscured_locations: list[str] = field(default_factory=list)
    redacted_values: int = 0
    files: list[Path] = field(default_factory=list)


@dataclass
class _Photo:
    flank: str
    row: dict[str, Any]


def _utc(t: datetime | None) -> str | None:
    if t is None:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def collect(
    ws: Workspace, *, species: str | None = None, codes: list[str] | None = None,
    coordinate_precision: float = DEFAULT_SENSITIVE_PRECISION,
) -> tuple[list[dict[str, Any]], IndividualsReport]:
    """The catalogue as plain records, sensitive places already rounded (see the module docstring)."""
    if not coordinate_precision > 0:
        raise IndividualsExportError("the coordinate precision must be a positive number of degrees, e.g. 0.1")
    rep = IndividualsReport()
    with ws.db.session() as s:
        all_inds = list(s.scalars(select(Individual).order_by(Individual.code)))
        by_id = {i.id: i for i in all_inds}

        def survivor(i: Individual) -> Individual:
            seen = {i.id}
            while i.merged_into and i.merged_into in by_id and i.merged_into not in seen:
                i = by_id[i.merged_into]
                seen.add(i.id)
            return i

        former: dict[str, list[str]] = defaultdict(list)
        for i in all_inds:
            if i.merged_into:
                former[survivor(i).id].append(i.code)
        inds = [i for i in all_inds if not i.merged_into]
        if species:
            inds = [i for i in inds if (i.scientific_name or "").lower().startswith(species.strip().lower())]
        if codes:
            wanted = {c.strip() for c in codes}
            missing = wanted - {i.code for i in inds}
            if missing:
                raise IndividualsExportError(f"no individual {sorted(missing)[0]!r} in the catalogue "
                                             "(`pardus individuals list` shows the codes)")
            inds = [i for i in inds if i.code in wanted]
        places = {r.id: r for r in s.execute(
            select(Deployment.id, Deployment.location_id, Deployment.utc_offset_minutes, Location.latitude,
                   Location.longitude, Location.sensitive)
            .outerjoin(Location, Location.id == Deployment.location_id))}  # fmt: skip
        sensitive = [p for p in places.values() if p.sensitive and p.latitude is not None]
        redactor = Redactor([c for p in sensitive for c in (p.latitude, p.longitude)], coordinate_precision)
        photos: dict[str, list[_Photo]] = defaultdict(list)
        q = (
            select(Observation, Media.file_path, Media.sha256, Media.timestamp, Media.timestamp_issues)
            .join(Media, Media.id == Observation.media_id)
            .where(Observation.classification_method == "human", Observation.individual_id.in_([i.id for i in inds]),
                   Observation.superseded_by.is_(None))
            .order_by(Media.timestamp, Observation.id)
        )  # fmt: skip
        obscured: set[str] = set()
        for o, path, sha, ts, issues in s.execute(q):
            place = places.get(o.deployment_id)
            lat, lon, rounded = (place.latitude, place.longitude, False) if place else (None, None, False)
            if place is not None and place.sensitive and lat is not None and lon is not None:
                lat, lon, rounded = round_to(lat, coordinate_precision), round_to(lon, coordinate_precision), True
                obscured.add(place.location_id or o.deployment_id)
            trusted = ts is not None and time_is_trusted(issues)
            offset = (place.utc_offset_minutes if place else None) or 0
            flank = ((o.extra or {}).get("reid") or {}).get("flank") or "unknown"
            photos[o.individual_id or ""].append(_Photo(flank if flank in FLANKS else "unknown", {
                "observationID": o.id, "mediaID": o.media_id, "file": f"{o.deployment_id}/{path}", "sha256": sha,
                "timestamp": fmt_dt(ts, offset) if trusted else None,
                "timeIssue": None if trusted else (issues or "no time"),
                "deploymentID": o.deployment_id, "locationID": place.location_id if place else None,
                "latitude": lat, "longitude": lon, "coordinatesRounded": rounded,
                "bbox": [o.bbox_x, o.bbox_y, o.bbox_width, o.bbox_height] if o.bbox_x is not None else None,
                "confirmedBy": o.classified_by, "confirmedAt": _utc(o.classification_timestamp),
            }))  # fmt: skip
        records = []
        for i in inds:
            mine = photos.get(i.id, [])
            per_flank = {f: [p.row for p in mine if p.flank == f] for f in FLANKS}
            records.append({
                "individualCode": i.code, "name": i.name, "scientificName": i.scientific_name,
                "sex": camtrap_sex(i.sex) or None, "firstSeen": _utc(i.first_seen), "lastSeen": _utc(i.last_seen),
                "formerCodes": sorted(former.get(i.id, [])),
                "notes": redactor.text(i.notes) if i.notes else None,
                "photoCount": len(mine), "photos": per_flank,
                "locations": sorted({p.row["locationID"] or p.row["deploymentID"] for p in mine}),
            })  # fmt: skip
    rep.individuals, rep.photos = len(records), sum(r["photoCount"] for r in records)
    rep.obscured_locations, rep.redacted_values = sorted(obscured), redactor.count
    return records, rep


def export_individuals(ws: Workspace, out: Path | str, *, species: str | None = None, codes: list[str] | None = None,
                       coordinate_precision: float = DEFAULT_SENSITIVE_PRECISION) -> IndividualsReport:
    """Write the catalogue to ``out``: a ``.json`` file, or a folder of two CSV tables (see the module docstring).

    Nothing is written when the catalogue cannot be read as asked (an unknown code, a bad precision).
    """
    out = Path(out)
    records, rep = collect(ws, species=species, codes=codes, coordinate_precision=coordinate_precision)
    meta = {"generatedBy": "Pardus", "generated": _utc(datetime.now(UTC)),
            "coordinatePrecision": coordinate_precision if rep.obscured_locations else None,
            "flanks": list(FLANKS)}  # fmt: skip
    if out.suffix.lower() == ".json":
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({**meta, "individuals": records}, indent=1, ensure_ascii=False), encoding="utf-8")
        rep.files = [out]
        return rep
    if out.exists() and not out.is_dir():
        raise IndividualsExportError(f"{out} is a file; give a folder for the CSV tables, or a name ending in .json")
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "individuals.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(INDIVIDUAL_COLUMNS)
        for r in records:
            n = {fl: len(r["photos"][fl]) for fl in FLANKS}
            w.writerow([r["individualCode"], r["name"] or "", r["scientificName"] or "", r["sex"] or "",
                        r["firstSeen"] or "", r["lastSeen"] or "", r["photoCount"], n["left"], n["right"],
                        n["unknown"], " | ".join(r["locations"]), " | ".join(r["formerCodes"]), r["notes"] or ""])
    with open(out / "individual_photos.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(PHOTO_COLUMNS)
        for r in records:
            for fl in FLANKS:
                for p in r["photos"][fl]:
                    box = p["bbox"] or [None] * 4
                    w.writerow([_cell(v) for v in (
                        r["individualCode"], fl, p["observationID"], p["mediaID"], p["file"], p["sha256"],
                        p["timestamp"], p["timeIssue"], p["deploymentID"], p["locationID"], p["latitude"],
                        p["longitude"], p["coordinatesRounded"], *box, p["confirmedBy"], p["confirmedAt"])])
    rep.files = [out / "individuals.csv", out / "individual_photos.csv"]
    return rep


def _cell(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
