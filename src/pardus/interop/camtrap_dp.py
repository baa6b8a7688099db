"""Camtrap DP 1.0 in and out: the package GBIF takes, read into the store and written from it.

Three promises shape this module:

- **Lossless round trip.** Every column a package carries comes back as the same text. Columns the
  store models are kept typed (instants in UTC, numbers as floats) and columns it does not model
  go to ``extra``; where a package wrote a value differently from how Pardus would ('1.30',
  '...Z' for a +02:00 deployment, an empty favorite), the original text is kept in ``text_hints``
  beside the text Pardus would write, and reused only while the value still renders the same.
  Metadata Pardus does not model (contributors, licenses, taxonomic names, extra resources) is
  kept whole with the project.
- **Streaming export.** Rows go from a server-side cursor straight to the CSV writer, so a store
  with millions of observations exports in bounded memory; datapackage.json, which summarises the
  data (spatial and temporal scope, taxa), is written last from what was streamed.
- **Sensitive places stay hidden.** A location marked sensitive leaves with its coordinates
  rounded to ``coordinate_precision`` unless the caller may and does ask for exact ones; its exact
  numbers are also searched for and blurred in every other text of the package (paths, comments,
  tags, EXIF), and the precision used is written to ``coordinatePrecision``.
"""

from __future__ import annotations

import bisect
import copy
import csv
import itertools
import json
import math
import re
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from sqlalchemy import String, Text, and_, cast, exists, func, or_, select, type_coerce
from sqlalchemy.orm import Session

from pardus.ingest.exif import without_gps
from pardus.ingest.timefix import untrusted_time_clause
from pardus.interop.camtrap_dp_schema import (
    DEPLOYMENTS,
    INDIVIDUALS,
    MEDIA,
    MISSING_VALUES,
    OBSERVATIONS,
    PROFILE_URL,
    SAMPLING_DESIGNS,
    SCHEMAS,
    SUPPORTED_VERSIONS,
    TABLES,
    ValidationReport,
    format_bool,
    format_number,
    individuals_resource,
    parse_value,
    read_csv_rows,
    schema_url,
    validate_package,
    validate_table_file,
)
from pardus.interop.events import human_events
from pardus.store import Workspace
from pardus.store.models import (
    Camera,
    Deployment,
    Detection,
    Individual,
    Location,
    Media,
    Observation,
    Project,
    new_id,
)

DEFAULT_SENSITIVE_PRECISION = 0.1
PERSON_SCORE = 0.2  # MegaDetector v5's typical threshold: privacy errs on the side of hiding
BATCH = 2000
METERS_PER_DEGREE = 111_320.0
IMPORT_SOURCE = "camtrap-dp"
ROLES_WITH_EXACT_COORDINATES = frozenset({"reviewer", "admin"})  # pardus.people.accounts roles


class CamtrapDPError(ValueError):
    """A package that cannot be read or written as asked; the message says what to change."""

    def __init__(self, message: str, report: ValidationReport | None = None) -> None:
        super().__init__(message)
        self.report = report


# --- rendering values as Camtrap DP text --------------------------------------------------------


def _offset_text(minutes: int) -> str:
    sign = "+" if minutes >= 0 else "-"
    hh, mm = divmod(abs(minutes), 60)
    return f"{sign}{hh:02d}:{mm:02d}"


class _DatetimeFormatter:
    """Instants as local text at a fixed offset; caches tz objects since exports format millions."""

    def __init__(self) -> None:
        self._tz: dict[int, tuple[timezone, str]] = {}
        self._text_cache: dict[tuple[str, int], str] = {}
        self._last: tuple[datetime | None, int, str] = (None, 0, "")

    def __call__(self, v: datetime | str | None, offset_minutes: int) -> str:
        if v is None:
            return ""
        if isinstance(v, str):  # naive UTC text, as SQLite keeps it (read raw: parsing it in C is 10x faster)
            key = (v, offset_minutes)
            hit = self._text_cache.get(key)
            if hit is not None:
                return hit
            if len(self._text_cache) > 4096:  # rows come in time order: recent instants repeat, old ones do not
                self._text_cache.clear()
            out = self(datetime.fromisoformat(v).replace(tzinfo=UTC), offset_minutes)
            self._text_cache[key] = out
            return out
        if v is self._last[0] and offset_minutes == self._last[1]:
            return self._last[2]  # an observation's start and end, a photo's time twice: one instant
        tz = self._tz.get(offset_minutes)
        if tz is None:
            tz = self._tz[offset_minutes] = (timezone(timedelta(minutes=offset_minutes)), _offset_text(offset_minutes))
        local = v.astimezone(tz[0])
        out = (
            f"{local.year:04d}-{local.month:02d}-{local.day:02d}T"
            f"{local.hour:02d}:{local.minute:02d}:{local.second:02d}{tz[1]}"
        )
        self._last = (v, offset_minutes, out)
        return out


fmt_dt = _DatetimeFormatter()


def _raw(col: Any, dialect: str) -> Any:
    """A column read without SQLAlchemy's per-value processing where the driver's text is cheaper to use.

    On SQLite, JSON and date-times come back as text that SQLAlchemy parses in Python; for an export
    of millions of rows that parsing dominates, so the text is taken as is and parsed only when used.
    """
    if dialect == "sqlite":
        return type_coerce(col, String).label(col.key)
    return col


def _raw_json(col: Any, dialect: str) -> Any:
    """A JSON column as its text (parsed by ``_json`` only when it holds something): most rows carry
    an empty ``{}``, and decoding every one was a quarter of a PostgreSQL export's time."""
    if dialect == "sqlite":
        return type_coerce(col, String).label(col.key)
    return cast(col, Text).label(col.key)


def _json(v: Any) -> dict[str, Any]:
    if v is None or v == "{}" or v == "null":
        return {}
    if isinstance(v, str):
        return json.loads(v)
    return v


def _instant(v: datetime | str | None) -> datetime | None:
    if isinstance(v, str):
        return datetime.fromisoformat(v).replace(tzinfo=UTC)
    return v


def _s(v: Any) -> str:
    return "" if v is None else str(v)


def _i(v: int | None) -> str:
    return "" if v is None else str(int(v))


def _decimals(precision: float) -> int:
    """Decimal places needed to write a precision: 0.1 -> 1, 0.25 -> 2, 1 -> 0."""
    text = format_number(precision)
    return len(text.split(".", 1)[1]) if "." in text and "e" not in text else max(0, -math.floor(math.log10(precision)))


# What the pipeline keeps in ``extra`` for itself: which stage wrote a row, detection ids, re-id
# candidates and scores, vote tallies, the machine's call under a person's decision. It is working
# data, not a description of the animal, and it is not published. Structured values (dicts, lists)
# are internal by construction, so a stage that adds one later stays private without a change here.
PRIVATE_EXTRA = frozenset({
    "stage", "detection_id", "best", "label", "reid", "boxes_from", "votes", "machine", "frames",
    "blank_frames", "frames_with_this", "site_animal_threshold", "proposal_id", "new_in_encounter",
})  # fmt: skip


def _tags(standard: str | None, extra: Mapping[str, Any], standard_names: frozenset[str]) -> str:
    """The tags column plus the public non-standard ``extra`` items as 'key:value' (see PRIVATE_EXTRA)."""
    parts = [standard] if standard else []
    for k, v in extra.items():
        if k in PRIVATE_EXTRA or isinstance(v, dict | list):
            continue
        if k not in standard_names and v not in (None, ""):
            parts.append(f"{k}:{v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)}")
    return " | ".join(parts)


_DEP_NAMES = frozenset(DEPLOYMENTS.names)
_MEDIA_NAMES = frozenset(MEDIA.names)
_OBS_NAMES = frozenset(OBSERVATIONS.names)


def camera_model_text(make: str | None, model: str | None) -> str:
    """Camtrap DP writes the camera as 'Manufacturer-Model' (e.g. Reconyx-PC800)."""
    if make and model:
        return f"{make}-{model}"
    return model or make or ""


def split_camera_model(text: str) -> tuple[str | None, str | None]:
    make, sep, model = text.partition("-")
    if sep and make and model:
        return make, model
    return None, text or None


def render_deployment(r: Mapping[str, Any]) -> list[str]:
    extra = _json(r["extra"])
    camera_model = extra.get("cameraModel") or camera_model_text(r["camera_make"], r["camera_model"])
    return [
        r["id"],
        _s(r["location_id"]),
        _s(r["location_name"]),
        format_number(r["latitude"]),
        format_number(r["longitude"]),
        _i(r["coordinate_uncertainty"]),
        fmt_dt(r["start"], r["utc_offset_minutes"]),
        fmt_dt(r["end"], r["utc_offset_minutes"]),
        _s(r["setup_by"]),
        _s(r["camera_id"]),
        camera_model,
        _s(extra.get("cameraDelay")),
        format_number(r["camera_height"]),
        _s(extra.get("cameraDepth")),
        _i(r["camera_tilt"]),
        _i(r["camera_heading"]),
        _s(extra.get("detectionDistance")),
        format_bool(r["timestamp_issues"]),
        format_bool(r["bait_use"]),
        _s(r["feature_type"]),
        _s(r["habitat"]),
        _s(extra.get("deploymentGroups")),
        _tags(extra.get("deploymentTags"), extra, _DEP_NAMES | {"cameraModel"}),
        _s(r["comments"]),
    ]


def _exif_text(r: Mapping[str, Any]) -> str:
    extra = _json(r["extra"])
    if "exifData" in extra:
        return _s(extra["exifData"])
    exif = {
        k: v
        for k, v in (("Make", r["exif_make"]), ("Model", r["exif_model"]), ("DateTimeOriginal", r["exif_datetime_raw"]))
        if v
    }
    return json.dumps(exif, ensure_ascii=False) if exif else ""


def media_file_path(r: Mapping[str, Any]) -> str:
    """Where a media file sits in (or outside) the package.

    Paths and URLs that came from a package stay as they were; photos Pardus imported from a card
    go under media/<deployment>/, because two cards easily hold the same DCIM/100RECNX/IMG_0001.JPG.
    """
    path = r["file_path"]
    if r["timestamp_source"] == IMPORT_SOURCE or "://" in path:
        return path
    return f"media/{r['deployment_id']}/{path.lstrip('/')}"


