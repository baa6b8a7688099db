"""Reading Wildlife Insights tables (bulk-upload templates or a project download) into the store.

The folder holds ``deployments.csv`` and ``images.csv`` (required), ``projects.csv`` and
``cameras.csv`` (used when present); Wildlife Insights' own template names ("Template Wildlife
Insights Batch Upload - Imagev1.0.csv") are found too. Columns are read by name, so a download's
extra columns (``is_blank``, ``cv_confidence``, ``filename``, ``license`` ...) are welcome.

All four tables are checked whole before anything is written, and the first problem refuses them
with the file, line and column: ids that fit the store (1-64 characters with the prefix, no control
characters), places on the globe, dates Pardus can read with a start before the end, images that
name a deployment of the folder, whole-number counts, confidences from 0 to 1.

Mapping: a deployment becomes a Deployment at a Location named by its ``placename`` (deployments at
one placename share it), its camera a Camera; an image a Media that Pardus does not hold the bytes
of (``location`` is kept as its path); each identification row an observation: blank, human,
vehicle or animal named by genus and species (else the lowest rank given), ``number_of_objects`` as
its count. Who identified decides what it is: Wildlife Insights' computer vision ("Computer vision",
or a ``cv_confidence`` and no person) is a machine observation with that confidence; a named person
is a person's. Times are the cameras' local times; ``utc_offset_minutes`` says their zone.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath

from sqlalchemy.orm import Session

from pardus.ingest.deployments import MAX_ID
from pardus.ingest.probe import MEDIA_TYPES
from pardus.ingest.timefix import to_utc
from pardus.interop.csv_input import csv_lines, read_csv_text
from pardus.interop.wildlife_insights import BLANK_ID, HUMAN_ID, TAXON_KEYS, VEHICLE_ID, WildlifeInsightsError
from pardus.store import Workspace
from pardus.store.models import Camera, Deployment, Location, Media, Observation, Project

SOURCE = "wildlife-insights"
DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d")
REQUIRED = {"deployments": ("deployment_id", "latitude", "longitude", "start_date", "end_date"),
            "images": ("deployment_id", "image_id", "location", "timestamp")}  # fmt: skip
MAX_TEXT = 255
MAX_CAMERA_TEXT = 128  # the store's camera make, model and serial
MACHINE_WORDS = ("computer vision", "cv", "wildlife insights ai", "ai")
_SEX = {"male": "male", "female": "female"}
_AGE = {"adult": "adult", "subadult": "subadult", "juvenile": "juvenile"}
_MODELLED = {"project_id", "deployment_id", "image_id", "location", "identified_by", "wi_taxon_id", "class", "order",
             "family", "genus", "species", "common_name", "timestamp", "number_of_objects", "age", "sex",
             "is_blank", "cv_confidence", "filename", "highlighted"}


@dataclass
class WIImportReport:
    project_id: str
    counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Table:
    name: str
    header: list[str]
    rows: list[tuple[int, dict[str, str]]]  # (line, row)


def _find(folder: Path, table: str) -> Path | None:
    exact = folder / f"{table}.csv"
    if exact.is_file():
        return exact
    stem = table.rstrip("s")
    found = sorted(p for p in folder.glob("*.csv") if stem in p.name.lower())
    return found[0] if len(found) == 1 else None


def _read(path: Path) -> _Table:
    lines = csv_lines(read_csv_text(path, WildlifeInsightsError), path.name, WildlifeInsightsError)
    if not lines:
        raise WildlifeInsightsError(f"{path.name} is empty; it needs a header row")
    header = [h.strip() for h in lines[0]]
    rows = []
    for n, cells in enumerate(lines[1:], start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(header):
            raise WildlifeInsightsError(f"{path.name} line {n}: {len(cells)} cells under {len(header)} column names")
        rows.append((n, {h: (cells[i].strip() if i < len(cells) else "") for i, h in enumerate(header)}))
    return _Table(path.name, header, rows)


def _parse_time(text: str) -> datetime | None:
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def _number(text: str) -> float | None:
    try:
        v = float(text)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


@dataclass
class _Checked:
    projects: _Table | None
    cameras: _Table | None
    deployments: _Table
    images: _Table


def check_tables(folder: Path, prefix: str) -> _Checked:
    """Read and check the folder's tables (see the module docstring); nothing is written here."""
    if not folder.is_dir():
        raise WildlifeInsightsError(f"{folder} is not a folder; give the folder that holds deployments.csv and "
                                    "images.csv")
    found = {t: _find(folder, t) for t in ("projects", "cameras", "deployments", "images")}
    for t in ("deployments", "images"):
        if found[t] is None:
            raise WildlifeInsightsError(f"{folder} has no {t}.csv (Wildlife Insights' {t} table)")
    tables = {t: _read(p) for t, p in found.items() if p is not None}
    for t, cols in REQUIRED.items():
        missing = [c for c in cols if c not in tables[t].header]
        if missing:
            raise WildlifeInsightsError(f"{tables[t].name} has no column {missing[0]!r} (Wildlife Insights' {t} "
                                        f"table needs {', '.join(cols)})")
    for t in tables.values():
        for n, row in t.rows:
            for col, v in row.items():
                if len(v) > (1024 if col == "location" else MAX_TEXT if col != "project_objectives" else 10_000):
                    raise WildlifeInsightsError(f"{t.name} line {n}, column {col}: {len(v)} characters is too long")
    if "cameras" in tables:
        for n, r in tables["cameras"].rows:
            for col in ("make", "model", "serial_number"):
                if len(r.get(col, "")) > MAX_CAMERA_TEXT:
                    raise WildlifeInsightsError(f"{tables['cameras'].name} line {n}, column {col}: more than "
                                                f"{MAX_CAMERA_TEXT} characters")
    deps: set[str] = set()
    for n, r in tables["deployments"].rows:
        where = f"{tables['deployments'].name} line {n}"
        _id(r["deployment_id"], prefix, f"{where}, column deployment_id")
        if r["deployment_id"] in deps:
            raise WildlifeInsightsError(f"{where}: deployment {r['deployment_id']!r} is given twice")
        deps.add(r["deployment_id"])
        lat, lon = _number(r["latitude"]), _number(r["longitude"])
        if lat is None or not -90 <= lat <= 90:
            raise WildlifeInsightsError(f"{where}, column latitude: {r['latitude'][:30]!r} is no latitude (-90 to 90)")
        if lon is None or not -180 <= lon <= 180:
            raise WildlifeInsightsError(f"{where}, column longitude: {r['longitude'][:30]!r} is no longitude "
                                        "(-180 to 180)")
        a, b = _parse_time(r["start_date"]), _parse_time(r["end_date"])
        for col, t in (("start_date", a), ("end_date", b)):
            if t is None:
                raise WildlifeInsightsError(f"{where}, column {col}: {r[col][:30]!r} is no date Pardus reads "
                                            "(write it YYYY-MM-DD HH:MM:SS)")
        if a and b and b < a:
            raise WildlifeInsightsError(f"{where}: the deployment ends ({r['end_date']}) before it starts")
        for col in ("placename", "camera_id"):
            if r.get(col):
                _id(r[col], prefix, f"{where}, column {col}")
    images: dict[str, tuple[str, str, str]] = {}
    for n, r in tables["images"].rows:
        where = f"{tables['images'].name} line {n}"
        _id(r["image_id"], prefix, f"{where}, column image_id")
        if r["deployment_id"] not in deps:
            raise WildlifeInsightsError(f"{where}: deployment {r['deployment_id'][:64]!r} is not in "
                                        f"{tables['deployments'].name}")
        if not r["location"]:
            raise WildlifeInsightsError(f"{where}, column location: the photo's location is empty")
        if _parse_time(r["timestamp"]) is None:
            raise WildlifeInsightsError(f"{where}, column timestamp: {r['timestamp'][:30]!r} is no time Pardus reads")
        seen = images.setdefault(r["image_id"], (r["deployment_id"], r["location"], r["timestamp"]))
        if seen != (r["deployment_id"], r["location"], r["timestamp"]):
            raise WildlifeInsightsError(f"{where}: image {r['image_id'][:64]!r} is given again with another "
                                        "deployment, location or time")
        count = r.get("number_of_objects", "")
        if count and not (count.isascii() and count.isdigit() and int(count) < 100_000):  # '²' is a digit too
            raise WildlifeInsightsError(f"{where}, column number_of_objects: {count[:20]!r} is not a whole number")
        conf = r.get("cv_confidence", "")
        if conf and ((c := _number(conf)) is None or not 0 <= c <= 1):
            raise WildlifeInsightsError(f"{where}, column cv_confidence: {conf[:20]!r} is not a number from 0 to 1")
    return _Checked(tables.get("projects"), tables.get("cameras"), tables["deployments"], tables["images"])


