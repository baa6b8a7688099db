"""Camtrap DP 1.0.2, described in Python from the standard, and a validator that needs no network.

The official profile and Table Schemas are JSON documents that reference other schemas by URL;
a park office has no internet when it prepares a GBIF upload, and a package must be checked
before it leaves. So the rules Pardus relies on are written here once (from
https://camtrap-dp.tdwg.org/data and /metadata, version 1.0.2) and used three ways: to parse what
an import reads, to render what an export writes, and to validate a finished package row by row
without loading it into memory.

Reference: Bubnicki J.W. et al. (2023) Camtrap DP: an open standard for the FAIR exchange and
archiving of camera trap data. Remote Sensing in Ecology and Conservation. doi:10.1002/rse2.374
"""

from __future__ import annotations

import csv
import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

VERSION = "1.0.2"
SUPPORTED_VERSIONS = ("1.0", "1.0.1", "1.0.2")
BASE_URL = "https://raw.githubusercontent.com/tdwg/camtrap-dp"
PROFILE_URL = f"{BASE_URL}/{VERSION}/camtrap-dp-profile.json"
MISSING_VALUES = frozenset({"", "NA", "NaN", "nan"})
TRUE_VALUES = frozenset({"true", "True", "TRUE", "1"})
FALSE_VALUES = frozenset({"false", "False", "FALSE", "0"})
DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
TABLES = ("deployments", "media", "observations")


def schema_url(table: str, version: str = VERSION) -> str:
    return f"{BASE_URL}/{version}/{table}-table-schema.json"


@dataclass(frozen=True)
class Field:
    """One column of a Camtrap DP table, with the constraints the Table Schema puts on it."""

    name: str
    type: str  # string | number | integer | boolean | datetime | any
    required: bool = False
    unique: bool = False
    enum: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None


@dataclass(frozen=True)
class Table:  # noqa: B903 - names is cached on first use
    name: str
    fields: tuple[Field, ...]
    primary_key: str
    foreign_keys: tuple[tuple[str, str, str], ...] = ()  # (field, table, field)

    @functools.cached_property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]


FEATURE_TYPES = (
    "roadPaved", "roadDirt", "trailHiking", "trailGame", "roadUnderpass", "roadOverpass", "roadBridge",
    "culvert", "burrow", "nestSite", "carcass", "waterSource", "fruitingTree",
)  # fmt: skip

DEPLOYMENTS = Table(
    "deployments",
    (
        Field("deploymentID", "string", required=True, unique=True),
        Field("locationID", "string"),
        Field("locationName", "string"),
        Field("latitude", "number", required=True, minimum=-90, maximum=90),
        Field("longitude", "number", required=True, minimum=-180, maximum=180),
        Field("coordinateUncertainty", "integer", minimum=1),
        Field("deploymentStart", "datetime", required=True),
        Field("deploymentEnd", "datetime", required=True),
        Field("setupBy", "string"),
        Field("cameraID", "string"),
        Field("cameraModel", "string"),
        Field("cameraDelay", "integer", minimum=0),
        Field("cameraHeight", "number", minimum=0),
        Field("cameraDepth", "number", minimum=0),
        Field("cameraTilt", "integer", minimum=-90, maximum=90),
        Field("cameraHeading", "integer", minimum=0, maximum=360),
        Field("detectionDistance", "number", minimum=0),
        Field("timestampIssues", "boolean"),
        Field("baitUse", "boolean"),
        Field("featureType", "string", enum=FEATURE_TYPES),
        Field("habitat", "string"),
        Field("deploymentGroups", "string"),
        Field("deploymentTags", "string"),
        Field("deploymentComments", "string"),
    ),
    primary_key="deploymentID",
)