def render_media(r: Mapping[str, Any], offset: int, has_person: bool) -> list[str]:
    public = bool(r["file_public"]) and not has_person
    return [
        r["id"],
        r["deployment_id"],
        _s(r["capture_method"]),
        fmt_dt(r["timestamp"], offset),
        media_file_path(r),
        format_bool(public),
        _s(r["file_name"]),
        r["file_mediatype"],
        _exif_text(r),
        format_bool(r["favorite"]),
        _s(r["comments"]),
    ]


def camtrap_sex(v: str | None) -> str:
    """Camtrap DP knows only female and male; 'unknown' (the catalogue's word) and blanks are left empty.

    The virtual park's truth and some field sheets write M/F: read them as male/female.
    """
    if not v:
        return ""
    return {"f": "female", "female": "female", "m": "male", "male": "male"}.get(v.strip().lower(), "")


def camtrap_count(v: int | None) -> str:
    """Camtrap DP's count is at least 1: a blank's 'no animal' is no count, not 0."""
    return "" if v is None or int(v) < 1 else str(int(v))


def render_observation(r: Mapping[str, Any], offset: int, individual_code: Callable[[str | None], str]) -> list[str]:
    extra = _json(r["extra"])
    start = r["event_start"]
    if start is None and r["observation_level"] == "media":
        start = r["media_timestamp"]
    end = r["event_end"] or start
    return [
        r["id"],
        r["deployment_id"],
        _s(r["media_id"]),
        _s(r["event_id"]),
        fmt_dt(start, offset),
        fmt_dt(end, offset),
        r["observation_level"],
        r["observation_type"],
        _s(r["camera_setup_type"]),
        _s(r["scientific_name"]),
        camtrap_count(r["count"]),
        _s(r["life_stage"]),
        camtrap_sex(r["sex"]),
        _s(r["behavior"]),
        individual_code(r["individual_id"]),
        _s(extra.get("individualPositionRadius")),
        _s(extra.get("individualPositionAngle")),
        _s(extra.get("individualSpeed")),
        format_number(r["bbox_x"]),
        format_number(r["bbox_y"]),
        format_number(r["bbox_width"]),
        format_number(r["bbox_height"]),
        _s(r["classification_method"]),
        _s(r["classified_by"]),
        fmt_dt(r["classification_timestamp"], offset),
        format_number(r["classification_probability"]),
        _tags(extra.get("observationTags"), extra, _OBS_NAMES),
        _s(r["comments"]),
    ]


def render_individual(r: Mapping[str, Any], code_of: Callable[[str | None], str]) -> list[str]:
    extra = r["extra"] or {}
    return [
        r["code"],
        _s(r["name"]),
        _s(r["scientific_name"]),
        camtrap_sex(r["sex"]),
        fmt_dt(r["first_seen"], int(extra.get("utcOffsetMinutes", 0))),
        fmt_dt(r["last_seen"], int(extra.get("utcOffsetMinutes", 0))),
        code_of(r["merged_into"]),
        _s(r["notes"]),
    ]


def apply_hints(cells: list[str], names: list[str], hints: Mapping[str, Any] | str | None) -> list[str]:
    """Put back a package's own text wherever the stored value still renders as it did on import."""
    hints = _json(hints)
    if hints:
        for i, name in enumerate(names):
            h = hints.get(name)
            if h is not None and h[0] == cells[i]:
                cells[i] = h[1]
    return cells


def make_hints(canonical: list[str], original: Mapping[str, str], names: list[str]) -> dict[str, list[str]]:
    return {
        n: [canonical[i], original.get(n, "")]
        for i, n in enumerate(names)
        if canonical[i] != original.get(n, "")
    }


# --- reading a package ------------------------------------------------------------------------


_VERSION_RE = re.compile(r"camtrap-dp/(\d+\.\d+(?:\.\d+)?)/")


def package_version(desc: Mapping[str, Any]) -> str | None:
    """The Camtrap DP version a package declares (profile URL first, then its table schemas)."""
    candidates = [desc.get("profile")] + [r.get("schema") for r in desc.get("resources", []) if isinstance(r, dict)]
    for c in candidates:
        if isinstance(c, str) and (m := _VERSION_RE.search(c)):
            return m.group(1)
    return None


def read_descriptor(path: Path | str) -> tuple[Path, dict[str, Any]]:
    path = Path(path)
    dp = path / "datapackage.json" if path.is_dir() else path
    if not dp.is_file():
        raise CamtrapDPError(f"no datapackage.json at {path}: give the package folder or its datapackage.json")
    try:
        desc = json.loads(dp.read_text(encoding="utf-8-sig"))
    except ValueError as exc:
        raise CamtrapDPError(f"{dp} is not valid JSON ({exc}); is this a Camtrap DP package?") from exc
    if not isinstance(desc, dict) or not isinstance(desc.get("resources"), list):
        raise CamtrapDPError(f"{dp} has no list of resources; is this a Camtrap DP package?")
    return dp.parent, desc


def package_file(directory: Path, path: str) -> Path | None:
    """The file ``path`` names inside the package folder, or None when it would lead out of it.

    The Data Package standard allows only relative POSIX paths without '..'; a package from a
    stranger naming ``../../../../etc/passwd`` (or an absolute path, or a link in the folder that
    points out of it) must not make Pardus read a file of this machine, echo it in an error, or
    copy it into the store. Checked by name first, then where the path really resolves.
    """
    posix = PurePosixPath(path.replace("\\", "/"))
    if not path or "\x00" in path or posix.is_absolute() or re.match(r"^[A-Za-z]:", path) or ".." in posix.parts:
        return None
    full = directory / posix
    try:
        inside = full.resolve().is_relative_to(directory.resolve())
    except (OSError, RuntimeError, ValueError):  # a link loop, a name the system refuses
        return None
    return full if inside else None


def _outside(what: str, path: str, directory: Path) -> CamtrapDPError:
    return CamtrapDPError(
        f"{what} is at {path[:200]!r}, which leads out of the package folder {directory}; "
        "a package names its files by relative paths inside its own folder, so nothing was read"
    )


def _check_resource_paths(directory: Path, desc: Mapping[str, Any]) -> None:
    """Every local file the package's resources name stays inside it, checked before any is read."""
    for r in desc["resources"]:
        paths = r.get("path") if isinstance(r, dict) else None
        for p in paths if isinstance(paths, list) else [paths]:
            if isinstance(p, str) and "://" not in p and package_file(directory, p) is None:
                raise _outside(f"the resource {str(r.get('name'))[:60]!r}", p, directory)


def _resource_path(directory: Path, desc: Mapping[str, Any], name: str) -> Path:
    for r in desc["resources"]:
        if isinstance(r, dict) and r.get("name") == name:
            p = r.get("path")
            if isinstance(p, list) and len(p) == 1:
                p = p[0]
            if not isinstance(p, str):
                raise CamtrapDPError(f"the {name} resource has no single file path; Pardus reads CSV files only")
            if "://" in p:
                raise CamtrapDPError(f"the {name} table is at {p}, on the internet; download the package first")
            full = package_file(directory, p)
            if full is None:
                raise _outside(f"the {name} table", p, directory)
            if not full.is_file():
                raise CamtrapDPError(f"the {name} table {p} named in datapackage.json is not in {directory}")
            return full
    raise CamtrapDPError(f"the package has no '{name}' resource; Camtrap DP needs deployments, media and observations")


def check_version(desc: Mapping[str, Any]) -> str:
    version = package_version(desc)
    if version is None:
        raise CamtrapDPError(
            "datapackage.json does not say which Camtrap DP version it follows (its profile should be a URL "
            "like https://raw.githubusercontent.com/tdwg/camtrap-dp/1.0.2/camtrap-dp-profile.json)"
        )
    if version not in SUPPORTED_VERSIONS:
        raise CamtrapDPError(
            f"this package follows Camtrap DP {version}; Pardus reads 1.0 to 1.0.2. Upgrade it first "
            "(for example with the R package camtrapdp: read_camtrapdp() then write_camtrapdp())"
        )
    return version


def _is_pardus_individuals(directory: Path, res: Mapping[str, Any]) -> bool:
    path = res.get("path")
    local = package_file(directory, path) if isinstance(path, str) and "://" not in path else None
    if local is None or not local.is_file():
        return False
    with open(local, newline="", encoding="utf-8-sig") as f:
        header = next(csv.reader(f), [])
    return header == INDIVIDUALS.names


@dataclass
class ImportReport:
    project_id: str
    version: str
    counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n


def _typed(row: Mapping[str, str], table_fields: Mapping[str, Any], name: str) -> Any:
    return parse_value(row.get(name, ""), table_fields[name].type)


def _local(dt: datetime, offset_minutes: int) -> datetime:
    return (dt.astimezone(UTC) + timedelta(minutes=offset_minutes)).replace(tzinfo=None)