def _id(value: str, prefix: str, where: str) -> str:
    key = prefix + value
    if not value or len(key) > MAX_ID or any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise WildlifeInsightsError(f"{where}: {value[:70]!r} must be 1-{MAX_ID} characters (with the prefix) "
                                    "without control characters")
    return key


def identification(r: dict[str, str]) -> tuple[str, str | None] | None:
    """(observation type, scientific name) of an image row, or None when nobody identified it."""
    tid = r.get("wi_taxon_id", "").lower()
    common = r.get("common_name", "").strip().lower()
    genus, species = r.get("genus", "").strip(), r.get("species", "").strip()
    if r.get("is_blank", "").lower() in ("1", "true", "yes") or tid == BLANK_ID or common == "blank":
        return "blank", None
    if tid == HUMAN_ID or common in ("human", "homo species") or genus.lower() == "homo":
        return "human", "Homo sapiens"
    if tid == VEHICLE_ID or common == "vehicle":
        return "vehicle", None
    if genus and species and species.lower() not in ("species", "sp", "sp."):
        return "animal", f"{genus.capitalize()} {species.lower()}"
    for rank in ("genus", "family", "order", "class"):
        if r.get(rank, "").strip():
            return "animal", r[rank].strip().capitalize()
    if common or tid:
        return "animal", None
    return None