MEDIA = Table(
    "media",
    (
        Field("mediaID", "string", required=True, unique=True),
        Field("deploymentID", "string", required=True),
        Field("captureMethod", "string", enum=("activityDetection", "timeLapse")),
        Field("timestamp", "datetime", required=True),
        # Relative paths may not start with '.', '/' or '~' nor contain '..' (they stay in the package).
        Field("filePath", "string", required=True, pattern=r"^(?=^[^./~])(^((?!\.{2}).)*$).*$"),
        Field("filePublic", "boolean", required=True),
        Field("fileName", "string"),
        Field("fileMediatype", "string", required=True, pattern=r"^(image|video|audio)/.*$"),
        Field("exifData", "any"),
        Field("favorite", "boolean"),
        Field("mediaComments", "string"),
    ),
    primary_key="mediaID",
    foreign_keys=(("deploymentID", "deployments", "deploymentID"),),
)

OBSERVATIONS = Table(
    "observations",
    (
        Field("observationID", "string", required=True, unique=True),
        Field("deploymentID", "string", required=True),
        Field("mediaID", "string"),
        Field("eventID", "string"),
        Field("eventStart", "datetime", required=True),
        Field("eventEnd", "datetime", required=True),
        Field("observationLevel", "string", required=True, enum=("media", "event")),
        Field(
            "observationType",
            "string",
            required=True,
            enum=("animal", "human", "vehicle", "blank", "unknown", "unclassified"),
        ),
        Field("cameraSetupType", "string", enum=("setup", "calibration")),
        Field("scientificName", "string"),
        Field("count", "integer", minimum=1),
        Field("lifeStage", "string", enum=("adult", "subadult", "juvenile")),
        Field("sex", "string", enum=("female", "male")),
        Field("behavior", "string"),
        Field("individualID", "string"),
        Field("individualPositionRadius", "number", minimum=0),
        Field("individualPositionAngle", "number", minimum=-90, maximum=90),
        Field("individualSpeed", "number", minimum=0),
        Field("bboxX", "number", minimum=0, maximum=1),
        Field("bboxY", "number", minimum=0, maximum=1),
        Field("bboxWidth", "number", minimum=1e-15, maximum=1),
        Field("bboxHeight", "number", minimum=1e-15, maximum=1),
        Field("classificationMethod", "string", enum=("human", "machine")),
        Field("classifiedBy", "string"),
        Field("classificationTimestamp", "datetime"),
        Field("classificationProbability", "number", minimum=0, maximum=1),
        Field("observationTags", "string"),
        Field("observationComments", "string"),
    ),
    primary_key="observationID",
    foreign_keys=(
        ("deploymentID", "deployments", "deploymentID"),
        ("mediaID", "media", "mediaID"),
    ),
)

# Pardus's own extra resource: the individuals catalogue the observations' individualID refers
# to. Camtrap DP has no such table; packages may carry extra resources, described inline.
INDIVIDUALS = Table(
    "individuals",
    (
        Field("individualID", "string", required=True, unique=True),
        Field("individualName", "string"),
        Field("scientificName", "string"),
        Field("sex", "string", enum=("female", "male")),
        Field("firstSeen", "datetime"),
        Field("lastSeen", "datetime"),
        Field("mergedInto", "string"),
        Field("individualRemarks", "string"),
    ),
    primary_key="individualID",
)

SCHEMAS = {t.name: t for t in (DEPLOYMENTS, MEDIA, OBSERVATIONS)}


def individuals_resource(path: str = "individuals.csv", name: str = "individuals") -> dict[str, Any]:
    """Descriptor of the individuals resource, with an inline Table Schema so any validator can check it."""
    type_map = {"datetime": ("datetime", DATETIME_FORMAT)}
    fields = []
    for f in INDIVIDUALS.fields:
        d: dict[str, Any] = {"name": f.name, "type": type_map.get(f.type, (f.type, None))[0]}
        if f.type == "datetime":
            d["format"] = DATETIME_FORMAT
        cons: dict[str, Any] = {}
        if f.required:
            cons["required"] = True
        if f.unique:
            cons["unique"] = True
        if f.enum:
            cons["enum"] = list(f.enum)
        if cons:
            d["constraints"] = cons
        fields.append(d)
    return {
        "name": name,
        "path": path,
        "profile": "tabular-data-resource",
        "format": "csv",
        "mediatype": "text/csv",
        "encoding": "utf-8",
        "description": (
            "Individually recognised animals (e.g. by coat pattern) that observations.individualID "
            "refers to. Not part of the Camtrap DP model; added by Pardus."
        ),
        "schema": {"fields": fields, "missingValues": [""], "primaryKey": INDIVIDUALS.primary_key},
    }