def _minutes(dt: datetime | None) -> int | None:
    if dt is None or dt.utcoffset() is None:
        return None
    return int(dt.utcoffset().total_seconds() // 60)  # type: ignore[union-attr]


def _batched(it: Iterable[Any], n: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for x in it:
        batch.append(x)
        if len(batch) >= n:
            yield batch
            batch = []
    if batch:
        yield batch


def open_package(
    path: Path | str, *, done: str = "imported", again: str = "import again"
) -> tuple[Path, dict[str, Any], str, dict[str, Path]]:
    """(folder, descriptor, version, file of each table) of a package whose tables pass validation
    (every cell, keys across tables). A package with problems is refused with a list of them by file,
    row and column, saying that nothing was ``done`` and to fix them and ``again``."""
    directory, desc = read_descriptor(path)
    version = check_version(desc)
    files = {t: _resource_path(directory, desc, t) for t in TABLES}
    report_v = ValidationReport()
    keys: dict[str, set[str]] = {}
    for t in TABLES:
        keys[t] = validate_table_file(SCHEMAS[t], files[t], report_v, keys)
    if not report_v.valid:
        more = "+" if len(report_v.issues) >= report_v.max_issues else ""
        raise CamtrapDPError(
            f"the package at {directory} has {len(report_v.issues)}{more} problem(s); nothing was {done}. "
            f"Fix these in the CSV files and {again}:\n{report_v.summary()}",
            report_v,
        )
    return directory, desc, version, files


@dataclass(frozen=True)
class MediaObservation:
    """A media-level observation beside the file of its media, typed as the import types it: what
    teaching a species head from a package needs (``pardus models train-species --from-labels``)."""

    media_id: str
    file_path: str  # as media.csv gives it: relative to the package folder, or a URL
    file_name: str | None
    file_mediatype: str
    observation_type: str
    scientific_name: str | None
    bbox: tuple[float, float, float, float] | None  # normalised x, y, width, height
    classification_method: str | None  # human / machine / None (the package does not say)


def read_media_observations(path: Path | str) -> tuple[Path, list[MediaObservation], int]:
    """(package folder, media-level observations with their media file, number of event-level
    observations) of a validated package, without a store: teaching reads labels, it imports nothing.
    Event-level observations name a whole sequence, not one photo, so they are only counted."""
    directory, _desc, _version, files = open_package(path, done="read", again="try again")
    media_fields = {f.name: f for f in MEDIA.fields}
    media: dict[str, tuple[str, str | None, str]] = {}
    for _, row in read_csv_rows(files["media"]):
        media[row["mediaID"]] = (row["filePath"], _typed(row, media_fields, "fileName"), row["fileMediatype"])
    fields = {f.name: f for f in OBSERVATIONS.fields}
    out: list[MediaObservation] = []
    events = 0
    for _, row in read_csv_rows(files["observations"]):
        mid = _typed(row, fields, "mediaID")
        if row["observationLevel"] != "media" or mid is None or mid not in media:
            events += 1
            continue
        box = tuple(_typed(row, fields, n) for n in ("bboxX", "bboxY", "bboxWidth", "bboxHeight"))
        file_path, file_name, mediatype = media[mid]
        out.append(MediaObservation(
            mid, file_path, file_name, mediatype, row["observationType"], _typed(row, fields, "scientificName"),
            None if any(v is None for v in box) else (float(box[0]), float(box[1]), float(box[2]), float(box[3])),
            _typed(row, fields, "classificationMethod")))
    return directory, out, events


def import_camtrap_dp(
    ws: Workspace,
    path: Path | str,
    *,
    prefix: str = "",
    project_id: str | None = None,
) -> ImportReport:
    """Read a Camtrap DP 1.0/1.0.1/1.0.2 package into the store, all or nothing.

    The package is validated first (every cell, keys across tables); a package with problems is
    refused with a list of them by file, row and column. Media whose ``filePath`` is a URL become
    rows marked unavailable (nothing is fetched); media files inside the package are stored in the
    blob store. Importing the same package again updates the rows it made. ``prefix`` is put in
    front of every deployment, location, media, observation and event ID, for packages whose IDs
    clash with ones already in the store.
    """
    directory, desc, version, files = open_package(path)

    meta = copy.deepcopy(desc)
    proj_meta = meta.get("project") if isinstance(meta.get("project"), dict) else {}
    pid = project_id or proj_meta.get("id") or meta.get("id") or meta.get("name") or new_id()
    rep = ImportReport(project_id=str(pid), version=version)

    _check_resource_paths(directory, meta)
    with ws.db.session() as s:
        extra_resources: list[dict[str, Any]] = []
        resource_files: dict[str, str] = {}
        individuals_file: Path | None = None
        individuals_name: str | None = None
        for res in meta["resources"]:
            if not isinstance(res, dict) or res.get("name") in TABLES:
                continue
            p = res.get("path")
            local = package_file(directory, p) if isinstance(p, str) and "://" not in p else None
            if individuals_file is None and _is_pardus_individuals(directory, res):
                individuals_file = local
                individuals_name = res["name"]
                continue
            if local is not None and local.is_file():
                key, _ = ws.derived.put_file(local)
                resource_files[res["name"]] = key
            extra_resources.append(res)
        meta["resources"] = extra_resources

        project = s.get(Project, str(pid)) or Project(id=str(pid), title="")
        s.add(project)
        project.title = str(proj_meta.get("title") or meta.get("title") or pid)[:500]
        project.description = proj_meta.get("description")
        project.extra = {
            "datapackage": meta,
            "camtrapdp_version": version,
            "resource_files": resource_files,
            "individuals_resource": individuals_name,
        }
        s.flush()

        code_to_id: dict[str, str] = {}
        if individuals_file is not None:
            code_to_id = _import_individuals(s, individuals_file, rep)

        offsets = _import_deployments(s, files["deployments"], project.id, prefix, rep)
        _import_media(ws, s, files["media"], directory, offsets, prefix, rep)
        _import_observations(s, files["observations"], offsets, prefix, code_to_id, rep)
    return rep


def _import_individuals(s: Session, path: Path, rep: ImportReport) -> dict[str, str]:
    fields = {f.name: f for f in INDIVIDUALS.fields}
    rows = [row for _, row in read_csv_rows(path)]
    codes = [r["individualID"] for r in rows]
    existing = {i.code: i for i in s.scalars(select(Individual).where(Individual.code.in_(codes)))}
    code_to_id: dict[str, str] = {}
    objs: list[tuple[Individual, dict[str, str]]] = []
    for row in rows:
        code = row["individualID"]
        ind = existing.get(code) or Individual(id=new_id(), code=code)
        s.add(ind)
        ind.name = _typed(row, fields, "individualName")
        ind.scientific_name = _typed(row, fields, "scientificName")
        ind.sex = _typed(row, fields, "sex")
        ind.first_seen = _typed(row, fields, "firstSeen")
        ind.last_seen = _typed(row, fields, "lastSeen")
        ind.notes = _typed(row, fields, "individualRemarks")
        offset = _minutes(ind.first_seen) or _minutes(ind.last_seen) or 0
        ind.extra = {**(ind.extra or {}), "utcOffsetMinutes": offset}
        code_to_id[code] = ind.id
        objs.append((ind, row))
    for ind, row in objs:
        merged = row.get("mergedInto") or None
        ind.merged_into = code_to_id.get(merged, merged) if merged else None
    id_to_code = {v: k for k, v in code_to_id.items()}
    for ind, row in objs:
        rec = {
            "code": ind.code, "name": ind.name, "scientific_name": ind.scientific_name, "sex": ind.sex,
            "first_seen": ind.first_seen, "last_seen": ind.last_seen, "merged_into": ind.merged_into,
            "notes": ind.notes, "extra": ind.extra,
        }  # fmt: skip
        canon = render_individual(rec, lambda i: _s(id_to_code.get(i, i)) if i else "")
        ind.text_hints = make_hints(canon, row, INDIVIDUALS.names)
    s.flush()
    rep.add("individuals", len(objs))
    return code_to_id


def _clash(kind: str, ident: str, where: str) -> CamtrapDPError:
    return CamtrapDPError(
        f"{kind} {ident} already exists in this store ({where}); nothing was imported. "
        "Import again with a prefix (pardus import camtrap-dp PATH --prefix X_) to keep both"
    )


def _import_deployments(s: Session, path: Path, project_id: str, prefix: str, rep: ImportReport) -> dict[str, int]:
    fields = {f.name: f for f in DEPLOYMENTS.fields}
    offsets: dict[str, int] = {}
    seen_locations: set[str] = set()
    seen_cameras: set[str] = set()
    for _, row in read_csv_rows(path):
        dep_id = prefix + row["deploymentID"]
        dep = s.get(Deployment, dep_id)
        if dep is not None and dep.project_id != project_id:
            raise _clash("deployment", dep_id, f"project {dep.project_id}" if dep.project_id else "made in Pardus")
        if dep is None:
            dep = Deployment(id=dep_id, project_id=project_id)
            s.add(dep)
        start = _typed(row, fields, "deploymentStart")
        end = _typed(row, fields, "deploymentEnd")
        offset = _minutes(start) if _minutes(start) is not None else (_minutes(end) or 0)
        loc_id = prefix + row["locationID"] if row.get("locationID") not in MISSING_VALUES else dep_id
        loc = s.get(Location, loc_id)
        if loc is None:
            loc = Location(id=loc_id, sensitive=False)
            s.add(loc)
        if loc_id not in seen_locations:
            seen_locations.add(loc_id)
            loc.name = _typed(row, fields, "locationName")
            loc.latitude = _typed(row, fields, "latitude")
            loc.longitude = _typed(row, fields, "longitude")
            loc.coordinate_uncertainty = _typed(row, fields, "coordinateUncertainty")
        cam_id = _typed(row, fields, "cameraID")
        cam: Camera | None = None
        extra: dict[str, Any] = {}
        cam_text = row.get("cameraModel", "")
        if cam_id is not None:
            cam = s.get(Camera, cam_id)
            if cam is None:
                cam = Camera(id=cam_id, serial=cam_id)
                s.add(cam)
            if cam_id not in seen_cameras:
                seen_cameras.add(cam_id)
                cam.make, cam.model = split_camera_model(cam_text) if cam_text not in MISSING_VALUES else (None, None)
            if camera_model_text(cam.make, cam.model) != cam_text and cam_text not in MISSING_VALUES:
                extra["cameraModel"] = cam_text
        elif cam_text not in MISSING_VALUES:
            extra["cameraModel"] = cam_text
        for name in ("cameraDelay", "cameraDepth", "detectionDistance", "deploymentGroups", "deploymentTags"):
            if row.get(name, "") != "":
                extra[name] = row[name]
        dep.project_id = project_id
        dep.location_id = loc_id
        dep.camera_id = cam_id
        dep.start, dep.end = start, end
        dep.utc_offset_minutes = offset
        dep.clock_offset_s = dep.clock_offset_s or 0.0
        dep.setup_by = _typed(row, fields, "setupBy")
        dep.camera_height = _typed(row, fields, "cameraHeight")
        dep.camera_tilt = _typed(row, fields, "cameraTilt")
        dep.camera_heading = _typed(row, fields, "cameraHeading")
        ts_issues = _typed(row, fields, "timestampIssues")
        dep.timestamp_issues = bool(ts_issues)
        dep.bait_use = _typed(row, fields, "baitUse")
        dep.feature_type = _typed(row, fields, "featureType")
        dep.habitat = _typed(row, fields, "habitat")
        dep.comments = _typed(row, fields, "deploymentComments")
        dep.extra = extra
        rec = {
            "id": dep.id, "location_id": loc_id,
            "location_name": loc.name, "latitude": loc.latitude, "longitude": loc.longitude,
            "coordinate_uncertainty": loc.coordinate_uncertainty, "start": start, "end": end,
            "utc_offset_minutes": offset, "setup_by": dep.setup_by, "camera_id": cam_id,
            "camera_make": cam.make if cam else None, "camera_model": cam.model if cam else None,
            "camera_height": dep.camera_height, "camera_tilt": dep.camera_tilt,
            "camera_heading": dep.camera_heading, "timestamp_issues": dep.timestamp_issues,
            "bait_use": dep.bait_use, "feature_type": dep.feature_type, "habitat": dep.habitat,
            "comments": dep.comments, "extra": extra,
        }  # fmt: skip
        original = {**row, "deploymentID": dep_id}
        if row.get("locationID") not in MISSING_VALUES:
            original["locationID"] = loc_id
        dep.text_hints = make_hints(render_deployment(rec), original, DEPLOYMENTS.names)
        offsets[row["deploymentID"]] = offset
        rep.add("deployments")
        s.flush()
    return offsets


def _import_media(
    ws: Workspace,
    s: Session,
    path: Path,
    directory: Path,
    offsets: Mapping[str, int],
    prefix: str,
    rep: ImportReport,
) -> None:
    fields = {f.name: f for f in MEDIA.fields}
    dep_ids = {prefix + d for d in offsets}
    for batch in _batched((row for _, row in read_csv_rows(path)), BATCH):
        ids = [prefix + r["mediaID"] for r in batch]
        existing = {m.id: m for m in s.scalars(select(Media).where(Media.id.in_(ids)))}
        for row in batch:
            mid = prefix + row["mediaID"]
            dep_id = prefix + row["deploymentID"]
            offset = offsets[row["deploymentID"]]
            m = existing.get(mid)
            if m is not None and m.deployment_id not in dep_ids:
                raise _clash("media", mid, f"in deployment {m.deployment_id}")
            if m is None:
                m = Media(id=mid)
                s.add(m)
            ts = _typed(row, fields, "timestamp")
            m.deployment_id = dep_id
            m.capture_method = _typed(row, fields, "captureMethod")
            m.timestamp = ts
            m.camera_time = _local(ts, offset)
            m.timestamp_source = IMPORT_SOURCE
            m.file_path = row["filePath"]
            m.file_public = bool(_typed(row, fields, "filePublic"))
            m.file_name = _typed(row, fields, "fileName")
            m.file_mediatype = row["fileMediatype"]
            m.favorite = bool(_typed(row, fields, "favorite"))
            m.comments = _typed(row, fields, "mediaComments")
            m.extra = {"exifData": row["exifData"]} if row.get("exifData", "") != "" else {}
            _attach_file(ws, s, m, directory, rep)
            rec = {
                "id": mid, "deployment_id": dep_id, "capture_method": m.capture_method, "timestamp": ts,
                "file_path": m.file_path, "timestamp_source": IMPORT_SOURCE, "file_public": m.file_public,
                "file_name": m.file_name, "file_mediatype": m.file_mediatype, "extra": m.extra,
                "exif_make": None, "exif_model": None, "exif_datetime_raw": None, "favorite": m.favorite,
                "comments": m.comments,
            }  # fmt: skip
            original = {**row, "mediaID": mid, "deploymentID": dep_id}
            m.text_hints = make_hints(render_media(rec, offset, False), original, MEDIA.names)
            rep.add("media")
        s.flush()


def _attach_file(ws: Workspace, s: Session, m: Media, directory: Path, rep: ImportReport) -> None:
    """Store a media file that travels inside the package; URLs are recorded, never fetched."""
    p = m.file_path
    if "://" in p:
        m.available = False
        m.sha256 = None
        rep.add("media_remote")
        return
    local = package_file(directory, p)
    if local is None:
        m.available = False
        m.file_issues = f"{p[:200]} leads out of the package folder; it was not read"
        rep.add("media_refused")
        rep.warnings.append(f"media {m.id}: its filePath leads out of the package folder and was not read")
        return
    if not local.is_file():
        m.available = False
        m.file_issues = f"{p} is named in media.csv but is not in the package"
        rep.add("media_missing")
        return
    sha, size = ws.blobs.put_file(local)
    other = s.scalars(select(Media.id).where(Media.sha256 == sha, Media.id != m.id)).first()
    if other is not None:
        m.sha256 = None
        m.available = False
        m.file_issues = f"the same file as media {other}, which holds its bytes"
        rep.warnings.append(f"media {m.id}: {p} is the same file as media {other}; its bytes are kept once")
    else:
        m.sha256 = sha
        m.available = True
    m.file_size = size
    rep.add("media_files")


def _import_observations(
    s: Session,
    path: Path,
    offsets: Mapping[str, int],
    prefix: str,
    code_to_id: Mapping[str, str],
    rep: ImportReport,
) -> None:
    fields = {f.name: f for f in OBSERVATIONS.fields}
    dep_ids = {prefix + d for d in offsets}
    id_to_code = {v: k for k, v in code_to_id.items()}

    def code_of(i: str | None) -> str:
        return "" if i is None else id_to_code.get(i, i)

    sequence_of: dict[str, str] = {}
    for batch in _batched((row for _, row in read_csv_rows(path)), BATCH):
        ids = [prefix + r["observationID"] for r in batch]
        existing = {o.id: o for o in s.scalars(select(Observation).where(Observation.id.in_(ids)))}
        for row in batch:
            oid = prefix + row["observationID"]
            o = existing.get(oid)
            if o is not None and o.deployment_id not in dep_ids:
                raise _clash("observation", oid, f"in deployment {o.deployment_id}")
            if o is None:
                o = Observation(id=oid)
                s.add(o)
            offset = offsets[row["deploymentID"]]
            o.deployment_id = prefix + row["deploymentID"]
            mid = _typed(row, fields, "mediaID")
            o.media_id = prefix + mid if mid is not None else None
            ev = _typed(row, fields, "eventID")
            o.event_id = prefix + ev if ev is not None else None
            o.event_start = _typed(row, fields, "eventStart")
            o.event_end = _typed(row, fields, "eventEnd")
            o.observation_level = row["observationLevel"]
            o.observation_type = row["observationType"]
            o.camera_setup_type = _typed(row, fields, "cameraSetupType")
            o.scientific_name = _typed(row, fields, "scientificName")
            o.count = _typed(row, fields, "count")
            o.life_stage = _typed(row, fields, "lifeStage")
            o.sex = _typed(row, fields, "sex")
            o.behavior = _typed(row, fields, "behavior")
            ind = _typed(row, fields, "individualID")
            o.individual_id = code_to_id.get(ind, ind) if ind is not None else None
            o.bbox_x = _typed(row, fields, "bboxX")
            o.bbox_y = _typed(row, fields, "bboxY")
            o.bbox_width = _typed(row, fields, "bboxWidth")
            o.bbox_height = _typed(row, fields, "bboxHeight")
            o.classification_method = _typed(row, fields, "classificationMethod")
            o.classified_by = _typed(row, fields, "classifiedBy")
            o.classification_timestamp = _typed(row, fields, "classificationTimestamp")
            o.classification_probability = _typed(row, fields, "classificationProbability")
            o.comments = _typed(row, fields, "observationComments")
            o.extra = {
                n: row[n]
                for n in ("individualPositionRadius", "individualPositionAngle", "individualSpeed", "observationTags")
                if row.get(n, "") != ""
            }
            if o.media_id and o.event_id:
                sequence_of[o.media_id] = o.event_id
            rec = {
                "id": oid, "deployment_id": o.deployment_id, "media_id": o.media_id, "event_id": o.event_id,
                "event_start": o.event_start, "event_end": o.event_end, "media_timestamp": None,
                "observation_level": o.observation_level, "observation_type": o.observation_type,
                "camera_setup_type": o.camera_setup_type, "scientific_name": o.scientific_name,
                "count": o.count, "life_stage": o.life_stage, "sex": o.sex, "behavior": o.behavior,
                "individual_id": o.individual_id, "bbox_x": o.bbox_x, "bbox_y": o.bbox_y,
                "bbox_width": o.bbox_width, "bbox_height": o.bbox_height,
                "classification_method": o.classification_method, "classified_by": o.classified_by,
                "classification_timestamp": o.classification_timestamp,
                "classification_probability": o.classification_probability, "comments": o.comments,
                "extra": o.extra,
            }  # fmt: skip
            original = {
                **row,
                "observationID": oid,
                "deploymentID": o.deployment_id,
                "mediaID": o.media_id or row.get("mediaID", ""),
                "eventID": o.event_id or row.get("eventID", ""),
            }
            o.text_hints = make_hints(render_observation(rec, offset, code_of), original, OBSERVATIONS.names)
            rep.add("observations")
        s.flush()
    # A Camtrap DP event is what Pardus calls a sequence (burst): remember it on the media.
    for batch in _batched(sequence_of.items(), BATCH):
        media = {m.id: m for m in s.scalars(select(Media).where(Media.id.in_([k for k, _ in batch])))}
        for mid, ev in batch:
            if mid in media:
                media[mid].sequence_id = ev
        s.flush()


# --- writing a package ------------------------------------------------------------------------


CONTRIBUTOR_ROLES = ("contact", "principalInvestigator", "rightsHolder", "publisher", "contributor")
# datapackage.json properties Pardus computes from what it wrote: a metadata file cannot set them.
COMPUTED_PROPERTIES = frozenset({"resources", "profile", "spatial", "temporal", "taxonomic", "coordinatePrecision"})


@dataclass
class PackageMetadata:
    """What a person says about a package that the data cannot: who made it, under which licence.

    ``extra`` holds datapackage.json properties as they are written there (from ``--metadata FILE``),
    applied first; the named fields (from the CLI's options) go on top. Properties Pardus computes
    from the data (resources, spatial and temporal scope, taxa, coordinate precision) cannot be set.
    """

    title: str | None = None
    description: str | None = None
    contributors: list[dict[str, str]] = field(default_factory=list)
    license: str | None = None
    media_license: str | None = None
    rights_holder: str | None = None
    project_title: str | None = None
    project_acronym: str | None = None
    project_description: str | None = None
    sampling_design: str | None = None
    bibliographic_citation: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def is_empty(self) -> bool:
        return self == PackageMetadata()


def parse_contributor(text: str) -> dict[str, str]:
    """'Name', 'Name:role' or 'Name:role:email' (the CLI's --contributor) as a Camtrap DP contributor."""
    parts = [p.strip() for p in text.split(":", 2)]
    if not parts[0]:
        raise CamtrapDPError(f"contributor {text!r} has no name; write it as 'Name[:role[:email]]'")
    out = {"title": parts[0]}
    if len(parts) > 1 and parts[1]:
        if parts[1] not in CONTRIBUTOR_ROLES:
            raise CamtrapDPError(f"contributor role {parts[1]!r} is not one of: {', '.join(CONTRIBUTOR_ROLES)}")
        out["role"] = parts[1]
    if len(parts) > 2 and parts[2]:
        if "@" not in parts[2]:
            raise CamtrapDPError(f"contributor e-mail {parts[2]!r} does not look like an e-mail address")
        out["email"] = parts[2]
    return out


def read_metadata_file(path: Path | str) -> dict[str, Any]:
    """A JSON file of datapackage.json properties (title, contributors, licenses, project, ...)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise CamtrapDPError(f"the metadata file {path} does not exist") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise CamtrapDPError(f"the metadata file {path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CamtrapDPError(f"the metadata file {path} must hold one JSON object of datapackage.json properties")
    fixed = sorted(COMPUTED_PROPERTIES & set(data))
    if fixed:
        raise CamtrapDPError(
            f"the metadata file sets {', '.join(fixed)}, which Pardus computes from the data; remove them"
        )
    return data


def _apply_metadata(meta: dict[str, Any], given: PackageMetadata) -> None:
    """Put what a person said over the defaults and over what a source package said."""
    for k, v in copy.deepcopy(given.extra).items():
        if k == "project" and isinstance(v, dict) and isinstance(meta.get("project"), dict):
            meta["project"].update(v)
        else:
            meta[k] = v
    if given.title:
        meta["title"] = given.title
    if given.description:
        meta["description"] = given.description
    if given.bibliographic_citation:
        meta["bibliographicCitation"] = given.bibliographic_citation
    contributors = list(given.contributors)
    if given.rights_holder and not any(c.get("role") == "rightsHolder" and c.get("title") == given.rights_holder
                                       for c in contributors):
        contributors.append({"title": given.rights_holder, "role": "rightsHolder"})
    if contributors:
        meta["contributors"] = contributors
    if given.license or given.media_license:
        lic = {lc.get("scope"): lc for lc in meta.get("licenses", []) if isinstance(lc, dict)}
        if given.license:
            lic["data"] = {"name": given.license, "scope": "data"}
        lic["media"] = {"name": given.media_license or given.license, "scope": "media"} if (
            given.media_license or given.license) else lic.get("media", {})
        meta["licenses"] = [lic[k] for k in ("data", "media") if lic.get(k)]
    proj = meta.setdefault("project", {})
    for key, value in (("title", given.project_title), ("acronym", given.project_acronym),
                       ("description", given.project_description), ("samplingDesign", given.sampling_design)):
        if value:
            proj[key] = value


@dataclass
class ExportReport:
    out: Path
    counts: dict[str, int] = field(default_factory=dict)
    coordinate_precision: float | None = None
    obscured_locations: list[str] = field(default_factory=list)
    redacted_values: int = 0
    warnings: list[str] = field(default_factory=list)
    validation: ValidationReport | None = None


class Redactor:
    """Blurs every exact coordinate of a sensitive place that appears in free text.

    Numbers are matched if they carry more decimals than the chosen precision allows and lie
    within that precision of a protected latitude or longitude; degree-minute-second text is
    converted and checked the same way. EXIF GPS entries are dropped for sensitive deployments.
    """

    _DECIMAL = re.compile(r"(?<![\d.])-?\d{1,3}\.\d+")
    _DMS = re.compile(r"(\d{1,3})\s*(?:deg|°)\s*(\d{1,2})\s*['′]\s*(\d{1,2}(?:\.\d+)?)\s*(?:\"|″|'')?\s*([NSEW])?")

    def __init__(self, coords: Iterable[float], precision: float) -> None:
        self.coords = sorted({abs(c) for c in coords})
        self.precision = precision
        self.decimals = _decimals(precision)
        self.count = 0
        # Cheap gate run in C on every cell: a number with more decimals than allowed, or a D-M-S form.
        self._gate = re.compile(rf"\d\.\d{{{self.decimals + 1},}}|\d\s*(?:deg|°)")
        self._cache: dict[str, str] = {}

    def _near(self, v: float) -> bool:
        i = bisect.bisect_left(self.coords, abs(v) - self.precision)
        return i < len(self.coords) and self.coords[i] < abs(v) + self.precision

    def _decimal(self, m: re.Match[str]) -> str:
        text = m.group(0)
        decimals = len(text.split(".", 1)[1])
        v = float(text)
        if decimals > self.decimals and self._near(v):
            self.count += 1
            return f"{round(v / self.precision) * self.precision:.{self.decimals}f}"
        return text

    def _dms(self, m: re.Match[str]) -> str:
        v = int(m.group(1)) + int(m.group(2)) / 60 + float(m.group(3)) / 3600
        if self._near(v):
            self.count += 1
            return "[position withheld]"
        return m.group(0)

    def may_hold(self, s: str) -> bool:
        """Whether ``s`` (several cells joined) could hold a coordinate at all: one search per row
        of an export instead of one per cell, where almost no row holds one."""
        return bool(s) and self._gate.search(s) is not None

    def text(self, s: str) -> str:
        if not s or not self._gate.search(s):
            return s
        done = self._cache.get(s)
        if done is None:
            before = self.count
            done = self._DECIMAL.sub(self._decimal, self._DMS.sub(self._dms, s))
            if len(self._cache) < 100_000 and self.count == before:
                self._cache[s] = done  # only clean texts are cached, so every blurring is counted
        return done

    def exif(self, s: str) -> str:
        try:
            data = json.loads(s)
        except ValueError:
            return self.text(s)

        def strip(o: Any) -> Any:
            if isinstance(o, dict):
                return {k: strip(v) for k, v in o.items() if not k.upper().startswith("GPS")}
            if isinstance(o, list):
                return [strip(v) for v in o]
            return o

        cleaned = strip(data)
        if cleaned != data:
            self.count += 1
            return self.text(json.dumps(cleaned, ensure_ascii=False))
        return self.text(s)

    def deep(self, o: Any) -> Any:
        if isinstance(o, str):
            return self.text(o)
        if isinstance(o, dict):
            return {k: self.deep(v) for k, v in o.items()}
        if isinstance(o, list):
            return [self.deep(v) for v in o]
        return o


def round_to(v: float, precision: float) -> float:
    return round(round(v / precision) * precision, _decimals(precision))


def _writer(path: Path) -> tuple[Any, Any]:
    f = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115 - closed by the caller
    return f, csv.writer(f, lineterminator="\n")


def user_may_see_exact_coordinates(s: Session, user_name: str) -> bool:
    """Whether a user's role lets them export exact places of sensitive locations."""
    from pardus.store.models import User

    user = s.scalars(select(User).where(User.name == user_name)).first()
    if user is None:
        raise CamtrapDPError(f"there is no user {user_name!r} in this store; ask an admin to add you")
    return user.revoked is None and user.role in ROLES_WITH_EXACT_COORDINATES


def export_camtrap_dp(
    ws: Workspace,
    out: Path | str,
    *,
    project_id: str | None = None,
    deployment_ids: Iterable[str] | None = None,
    coordinate_precision: float = DEFAULT_SENSITIVE_PRECISION,
    exact_coordinates: bool = False,
    allow_exact: bool = False,
    copy_media: bool = False,
    validate: bool = True,
    name: str | None = None,
    person_score: float = PERSON_SCORE,
    metadata: PackageMetadata | None = None,
    media_url: str | None = None,
) -> ExportReport:
    """Write the store (or one project, or some deployments) as a Camtrap DP 1.0.2 package in ``out``.

    Sensitive locations are rounded to ``coordinate_precision`` decimal degrees unless
    ``exact_coordinates`` is asked for, which needs ``allow_exact`` (the caller decides it from the
    user's role). Photos with a person (a human observation, or a MegaDetector person detection
    of at least ``person_score``) are written with filePublic=false. ``copy_media`` copies the
    stored photos into the package; ``media_url`` (where the photos are published) makes filePath
    a URL instead; with neither, filePath names files the package does not hold, and the report
    says so. ``metadata`` sets what only a person knows (title, contributors, licences, project).

    Photos whose time cannot be trusted (a reset clock, a time outside the deployment) and their
    observations are left out and counted in the warnings: they would be published as records of
    another year. People's photo-by-photo review is published at event level too
    (``interop.events``), and replaces the machine's event calls for the events a person reviewed.
    """
    if exact_coordinates and not allow_exact:
        raise CamtrapDPError(
            "exact coordinates of sensitive places can only be exported by a reviewer or an admin; "
            "export without --exact-coordinates (they are then rounded) or ask one of them"
        )
    if not coordinate_precision > 0:
        raise CamtrapDPError("--coordinate-precision must be a positive number of degrees, e.g. 0.1")
    if metadata is not None and metadata.sampling_design and metadata.sampling_design not in SAMPLING_DESIGNS:
        raise CamtrapDPError(f"sampling design {metadata.sampling_design!r} is not one of: "
                             f"{', '.join(SAMPLING_DESIGNS)}")
    if copy_media and media_url:
        raise CamtrapDPError("give either --copy-media (photos inside the package) or --media-url, not both")
    if media_url is not None and not re.match(r"^https?://[^\s/]+", media_url):
        raise CamtrapDPError(f"--media-url must be an http(s) address like https://example.org/photos/, "
                             f"not {media_url!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rep = ExportReport(out=out)
    with ws.db.session() as s:
        project = _choose_project(s, project_id)
        dep_filter = _deployment_filter(s, project, deployment_ids)
        stored = copy.deepcopy((project.extra or {}).get("datapackage", {})) if project else {}

        deps = _export_deployments(s, out, dep_filter, coordinate_precision, exact_coordinates, rep)
        redactor = None
        if rep.obscured_locations:
            redactor = Redactor(deps.sensitive_coords, coordinate_precision)
        media_stats = _export_media(ws, s, out, deps, redactor, copy_media, person_score, rep,
                                    strip_gps=not exact_coordinates, media_url=media_url)
        obs_stats = _export_observations(s, out, deps, media_stats.skipped_media, redactor, rep)
        resources = [
            {
                "name": t,
                "path": f"{t}.csv",
                "profile": "tabular-data-resource",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "schema": schema_url(t),
            }
            for t in TABLES
        ]
        resources += _export_extra_resources(ws, project, stored, out)
        if obs_stats.individual_ids:
            taken = {r["name"] for r in resources}
            res_name = (project.extra or {}).get("individuals_resource") if project else None
            res_name = res_name or "individuals"
            if res_name in taken:
                res_name = "pardus_individuals"
            n = _export_individuals(s, out / f"{res_name}.csv", obs_stats.individual_ids, redactor)
            resources.append(individuals_resource(f"{res_name}.csv", res_name))
            rep.counts["individuals"] = n
        meta = _metadata(project, stored, resources, deps, media_stats, obs_stats, rep, name,
                         metadata or PackageMetadata())
        if redactor is not None:
            meta = redactor.deep(meta)
            rep.redacted_values += redactor.count
        with open(out / "datapackage.json", "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=2, ensure_ascii=False)
            f.write("\n")
    if validate:
        rep.validation = validate_package(out)
    return rep


def _choose_project(s: Session, project_id: str | None) -> Project | None:
    if project_id is not None:
        project = s.get(Project, project_id)
        if project is None:
            known = ", ".join(s.scalars(select(Project.id))) or "none"
            raise CamtrapDPError(f"there is no project {project_id!r}; projects in this store: {known}")
        return project
    projects = list(s.scalars(select(Project).limit(2)))
    if len(projects) > 1:
        known = ", ".join(s.scalars(select(Project.id)))
        raise CamtrapDPError(f"this store holds several projects ({known}); say which one with --project")
    return projects[0] if projects else None


def _deployment_filter(s: Session, project: Project | None, deployment_ids: Iterable[str] | None) -> Any:
    conds = []
    if deployment_ids is not None:
        ids = list(deployment_ids)
        missing = set(ids) - set(s.scalars(select(Deployment.id).where(Deployment.id.in_(ids))))
        if missing:
            raise CamtrapDPError(f"no deployment(s) {', '.join(sorted(missing))} in this store")
        conds.append(Deployment.id.in_(ids))
    if project is not None and s.scalar(select(func.count()).select_from(Project)) > 1:
        conds.append(Deployment.project_id == project.id)
    return and_(*conds) if conds else None


@dataclass
class _Deps:
    offsets: dict[str, int] = field(default_factory=dict)
    sensitive: set[str] = field(default_factory=set)
    sensitive_coords: list[float] = field(default_factory=list)
    lats: list[float] = field(default_factory=list)
    lons: list[float] = field(default_factory=list)
    start_dates: list[str] = field(default_factory=list)
    end_dates: list[str] = field(default_factory=list)
    where: Any = None


def _export_deployments(
    s: Session, out: Path, where: Any, precision: float, exact: bool, rep: ExportReport
) -> _Deps:
    first = select(func.min(Media.timestamp), func.max(Media.timestamp), Media.deployment_id).group_by(
        Media.deployment_id
    )
    q = (
        select(
            Deployment.id, Deployment.location_id, Location.name.label("location_name"), Location.latitude,
            Location.longitude, Location.coordinate_uncertainty, Location.sensitive, Deployment.start,
            Deployment.end, Deployment.utc_offset_minutes, Deployment.setup_by, Deployment.camera_id,
            Camera.make.label("camera_make"), Camera.model.label("camera_model"), Deployment.camera_height,
            Deployment.camera_tilt, Deployment.camera_heading, Deployment.timestamp_issues, Deployment.bait_use,
            Deployment.feature_type, Deployment.habitat, Deployment.comments, Deployment.extra,
            Deployment.text_hints,
        )  # fmt: skip
        .outerjoin(Location, Location.id == Deployment.location_id)
        .outerjoin(Camera, Camera.id == Deployment.camera_id)
        .order_by(Deployment.id)
    )
    if where is not None:
        q = q.where(where)
    rows = [dict(r._mapping) for r in s.execute(q)]
    if not rows:
        raise CamtrapDPError("there are no deployments to export; record them with `pardus deployments add`")
    problems = []
    deps = _Deps(where=where)
    spans: dict[str, tuple[datetime, datetime]] | None = None
    for r in rows:
        if r["latitude"] is None or r["longitude"] is None:
            problems.append(f"{r['id']} has no latitude/longitude")
        if r["start"] is None or r["end"] is None:
            if spans is None:
                spans = {d: (a, b) for a, b, d in s.execute(first)}
            a, b = spans.get(r["id"], (None, None))
            r["start"] = r["start"] or a
            r["end"] = r["end"] or b
            if r["start"] is None or r["end"] is None:
                problems.append(f"{r['id']} has no start/end and no photos to take them from")
            else:
                rep.warnings.append(f"deployment {r['id']}: start/end taken from its first and last photo")
        if r["sensitive"] and not exact:
            deps.sensitive.add(r["id"])
            deps.sensitive_coords += [r["latitude"], r["longitude"]]
            rep.obscured_locations.append(r["location_id"] or r["id"])
    if problems:
        raise CamtrapDPError(
            "Camtrap DP needs a place and a period for every deployment: "
            + "; ".join(problems)
            + ". Add them with `pardus deployments add ID --lat .. --lon .. --start .. --end ..`"
        )
    red = Redactor(deps.sensitive_coords, precision) if deps.sensitive else None
    f, w = _writer(out / "deployments.csv")
    with f:
        w.writerow(DEPLOYMENTS.names)
        for r in rows:
            cells = apply_hints(render_deployment(r), DEPLOYMENTS.names, r["text_hints"])
            if r["id"] in deps.sensitive:
                lat, lon = round_to(r["latitude"], precision), round_to(r["longitude"], precision)
                cells[3], cells[4] = format_number(lat), format_number(lon)
                cell_m = math.ceil(precision * METERS_PER_DEGREE * math.sqrt(2) / 2)
                cells[5] = str(max(int(r["coordinate_uncertainty"] or 0), cell_m))
            else:
                lat, lon = float(cells[3]), float(cells[4])
            if red is not None:
                cells = [red.text(c) for c in cells[:3]] + cells[3:6] + [red.text(c) for c in cells[6:]]
            deps.lats.append(lat)
            deps.lons.append(lon)
            deps.start_dates.append(cells[6][:10])
            deps.end_dates.append(cells[7][:10])
            deps.offsets[r["id"]] = r["utc_offset_minutes"]
            w.writerow(cells)
    if red is not None:
        rep.redacted_values += red.count
        rep.coordinate_precision = precision
        rep.obscured_locations = sorted(set(rep.obscured_locations))
    rep.counts["deployments"] = len(rows)
    return deps


@dataclass
class _MediaStats:
    capture_methods: set[str] = field(default_factory=set)
    skipped_media: int = 0


def _export_media(
    ws: Workspace,
    s: Session,
    out: Path,
    deps: _Deps,
    redactor: Redactor | None,
    copy_media: bool,
    person_score: float,
    rep: ExportReport,
    *,
    strip_gps: bool = True,
    media_url: str | None = None,
) -> _MediaStats:
    stats = _MediaStats()
    human_obs = exists().where(Observation.media_id == Media.id, Observation.observation_type == "human")
    person_det = exists().where(
        Detection.media_id == Media.id, Detection.category == "person", Detection.score >= person_score
    )
    # Event-level human observations cover every photo of their deployment in their time span.
    human_events: dict[str, list[tuple[datetime, datetime]]] = {}
    for dep_id, a, b in s.execute(
        select(Observation.deployment_id, Observation.event_start, Observation.event_end).where(
            Observation.observation_type == "human", Observation.observation_level == "event"
        )
    ):
        if a is not None:
            human_events.setdefault(dep_id, []).append((a, b or a))
    dialect = s.get_bind().dialect.name
    cols = (
        Media.id, Media.deployment_id, Media.capture_method, _raw(Media.timestamp, dialect), Media.file_path,
        Media.timestamp_source, Media.file_public, Media.file_name, Media.file_mediatype,
        _raw_json(Media.extra, dialect), Media.exif_make, Media.exif_model, Media.exif_datetime_raw, Media.favorite,
        Media.comments, _raw_json(Media.text_hints, dialect), Media.sha256, Media.available,
        (human_obs | person_det).label("has_person"),
    )  # fmt: skip
    untrusted = untrusted_time_clause(Media.timestamp_issues)
    q = select(*cols).where(Media.timestamp.is_not(None), ~untrusted).order_by(
        Media.deployment_id, Media.timestamp, Media.file_name, Media.id
    )
    dep_ids = set(deps.offsets)
    if deps.where is not None:
        q = q.where(Media.deployment_id.in_(dep_ids))
    no_time = s.scalar(
        select(func.count()).select_from(Media).where(Media.timestamp.is_(None), Media.deployment_id.in_(dep_ids))
    ) or 0
    bad_time = s.scalar(
        select(func.count()).select_from(Media).where(
            Media.timestamp.is_not(None), untrusted, Media.deployment_id.in_(dep_ids))
    ) or 0  # fmt: skip
    stats.skipped_media = no_time + bad_time
    if no_time:
        rep.warnings.append(
            f"{no_time} media without a time were left out (Camtrap DP needs one); "
            "fix their time with `pardus fix-time` and export again"
        )
    if bad_time:
        rep.warnings.append(
            f"{bad_time} media whose camera time cannot be trusted (clock reset, in the future, outside the "
            "deployment) were left out with their observations, so they are not published as records of "
            "another date; correct the clock with `pardus fix-time` and export again"
        )
    not_held = 0
    n = 0
    copied = 0
    folders: dict[str, bool] = {}

    def _held(path: str) -> bool:
        """Whether the package holds the file; a folder that is not there is looked up once, not per photo."""
        folder = path.rsplit("/", 1)[0] if "/" in path else ""
        there = folders.get(folder)
        if there is None:
            there = folders[folder] = (out / folder).is_dir()
        return there and (out / path).is_file()

    f, w = _writer(out / "media.csv")
    with f:
        w.writerow(MEDIA.names)
        for r in s.connection().execute(q.execution_options(yield_per=5000, stream_results=True)).mappings():
            dep = r["deployment_id"]
            has_person = bool(r["has_person"])
            if not has_person and dep in human_events:
                ts = _instant(r["timestamp"])
                has_person = any(a <= ts <= b for a, b in human_events[dep])
            cells = apply_hints(render_media(r, deps.offsets[dep], has_person), MEDIA.names, r["text_hints"])
            if redactor is not None:  # text columns only: times and flags cannot carry a coordinate
                cells[0], cells[1] = redactor.text(cells[0]), redactor.text(cells[1])
                cells[4], cells[6] = redactor.text(cells[4]), redactor.text(cells[6])
                cells[8] = redactor.exif(cells[8]) if dep in deps.sensitive else redactor.text(cells[8])
                cells[10] = redactor.text(cells[10])
            if r["capture_method"]:
                stats.capture_methods.add(r["capture_method"])
            if media_url is not None and "://" not in cells[4]:
                cells[4] = media_url.rstrip("/") + "/" + "/".join(quote(p) for p in cells[4].split("/"))
            elif not copy_media and "://" not in cells[4] and not _held(cells[4]):
                not_held += 1
            if copy_media and r["sha256"] and r["available"] and "://" not in cells[4]:
                target = out / cells[4]
                if not target.exists() and ws.blobs.exists(r["sha256"]):
                    target.parent.mkdir(parents=True, exist_ok=True)
                    if strip_gps and target.suffix.lower() in (".jpg", ".jpeg"):
                        # The copy leaves the store: no GPS in its EXIF (the original keeps it).
                        target.write_bytes(without_gps(ws.blobs.get_bytes(r["sha256"])))
                    else:
                        shutil.copyfile(ws.blobs.path(r["sha256"]), target)
                    copied += 1
            w.writerow(cells)
            n += 1
    rep.counts["media"] = n
    if copy_media:
        rep.counts["media_files_copied"] = copied
    if not_held:
        rep.warnings.append(
            f"filePath of {not_held} media names a file this package does not hold: give --copy-media to put "
            "the photos in the package, or --media-url URL where they are published"
        )
    return stats


@dataclass
class _ObsStats:
    names: set[str] = field(default_factory=set)
    levels: set[str] = field(default_factory=set)
    individual_ids: set[str] = field(default_factory=set)


def _export_observations(
    s: Session, out: Path, deps: _Deps, skipped_media: int, redactor: Redactor | None, rep: ExportReport
) -> _ObsStats:
    stats = _ObsStats()
    codes = dict(s.execute(select(Individual.id, Individual.code)).all())

    def code_of(i: str | None) -> str:
        if i is None:
            return ""
        return codes.get(i, i)

    dialect = s.get_bind().dialect.name
    cols = (
        Observation.id, Observation.deployment_id, Observation.media_id, Observation.event_id,
        _raw(Observation.event_start, dialect), _raw(Observation.event_end, dialect),
        _raw(Media.timestamp, dialect).label("media_timestamp"),
        Observation.observation_level, Observation.observation_type, Observation.camera_setup_type,
        Observation.scientific_name, Observation.count, Observation.life_stage, Observation.sex,
        Observation.behavior, Observation.individual_id, Observation.bbox_x, Observation.bbox_y,
        Observation.bbox_width, Observation.bbox_height, Observation.classification_method,
        Observation.classified_by, _raw(Observation.classification_timestamp, dialect),
        Observation.classification_probability, Observation.comments, _raw_json(Observation.extra, dialect),
        _raw_json(Observation.text_hints, dialect),
    )  # fmt: skip
    q = (
        select(*cols)
        .outerjoin(Media, Media.id == Observation.media_id)
        .where(Observation.superseded_by.is_(None))  # a decision a reviewer replaced or undid is kept, not published
        .order_by(
            Observation.deployment_id,
            Observation.event_start,
            Observation.observation_level,
            Media.file_name,
            Observation.id,
        )
    )
    if deps.where is not None:
        q = q.where(Observation.deployment_id.in_(set(deps.offsets)))
    if skipped_media:
        q = q.where(or_(Observation.media_id.is_(None), Media.timestamp.is_not(None)))
        # Media left out for an untrusted time take their observations, and the events they are in.
        q = q.where(or_(Observation.media_id.is_(None), ~untrusted_time_clause(Media.timestamp_issues)))
        bad_events = select(Media.sequence_id).where(
            Media.sequence_id.is_not(None), untrusted_time_clause(Media.timestamp_issues))
        q = q.where(or_(Observation.media_id.is_not(None), Observation.event_id.is_(None),
                        Observation.event_id.not_in(bad_events)))  # fmt: skip
    derived = human_events(s, set(deps.offsets) if deps.where is not None else None)
    reviewed_events = {(e.deployment_id, e.event_id) for e in derived}
    n = 0
    no_time = 0
    replaced = 0
    f, w = _writer(out / "observations.csv")
    with f:
        w.writerow(OBSERVATIONS.names)
        text_cols = [i for i, f in enumerate(OBSERVATIONS.fields) if f.type == "string"]
        rows = s.connection().execute(q.execution_options(yield_per=5000, stream_results=True)).mappings()
        for r in itertools.chain(rows, (e.row() for e in derived)):
            dep = r["deployment_id"]
            if (r["observation_level"] == "event" and r["classification_method"] == "machine"
                    and (dep, r["event_id"]) in reviewed_events):
                replaced += 1  # a person reviewed this event: their observations stand for it
                continue
            cells = render_observation(r, deps.offsets[dep], code_of)
            if r["text_hints"]:
                cells = apply_hints(cells, OBSERVATIONS.names, r["text_hints"])
            if not cells[4]:
                no_time += 1
                continue
            if redactor is not None and redactor.may_hold("\x1f".join([cells[i] for i in text_cols])):
                for i in text_cols:
                    cells[i] = redactor.text(cells[i])
            if r["scientific_name"]:
                stats.names.add(r["scientific_name"])
            stats.levels.add(r["observation_level"])
            if r["individual_id"] and r["individual_id"] in codes:
                stats.individual_ids.add(r["individual_id"])
            w.writerow(cells)
            n += 1
    if no_time:
        rep.warnings.append(f"{no_time} event observations without a start time were left out")
    if derived:
        rep.counts["events_reviewed"] = len(reviewed_events)
    if replaced:
        rep.warnings.append(
            f"{replaced} machine event observation(s) were replaced by people's review of the same events"
        )
    rep.counts["observations"] = n
    return stats


def _export_individuals(s: Session, path: Path, ids: set[str], redactor: Redactor | None) -> int:
    codes = dict(s.execute(select(Individual.id, Individual.code)).all())

    def code_of(i: str | None) -> str:
        return "" if i is None else codes.get(i, i)

    n = 0
    f, w = _writer(path)
    with f:
        w.writerow(INDIVIDUALS.names)
        q = select(
            Individual.code, Individual.name, Individual.scientific_name, Individual.sex, Individual.first_seen,
            Individual.last_seen, Individual.merged_into, Individual.notes, Individual.extra, Individual.text_hints,
        ).where(Individual.id.in_(ids)).order_by(Individual.code)  # fmt: skip
        for r in s.execute(q).mappings():
            cells = apply_hints(render_individual(r, code_of), INDIVIDUALS.names, r["text_hints"])
            if redactor is not None:
                cells = [redactor.text(c) for c in cells]
            w.writerow(cells)
            n += 1
    return n


def _export_extra_resources(
    ws: Workspace, project: Project | None, stored: Mapping[str, Any], out: Path
) -> list[dict[str, Any]]:
    """Resources a source package had beyond the standard tables, written back as they came."""
    resources = [r for r in stored.get("resources", []) if isinstance(r, dict)]
    files = (project.extra or {}).get("resource_files", {}) if project else {}
    for r in resources:
        key = files.get(r.get("name"))
        if key and isinstance(r.get("path"), str) and ws.derived.exists(key):
            target = out / r["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ws.derived.path(key), target)
    return resources


def _bbox_polygon(lons: list[float], lats: list[float]) -> dict[str, Any]:
    x0, x1, y0, y1 = min(lons), max(lons), min(lats), max(lats)
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def _metadata(
    project: Project | None,
    stored: dict[str, Any],
    resources: list[dict[str, Any]],
    deps: _Deps,
    media: _MediaStats,
    obs: _ObsStats,
    rep: ExportReport,
    name: str | None,
    given: PackageMetadata,
) -> dict[str, Any]:
    """datapackage.json: what the source package said, with what the data now says on top.

    Kept from the source: every property Pardus does not compute. Recomputed from what was
    written: resources, profile, spatial and temporal scope, taxa (keeping the source's taxon
    details), capture methods and observation levels, and the coordinate precision.
    """
    meta: dict[str, Any] = stored if stored else {}
    meta["resources"] = resources
    meta["profile"] = PROFILE_URL
    if name is not None:
        meta["name"] = name
    if not stored:
        title = project.title if project else "Camera-trap observations exported by Pardus"
        meta.update(
            {
                "name": name or re.sub(r"[^a-z0-9._-]+", "-", (project.id if project else "pardus").lower()),
                "id": project.id if project else new_id(),
                "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "title": title,
                "contributors": [{"title": title, "role": "rightsHolder"}],
                "licenses": [
                    {"name": "CC-BY-4.0", "scope": "data"},
                    {"name": "CC-BY-4.0", "scope": "media"},
                ],
            }
        )
        if given.is_empty():
            rep.warnings.append(
                "no source metadata: contributors, licenses (CC-BY-4.0) and samplingDesign (targeted) are "
                "defaults; set them with --title, --contributor, --license, --rights-holder or --metadata FILE"
            )
    _apply_metadata(meta, given)
    meta.setdefault("created", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    proj = meta.get("project") if isinstance(meta.get("project"), dict) else {}
    if project is not None:
        if not given.project_title and "title" not in (given.extra.get("project") or {}):
            proj["title"] = project.title
        if project.description is not None and not given.project_description:
            proj["description"] = project.description
        proj.setdefault("id", project.id)
    proj.setdefault("title", meta.get("title", "Pardus"))
    proj.setdefault("samplingDesign", "targeted")
    methods = [m for m in ("activityDetection", "timeLapse") if m in media.capture_methods]
    cm = list(proj.get("captureMethod") or [])
    proj["captureMethod"] = cm + [m for m in methods if m not in cm] or ["activityDetection"]
    proj.setdefault("individualAnimals", bool(obs.individual_ids))
    if obs.individual_ids:
        proj["individualAnimals"] = True
    levels = list(proj.get("observationLevel") or [])
    proj["observationLevel"] = levels + [v for v in ("media", "event") if v in obs.levels and v not in levels]
    meta["project"] = proj
    if rep.coordinate_precision is not None:
        prev = meta.get("coordinatePrecision")
        meta["coordinatePrecision"] = max(prev, rep.coordinate_precision) if isinstance(prev, int | float) else (
            rep.coordinate_precision
        )
        rep.coordinate_precision = meta["coordinatePrecision"]
    meta["spatial"] = _bbox_polygon(deps.lons, deps.lats)
    meta["temporal"] = {"start": min(deps.start_dates), "end": max(deps.end_dates)}
    known = {t.get("scientificName"): t for t in meta.get("taxonomic", []) if isinstance(t, dict)}
    if set(known) != obs.names:
        meta["taxonomic"] = [known.get(n) or {"scientificName": n} for n in sorted(obs.names)]
    else:
        meta.setdefault("taxonomic", [])
    return meta


# --- merging two packages ---------------------------------------------------------------------


def merge_packages(
    x: Path | str,
    y: Path | str,
    out: Path | str,
    *,
    names: tuple[str, str] | None = None,
    validate: bool = True,
) -> ValidationReport | None:
    """Merge two Camtrap DP packages into one, as INBO's camtrapdp::merge_camtrapdp() does.

    Identifiers that occur in both packages (deploymentID, mediaID, observationID, eventID) get
    the package's name as prefix ('x_00a2c20d'); the others stay. Extra resources are kept, with
    clashing names prefixed. Metadata: contributors, keywords, sources, licenses, related
    identifiers and references are combined without duplicates; descriptions joined; project
    titles joined with ' / '; coordinatePrecision is the coarser; spatial, temporal and taxonomic
    scope are computed again; name, id, title, image, homepage and citation are dropped, as they
    described the inputs and not the merge. Rows stream through; only ID sets are held in memory.
    """
    xd, xdesc = read_descriptor(x)
    yd, ydesc = read_descriptor(y)
    for d in (xdesc, ydesc):
        check_version(d)
    px, py = names or (xdesc.get("name"), ydesc.get("name"))
    for label, n in (("first", px), ("second", py)):
        if not isinstance(n, str) or not n:
            raise CamtrapDPError(
                f"the {label} package has no name; give each package a unique name "
                "(datapackage.json 'name', or --names x y) so clashing IDs can be told apart"
            )
    if px == py:
        raise CamtrapDPError(f"both packages are named {px!r}; give them different names (--names x y)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    xf = {t: _resource_path(xd, xdesc, t) for t in TABLES}
    yf = {t: _resource_path(yd, ydesc, t) for t in TABLES}
    _check_resource_paths(xd, xdesc)
    _check_resource_paths(yd, ydesc)

    def ids(files: Mapping[str, Path]) -> dict[str, set[str]]:
        sets: dict[str, set[str]] = {"deploymentID": set(), "mediaID": set(), "observationID": set(), "eventID": set()}
        for _, r in read_csv_rows(files["deployments"]):
            sets["deploymentID"].add(r["deploymentID"])
        for _, r in read_csv_rows(files["media"]):
            sets["mediaID"].add(r["mediaID"])
        for _, r in read_csv_rows(files["observations"]):
            sets["observationID"].add(r["observationID"])
            if r.get("eventID", "") not in MISSING_VALUES:
                sets["eventID"].add(r["eventID"])
        return sets

    xi, yi = ids(xf), ids(yf)
    clash = {k: xi[k] & yi[k] for k in xi}
    key_cols = {"deployments": ("deploymentID",), "media": ("mediaID", "deploymentID"),
                "observations": ("observationID", "deploymentID", "mediaID", "eventID")}  # fmt: skip
    lats: list[float] = []
    lons: list[float] = []
    starts: list[str] = []
    ends: list[str] = []
    taxa: set[str] = set()
    for t in TABLES:
        f, w = _writer(out / f"{t}.csv")
        with f:
            w.writerow(SCHEMAS[t].names)
            for files, pre in ((xf, px), (yf, py)):
                for _, r in read_csv_rows(files[t]):
                    for col in key_cols[t]:
                        v = r.get(col, "")
                        if v not in MISSING_VALUES and v in clash[col]:
                            r[col] = f"{pre}_{v}"
                    if t == "deployments":
                        lats.append(float(r["latitude"]))
                        lons.append(float(r["longitude"]))
                        starts.append(r["deploymentStart"][:10])
                        ends.append(r["deploymentEnd"][:10])
                    elif t == "observations" and r.get("scientificName", "") not in MISSING_VALUES:
                        taxa.add(r["scientificName"])
                    w.writerow([r.get(n, "") for n in SCHEMAS[t].names])

    # Extra resources: all of x's, then y's; names (and files) in both get the package prefix.
    x_extra = [r for r in xdesc["resources"] if isinstance(r, dict) and r.get("name") not in TABLES]
    y_extra = [r for r in ydesc["resources"] if isinstance(r, dict) and r.get("name") not in TABLES]
    xn, yn = {r["name"] for r in x_extra}, {r["name"] for r in y_extra}
    resources: list[dict[str, Any]] = [
        {"name": t, "path": f"{t}.csv", "profile": "tabular-data-resource", "format": "csv",
         "mediatype": "text/csv", "encoding": "utf-8", "schema": schema_url(t)}
        for t in TABLES
    ]  # fmt: skip
    for extra, other, pre, d in ((x_extra, yn, px, xd), (y_extra, xn, py, yd)):
        for r in extra:
            r = copy.deepcopy(r)
            if r["name"] in other:
                r["name"] = f"{pre}_{r['name']}"
                if isinstance(r.get("path"), str) and "://" not in r["path"]:
                    src = d / r["path"]
                    r["path"] = f"{pre}_{Path(r['path']).name}"
                    if src.is_file():
                        shutil.copyfile(src, out / r["path"])
            elif isinstance(r.get("path"), str) and "://" not in r["path"] and (d / r["path"]).is_file():
                (out / r["path"]).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(d / r["path"], out / r["path"])
            resources.append(r)

    def unique(items: Iterable[Any]) -> list[Any]:
        seen: list[Any] = []
        for i in items:
            if i not in seen:
                seen.append(i)
        return seen

    xp = xdesc.get("project") or {}
    yp = ydesc.get("project") or {}
    meta = copy.deepcopy(xdesc)
    for k in ("name", "id", "title", "image", "homepage", "bibliographicCitation"):
        meta.pop(k, None)
    meta["resources"] = resources
    meta["profile"] = PROFILE_URL
    meta["created"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    meta["contributors"] = unique((xdesc.get("contributors") or []) + (ydesc.get("contributors") or []))
    descs = [d for d in (xdesc.get("description"), ydesc.get("description")) if d]
    if descs:
        meta["description"] = "\n".join(descs)
    meta["version"] = "1.0"
    meta["keywords"] = unique((xdesc.get("keywords") or []) + (ydesc.get("keywords") or []))
    meta["sources"] = unique((xdesc.get("sources") or []) + (ydesc.get("sources") or []))
    meta["licenses"] = unique((xdesc.get("licenses") or []) + (ydesc.get("licenses") or []))
    proj = copy.deepcopy(xp)
    for k in ("id", "acronym", "path"):
        proj.pop(k, None)
    proj["title"] = " / ".join(str(p.get("title", "")) for p in (xp, yp))
    pdescs = [p.get("description") for p in (xp, yp) if p.get("description")]
    if pdescs:
        proj["description"] = "\n".join(pdescs)
    proj["samplingDesign"] = xp.get("samplingDesign", yp.get("samplingDesign"))
    proj["captureMethod"] = unique((xp.get("captureMethod") or []) + (yp.get("captureMethod") or []))
    proj["individualAnimals"] = bool(xp.get("individualAnimals")) or bool(yp.get("individualAnimals"))
    proj["observationLevel"] = unique((xp.get("observationLevel") or []) + (yp.get("observationLevel") or []))
    meta["project"] = proj
    precisions = [p for p in (xdesc.get("coordinatePrecision"), ydesc.get("coordinatePrecision")) if p is not None]
    if precisions:
        meta["coordinatePrecision"] = max(precisions)
    meta["spatial"] = _bbox_polygon(lons, lats)
    meta["temporal"] = {"start": min(starts), "end": max(ends)}
    known: dict[str, Any] = {}
    for t in (xdesc.get("taxonomic") or []) + (ydesc.get("taxonomic") or []):
        if isinstance(t, dict):
            known.setdefault(t.get("scientificName"), t)
    meta["taxonomic"] = [known.get(n) or {"scientificName": n} for n in sorted(taxa)]
    related = (xdesc.get("relatedIdentifiers") or []) + (ydesc.get("relatedIdentifiers") or [])
    for pid in (xdesc.get("id"), ydesc.get("id")):
        if isinstance(pid, str) and "doi" in pid:
            related.append({
                "relationType": "IsDerivedFrom", "relatedIdentifier": pid,
                "resourceTypeGeneral": "Dataset", "relatedIdentifierType": "DOI",
            })  # fmt: skip
    meta["relatedIdentifiers"] = unique(related)
    meta["references"] = unique((xdesc.get("references") or []) + (ydesc.get("references") or []))
    with open(out / "datapackage.json", "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2, ensure_ascii=False)
        f.write("\n")
    return validate_package(out) if validate else None