def _is_machine(r: dict[str, str]) -> bool:
    who = r.get("identified_by", "").strip().lower()
    return who in MACHINE_WORDS or (not who and bool(r.get("cv_confidence")))


def import_wildlife_insights(ws: Workspace, folder: Path | str, *, utc_offset_minutes: int = 0,
                             prefix: str = "") -> WIImportReport:
    """Import a folder of Wildlife Insights tables (see the module docstring); checked whole first.

    Importing the same folder again updates the rows it made.
    """
    folder = Path(folder)
    t = check_tables(folder, prefix)
    proj = t.projects.rows[0][1] if t.projects and t.projects.rows else {}
    pid = _id(proj.get("project_id") or f"wi-{folder.name}"[:MAX_ID - len(prefix)], prefix, "project_id")
    rep = WIImportReport(project_id=pid)
    with ws.db.session() as s:
        project = s.get(Project, pid) or Project(id=pid, title="")
        s.add(project)
        project.title = (proj.get("project_name") or pid)[:500]
        project.description = proj.get("project_objectives") or project.description
        project.extra = {**(project.extra or {}), "wildlife_insights": {k: v for k, v in proj.items() if v}}
        cameras = {r["camera_id"]: r for _, r in (t.cameras.rows if t.cameras else []) if r.get("camera_id")}
        _write_deployments(s, t.deployments, cameras, pid, utc_offset_minutes, prefix, rep)
        _write_images(s, t.images, utc_offset_minutes, prefix, rep)
    return rep