# --- reading and writing single values -------------------------------------------------------

_NUMBER_RE = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_INTEGER_RE = re.compile(r"[+-]?\d+")


class ValueError_(ValueError):
    """A cell that does not hold a value of its column's type; the message says what was expected."""


def parse_value(text: str, type_: str) -> Any:
    """Parse one CSV cell the way a Table Schema reader must; None for the missing values."""
    if text in MISSING_VALUES:
        return None
    if type_ in ("string", "any"):
        return text
    if type_ == "number":
        if not _NUMBER_RE.fullmatch(text):
            raise ValueError_(f"{text!r} is not a number")
        return float(text)
    if type_ == "integer":
        if not _INTEGER_RE.fullmatch(text):
            raise ValueError_(f"{text!r} is not a whole number")
        return int(text)
    if type_ == "boolean":
        if text in TRUE_VALUES:
            return True
        if text in FALSE_VALUES:
            return False
        raise ValueError_(f"{text!r} is not true or false")
    if type_ == "datetime":
        try:
            return datetime.strptime(text, DATETIME_FORMAT)
        except ValueError:
            raise ValueError_(
                f"{text!r} is not a date-time with a time zone, like 2020-05-30T04:57:37+02:00 or 2020-05-30T02:57:37Z"
            ) from None
    raise ValueError_(f"unknown column type {type_!r}")


def format_number(v: float | None) -> str:
    """Shortest text that reads back to the same float ('0.5', '12', '1e-05')."""
    if v is None:
        return ""
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def format_bool(v: bool | None) -> str:
    return "" if v is None else ("true" if v else "false")


def format_datetime(v: datetime | None, offset_minutes: int) -> str:
    """An instant as local time at the deployment's UTC offset, to the second, e.g. 2024-05-01T10:00:00+10:00."""
    if v is None:
        return ""
    from datetime import timedelta, timezone

    local = v.astimezone(timezone(timedelta(minutes=offset_minutes)))
    sign = "+" if offset_minutes >= 0 else "-"
    hh, mm = divmod(abs(offset_minutes), 60)
    return local.strftime("%Y-%m-%dT%H:%M:%S") + f"{sign}{hh:02d}:{mm:02d}"


# --- validation ------------------------------------------------------------------------------


@dataclass
class Issue:
    """One problem in a package: where it is (file, row, column) and what is wrong."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class ValidationReport:
    issues: list[Issue] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    max_issues: int = 200

    @property
    def valid(self) -> bool:
        return not self.issues

    def add(self, where: str, message: str) -> None:
        if len(self.issues) < self.max_issues:
            self.issues.append(Issue(where, message))

    def summary(self, limit: int = 20) -> str:
        if self.valid:
            return "valid Camtrap DP " + VERSION + " (" + ", ".join(f"{v} {k}" for k, v in self.rows.items()) + ")"
        lines = [str(i) for i in self.issues[:limit]]
        more = len(self.issues) - limit
        if more > 0:
            lines.append(f"... and {more} more")
        return "\n".join(lines)


def check_cell(f: Field, text: str) -> tuple[Any, str | None]:
    """Parse and check one cell against its field; returns (value, problem or None)."""
    try:
        value = parse_value(text, f.type)
    except ValueError_ as exc:
        return None, str(exc)
    if value is None:
        return None, (f"{f.name} is required but empty" if f.required else None)
    if f.enum is not None and value not in f.enum:
        return value, f"{value!r} is not one of: {', '.join(f.enum)}"
    if f.minimum is not None and value < f.minimum:
        return value, f"{value} is below the minimum {f.minimum:g}"
    if f.maximum is not None and value > f.maximum:
        return value, f"{value} is above the maximum {f.maximum:g}"
    if f.pattern is not None and not re.fullmatch(f.pattern, text):
        return value, f"{text!r} does not have the form required for {f.name}"
    return value, None


def read_csv_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a CSV file as dicts, numbered as a spreadsheet shows them (header is row 1); BOM tolerated."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            return
        for i, row in enumerate(reader, start=2):
            if len(row) != len(header):
                yield i, {"__width__": str(len(row)), **dict(zip(header, row, strict=False))}
                continue
            yield i, dict(zip(header, row, strict=True))


def csv_header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        return next(csv.reader(f), [])


def validate_table_file(
    table: Table, path: Path, report: ValidationReport, keys: dict[str, set[str]] | None = None
) -> set[str]:
    """Check one CSV against its table; returns its primary-key values (for foreign keys)."""
    keys = keys if keys is not None else {}
    header = csv_header(path)
    label = path.name
    if header != table.names:
        missing = [n for n in table.names if n not in header]
        extra = [n for n in header if n not in table.names]
        msg = "the columns are not those of Camtrap DP " + table.name
        if missing:
            msg += f"; missing: {', '.join(missing)}"
        if extra:
            msg += f"; not in the standard: {', '.join(extra)}"
        if not missing and not extra:
            msg += f"; they are in a different order (expected {', '.join(table.names)})"
        report.add(f"{label} row 1", msg)
    by_name = {f.name: f for f in table.fields}
    seen: dict[str, set[str]] = {f.name: set() for f in table.fields if f.unique}
    n = 0
    for rownum, row in read_csv_rows(path):
        n += 1
        if "__width__" in row:
            report.add(f"{label} row {rownum}", f"has {row['__width__']} cells, the header has {len(header)}")
            continue
        for name, text in row.items():
            f = by_name.get(name)
            if f is None:
                continue
            value, problem = check_cell(f, text)
            if problem:
                report.add(f"{label} row {rownum} column {name}", problem)
            if f.unique and value is not None:
                if text in seen[name]:
                    report.add(f"{label} row {rownum} column {name}", f"{text!r} appears more than once")
                seen[name].add(text)
        for fk_field, ref_table, _ref_field in table.foreign_keys:
            v = row.get(fk_field, "")
            if v not in MISSING_VALUES and ref_table in keys and v not in keys[ref_table]:
                report.add(
                    f"{label} row {rownum} column {fk_field}",
                    f"{v!r} is not a {fk_field} of {ref_table}.csv",
                )
    report.rows[table.name] = n
    return seen.get(table.primary_key, set())


ROLES = ("contact", "principalInvestigator", "rightsHolder", "publisher", "contributor")
SAMPLING_DESIGNS = (
    "simpleRandom", "systematicRandom", "clusteredRandom", "experimental", "targeted", "opportunistic",
)  # fmt: skip
TAXON_RANKS = ("kingdom", "phylum", "class", "order", "family", "genus", "species", "subspecies")
GEOJSON_TYPES = (
    "Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon", "GeometryCollection",
    "Feature", "FeatureCollection",
)  # fmt: skip


def _is_date(text: Any) -> bool:
    try:
        date.fromisoformat(text)
        return isinstance(text, str) and len(text) == 10
    except (TypeError, ValueError):
        return False


def validate_metadata(desc: dict[str, Any], report: ValidationReport) -> None:
    """The profile's rules for datapackage.json (Data Package + Camtrap DP additions)."""
    where = "datapackage.json"
    for key in ("resources", "profile", "created", "contributors", "project", "spatial", "temporal", "taxonomic"):
        if key not in desc:
            report.add(where, f"the required property '{key}' is missing")
    resources = desc.get("resources", [])
    if not isinstance(resources, list) or len(resources) < 3:
        report.add(where, "resources must list at least deployments, media and observations")
        resources = resources if isinstance(resources, list) else []
    names = [r.get("name") for r in resources if isinstance(r, dict)]
    if len(set(names)) != len(names):
        report.add(where, "two resources have the same name")
    for t in TABLES:
        if t not in names:
            report.add(where, f"there is no '{t}' resource")
    for r in resources:
        if not isinstance(r, dict) or "name" not in r:
            report.add(where, "every resource needs a name")
            continue
        rw = f"{where} resource '{r['name']}'"
        if r["name"] in TABLES:
            for key in ("path", "profile", "schema"):
                if key not in r:
                    report.add(rw, f"'{key}' is missing")
            if r.get("profile") != "tabular-data-resource":
                report.add(rw, "profile must be 'tabular-data-resource'")
            if not isinstance(r.get("schema"), str) or VERSION not in r.get("schema", ""):
                report.add(rw, f"schema must be the URL of the Camtrap DP {VERSION} Table Schema")
        elif "path" not in r and "data" not in r:
            report.add(rw, "needs a path or inline data")
    if not isinstance(desc.get("profile"), str) or "://" not in desc.get("profile", ""):
        report.add(where, "profile must be a URL")
    created = desc.get("created")
    if created is not None:
        try:
            datetime.fromisoformat(str(created).replace("Z", "+00:00"))
        except ValueError:
            report.add(where, f"created {created!r} is not an ISO 8601 date-time")
    contributors = desc.get("contributors", [])
    if not isinstance(contributors, list) or not contributors:
        report.add(where, "contributors must list at least one person or organisation")
    else:
        for i, c in enumerate(contributors):
            if not isinstance(c, dict) or not c.get("title"):
                report.add(f"{where} contributors[{i}]", "needs a title (the name)")
            elif "role" in c and c["role"] not in ROLES:
                report.add(f"{where} contributors[{i}]", f"role {c['role']!r} is not one of: {', '.join(ROLES)}")
    licenses = desc.get("licenses")
    if licenses is not None:
        if not isinstance(licenses, list) or len(licenses) < 2:
            report.add(where, "licenses must give one for the data and one for the media")
        else:
            for i, lic in enumerate(licenses):
                if not isinstance(lic, dict) or lic.get("scope") not in ("data", "media"):
                    report.add(f"{where} licenses[{i}]", "scope must be 'data' or 'media'")
                elif not (lic.get("name") or lic.get("path")):
                    report.add(f"{where} licenses[{i}]", "needs a name or a path")
    project = desc.get("project")
    if isinstance(project, dict):
        for key in ("title", "samplingDesign", "captureMethod", "individualAnimals", "observationLevel"):
            if key not in project:
                report.add(f"{where} project", f"the required property '{key}' is missing")
        if "samplingDesign" in project and project["samplingDesign"] not in SAMPLING_DESIGNS:
            report.add(f"{where} project", f"samplingDesign must be one of: {', '.join(SAMPLING_DESIGNS)}")
        cm = project.get("captureMethod", [])
        if not isinstance(cm, list) or not cm or len(set(cm)) != len(cm) or any(
            c not in ("activityDetection", "timeLapse") for c in cm
        ):
            report.add(f"{where} project", "captureMethod must list activityDetection and/or timeLapse, once each")
        if "individualAnimals" in project and not isinstance(project["individualAnimals"], bool):
            report.add(f"{where} project", "individualAnimals must be true or false")
        ol = project.get("observationLevel", [])
        if not isinstance(ol, list) or any(v not in ("media", "event") for v in ol):
            report.add(f"{where} project", "observationLevel must list media and/or event")
    elif project is not None:
        report.add(where, "project must be an object")
    cp = desc.get("coordinatePrecision")
    if cp is not None and (isinstance(cp, bool) or not isinstance(cp, int | float)):
        report.add(where, "coordinatePrecision must be a number")
    spatial = desc.get("spatial")
    if spatial is not None and (not isinstance(spatial, dict) or spatial.get("type") not in GEOJSON_TYPES):
        report.add(where, "spatial must be a GeoJSON object (e.g. a Polygon)")
    temporal = desc.get("temporal")
    if isinstance(temporal, dict):
        for key in ("start", "end"):
            if not _is_date(temporal.get(key)):
                report.add(f"{where} temporal", f"{key} must be a date like 2024-05-01")
    elif temporal is not None:
        report.add(where, "temporal must be an object with start and end")
    taxonomic = desc.get("taxonomic", [])
    if isinstance(taxonomic, list):
        for i, t in enumerate(taxonomic):
            if not isinstance(t, dict) or not t.get("scientificName"):
                report.add(f"{where} taxonomic[{i}]", "needs a scientificName")
            elif "taxonRank" in t and t["taxonRank"] not in TAXON_RANKS:
                report.add(f"{where} taxonomic[{i}]", f"taxonRank must be one of: {', '.join(TAXON_RANKS)}")
    else:
        report.add(where, "taxonomic must be a list")
    for i, r in enumerate(desc.get("relatedIdentifiers", []) or []):
        for key in ("relationType", "relatedIdentifier", "relatedIdentifierType"):
            if not isinstance(r, dict) or key not in r:
                report.add(f"{where} relatedIdentifiers[{i}]", f"'{key}' is missing")
    refs = desc.get("references")
    if refs is not None and (not isinstance(refs, list) or any(not isinstance(x, str) for x in refs)):
        report.add(where, "references must be a list of texts")