def _write_deployments(s: Session, table: _Table, cameras: dict[str, dict[str, str]], pid: str, offset: int,
                       prefix: str, rep: WIImportReport) -> None:
    for _, r in table.rows:
        loc_id = prefix + (r.get("placename") or r["deployment_id"])
        loc = s.get(Location, loc_id) or Location(id=loc_id, sensitive=False)
        s.add(loc)
        loc.name = r.get("placename") or None
        loc.latitude, loc.longitude = float(r["latitude"]), float(r["longitude"])
        cam_id = None
        if r.get("camera_id"):
            cam_id = prefix + r["camera_id"]
            cam = s.get(Camera, cam_id) or Camera(id=cam_id)
            s.add(cam)
            c = cameras.get(r["camera_id"], {})
            cam.make, cam.model = c.get("make") or cam.make, c.get("model") or cam.model
            cam.serial = c.get("serial_number") or cam.serial
        s.flush()
        dep_id = prefix + r["deployment_id"]
        dep = s.get(Deployment, dep_id) or Deployment(id=dep_id)
        s.add(dep)
        dep.project_id, dep.location_id, dep.camera_id, dep.utc_offset_minutes = pid, loc_id, cam_id, offset
        start, end = _parse_time(r["start_date"]), _parse_time(r["end_date"])
        dep.start = to_utc(start, offset, 0.0) if start else None
        dep.end = to_utc(end, offset, 0.0) if end else None
        dep.feature_type = r["feature_type"][:64] if r.get("feature_type") else None
        dep.setup_by = r.get("recorded_by") or None
        dep.bait_use = False if r.get("bait_type", "").lower() == "none" else dep.bait_use
        dep.extra = {**(dep.extra or {}), "wildlife_insights": {
            k: v for k, v in r.items() if v and k not in ("deployment_id", "latitude", "longitude", "start_date",
                                                          "end_date", "placename", "camera_id", "project_id")}}
        rep.counts["deployments"] = rep.counts.get("deployments", 0) + 1
    s.flush()


def _write_images(s: Session, table: _Table, offset: int, prefix: str, rep: WIImportReport) -> None:
    n_obs = 0
    done: set[str] = set()
    for i, (_, r) in enumerate(table.rows):
        mid = prefix + r["image_id"]
        if mid not in done:
            m = s.get(Media, mid) or Media(id=mid)
            s.add(m)
            location = r["location"].replace("\\", "/")
            m.deployment_id = prefix + r["deployment_id"]
            m.file_path = location
            m.file_name = (r.get("filename") or PurePosixPath(location.split("?")[0]).name or r["image_id"])[:255]
            m.file_mediatype = MEDIA_TYPES.get(PurePosixPath(m.file_name).suffix.lower(), "image/jpeg")
            m.available = False
            m.camera_time = _parse_time(r["timestamp"])
            m.timestamp = to_utc(m.camera_time, offset, 0.0) if m.camera_time else None
            m.timestamp_source = SOURCE
            m.favorite = r.get("highlighted", "").lower() in ("1", "true", "yes")
            done.add(mid)
            rep.counts["images"] = rep.counts.get("images", 0) + 1
        call = identification(r)
        oid = "wi-" + hashlib.sha1(f"{mid}\x1f{i}".encode()).hexdigest()[:24]
        o = s.get(Observation, oid)
        if call is None:
            if o is not None:
                s.delete(o)
            continue
        if o is None:
            o = Observation(id=oid)
            s.add(o)
        kind, name = call
        machine = _is_machine(r)
        count = int(r["number_of_objects"]) if r.get("number_of_objects") else None
        o.deployment_id, o.media_id, o.observation_level = prefix + r["deployment_id"], mid, "media"
        o.observation_type, o.scientific_name = kind, name
        o.count = count if kind != "blank" and count else None
        o.sex = _SEX.get(r.get("sex", "").lower())
        o.life_stage = _AGE.get(r.get("age", "").lower())
        o.classification_method = "machine" if machine else "human"
        o.classified_by = (r.get("identified_by") or ("Wildlife Insights AI" if machine else None))
        o.classification_probability = float(r["cv_confidence"]) if machine and r.get("cv_confidence") else None
        # The row's own taxonomy (its wi_taxon_id, common name, ranks) is kept, so it leaves as it came.
        o.extra = {"wildlife_insights": {k: v for k, v in r.items() if v and k not in _MODELLED}
                   | {"taxon": {k: r[k] for k in TAXON_KEYS if r.get(k)}}}
        n_obs += 1
        if i % 1000 == 999:
            s.flush()
    rep.counts["observations"] = n_obs