def is_individuals_resource(res: Mapping[str, Any]) -> bool:
    """Whether an extra resource is Pardus's individuals table, whatever it was named.

    Told by its inline schema (the fields Pardus writes), not by its name or path: an export renames
    it (pardus_individuals.csv) when a source package already had an 'individuals' resource, and a
    check that looked at the name let that one through unchecked.
    """
    schema = res.get("schema")
    if not isinstance(schema, dict) or not isinstance(schema.get("fields"), list):
        return False
    names = [f.get("name") for f in schema["fields"] if isinstance(f, dict)]
    return names == INDIVIDUALS.names


def validate_package(directory: Path | str, *, max_issues: int = 200) -> ValidationReport:
    """Validate a Camtrap DP 1.0.2 package folder offline: metadata, every cell, keys across tables.

    Streams each CSV once, so a package with millions of observations is checked in bounded memory
    (apart from the sets of identifiers that foreign keys need).
    """
    directory = Path(directory)
    report = ValidationReport(max_issues=max_issues)
    dp = directory / "datapackage.json"
    if not dp.is_file():
        report.add(str(directory), "there is no datapackage.json here")
        return report
    try:
        desc = json.loads(dp.read_text(encoding="utf-8-sig"))
    except ValueError as exc:
        report.add("datapackage.json", f"is not valid JSON ({exc})")
        return report
    validate_metadata(desc, report)
    by_name = {r.get("name"): r for r in desc.get("resources", []) if isinstance(r, dict)}
    keys: dict[str, set[str]] = {}
    for t in TABLES:
        res = by_name.get(t)
        if not res or not isinstance(res.get("path"), str):
            continue
        path = directory / res["path"]
        if not path.is_file():
            report.add(f"datapackage.json resource '{t}'", f"the file {res['path']} is missing")
            continue
        keys[t] = validate_table_file(SCHEMAS[t], path, report, keys)
    for name, res in by_name.items():
        if name in TABLES or not isinstance(res.get("path"), str):
            continue
        path = directory / res["path"]
        if not path.is_file():
            report.add(f"datapackage.json resource '{name}'", f"the file {res['path']} is missing")
        elif is_individuals_resource(res):
            validate_table_file(INDIVIDUALS, path, report)
    return report
