"""Read Movebank CSV exports (GPS collars and other tags) into typed records, or refuse them whole.

Movebank's "standard" export has one row per tag record with ``event-id``, ``timestamp`` (UTC,
``yyyy-MM-dd HH:mm:ss.SSS``), ``location-long``/``location-lat`` (WGS84; empty when the tag got
no fix), ``individual-local-identifier``, ``tag-local-identifier``, ``sensor-type`` and ``visible``
(false for a record the data owner marked as an outlier), plus any number of sensor columns
(``eobs:*``, ``gps:*``, Env-DATA annotations). Real exports vary: older ones have no ``event-id``,
R's move/move2 write dots or underscores (``location.long``), some files are quoted throughout,
CR-only (old Mac) line ends, gzip or zip. Those variants are read; anything that would have to be
guessed (a second header pasted in, a coordinate that is not a number, a latitude of 91) refuses
the whole file with the line and the reason, so a store never holds half a file.

Movebank defines ``timestamp`` as UTC; a timestamp carrying an explicit offset is converted. A file
that has only ``study-local-timestamp`` is refused: its zone would have to be guessed.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

MAX_BYTES = 512 * 1024 * 1024
MAX_ERRORS_SHOWN = 5
MISSING = frozenset({"", "na", "nan", "null", "none"})

# Canonical Movebank names and the spellings of them seen in exports (after normalising case and
# separators: "location.long", "location_long", "Location Long" all become "location-long").
ALIASES: dict[str, tuple[str, ...]] = {
    "event-id": ("event-id",),
    "timestamp": ("timestamp", "timestamp-utc"),
    "location-long": ("location-long", "longitude", "lon", "long"),
    "location-lat": ("location-lat", "latitude", "lat"),
    "individual-local-identifier": ("individual-local-identifier", "individual-id", "animal-id"),
    "tag-local-identifier": ("tag-local-identifier", "tag-id"),
    "sensor-type": ("sensor-type",),
    "visible": ("visible",),
    "manually-marked-outlier": ("manually-marked-outlier",),
    "individual-taxon-canonical-name": ("individual-taxon-canonical-name", "animal-taxon"),
    "study-name": ("study-name",),
    "gps:dop": ("gps:dop", "gps-dop"),
}
# Columns Pardus itself writes on export with --flags; recomputed on import, never stored as data.
OWN_COLUMNS = frozenset({"pardus:outlier"})
TRUE = frozenset({"true", "t", "1", "yes"})
FALSE = frozenset({"false", "f", "0", "no"})


class TelemetryFileError(ValueError):
    """A telemetry file that cannot be read as a whole; the message names the line and the fix."""


@dataclass(frozen=True)
class FixRecord:
    """One row of a Movebank export, typed. ``latitude``/``longitude`` are None for a failed fix."""

    tag_id: str
    sensor_type: str
    timestamp: datetime
    latitude: float | None
    longitude: float | None
    event_id: str | None = None
    animal: str | None = None
    visible: bool = True
    marked_outlier: bool = False
    dop: float | None = None
    taxon: str | None = None
    study: str | None = None
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def key(self) -> tuple[str, str, datetime]:
        """The record's identity in the store: the same tag, sensor and instant is the same record."""
        return (self.tag_id, self.sensor_type, self.timestamp)


@dataclass
class MovebankFile:
    """A whole file, read: its records in file order, the header as written, and what was set aside."""

    source: str
    columns: list[str]
    records: list[FixRecord]
    rows: int  # data rows in the file (blank lines not counted)
    duplicates: int = 0  # rows repeating an earlier row's (tag, sensor, time): counted, not stored twice
    encoding: str = "utf-8"


def _norm(header: str) -> str:
    return re.sub(r"[\s._]+", "-", header.strip().lower())


def read_bytes(path: Path) -> tuple[bytes, str]:
    """The CSV bytes of ``path``: plain, gzip, or the one CSV inside a zip (Movebank's download)."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise TelemetryFileError(f"{path} is {size / 1e6:.0f} MB; split it (limit {MAX_BYTES // 2**20} MiB)")
        data = path.read_bytes()
    except OSError as exc:
        raise TelemetryFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    name = path.name
    if data[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
                data = gz.read(MAX_BYTES + 1)
        except (OSError, EOFError) as exc:
            raise TelemetryFileError(f"{path} looks gzipped but cannot be unpacked: {exc}") from exc
        if len(data) > MAX_BYTES:
            raise TelemetryFileError(f"{path} unpacks to more than {MAX_BYTES // 2**20} MiB; split it")
    elif data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                csvs = [i for i in zf.infolist() if i.filename.lower().endswith(".csv") and not i.is_dir()]
                if len(csvs) != 1:
                    listed = ", ".join(i.filename for i in csvs) or "none"
                    raise TelemetryFileError(f"{path} must hold exactly one .csv file (found: {listed}); "
                                             "unpack it and import the CSV you mean")
                if csvs[0].file_size > MAX_BYTES:
                    raise TelemetryFileError(f"{csvs[0].filename} in {path} is too big; split it")
                name = f"{path.name}:{csvs[0].filename}"
                data = zf.read(csvs[0])
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise TelemetryFileError(f"{path} looks like a zip but cannot be read: {exc}") from exc
    return data, name


def decode(data: bytes) -> tuple[str, str]:
    """Text and the encoding used: a BOM decides; else UTF-8; else Latin-1 (every byte is a character
    there, so a wrong guess shows up as unknown columns, never as a crash)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise TelemetryFileError(f"the file starts like UTF-16 but is not: {exc.reason}") from exc
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def parse_time(text: str) -> datetime:
    """A Movebank timestamp as an aware UTC datetime (naive text is UTC, as Movebank defines it)."""
    t = text.strip()
    if ":" not in t or len(t) < 16:
        raise ValueError(f"timestamp {text!r} has no time of day (expected yyyy-MM-dd HH:mm:ss.SSS, UTC)")
    if t.endswith(("Z", "z")):
        t = t[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        raise ValueError(f"timestamp {text!r} is not yyyy-MM-dd HH:mm:ss.SSS (UTC)") from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _number(text: str, what: str) -> float | None:
    t = text.strip()
    if t.lower() in MISSING:
        return None
    try:
        v = float(t)
    except ValueError:
        raise ValueError(f"{what} {text[:40]!r} is not a number") from None
    if math.isnan(v):
        return None
    if math.isinf(v):
        raise ValueError(f"{what} {text[:40]!r} is not a finite number")
    return v


def _flag(text: str, what: str, default: bool) -> bool:
    t = text.strip().lower()
    if t in MISSING:
        return default
    if t in TRUE:
        return True
    if t in FALSE:
        return False
    raise ValueError(f"{what} {text[:40]!r} is neither true nor false")


def _columns(header: list[str], source: str) -> dict[str, int]:
    """Where each canonical column is; refuses a header that names one column twice."""
    if not header or all(not h.strip() for h in header):
        raise TelemetryFileError(f"{source}: the file is empty or its first line is not a header")
    seen: dict[str, int] = {}
    for i, h in enumerate(header):
        n = _norm(h)
        if n in seen and n:
            raise TelemetryFileError(f"{source}: column {h!r} appears twice in the header "
                                     "(two layouts pasted together?); export the file again")
        seen[n] = i
    where: dict[str, int] = {}
    for canon, spellings in ALIASES.items():
        found = [seen[s] for s in spellings if s in seen]
        if len(found) > 1:
            names = ", ".join(repr(header[i]) for i in found)
            raise TelemetryFileError(f"{source}: columns {names} all mean {canon!r}; keep one")
        if found:
            where[canon] = found[0]
    if "timestamp" not in where:
        hint = ""
        if "study-local-timestamp" in seen:
            hint = (" It has only study-local-timestamp, whose time zone would have to be guessed; export "
                    "again with 'timestamp' (UTC).")
        elif "tag-local-identifier" in where or "individual-local-identifier" in where:
            hint = " It may be a Movebank reference (deployment) table, not event data."
        raise TelemetryFileError(f"{source}: no 'timestamp' column, so this is not a Movebank event export "
                                 f"(columns: {', '.join(header[:8])}{' ...' if len(header) > 8 else ''}).{hint}")
    if "tag-local-identifier" not in where and "individual-local-identifier" not in where:
        raise TelemetryFileError(f"{source}: no 'tag-local-identifier' nor 'individual-local-identifier' column: "
                                 "the records cannot be given to a tag")
    if ("location-long" in where) != ("location-lat" in where):
        raise TelemetryFileError(f"{source}: it has only one of location-long / location-lat; both or neither")
    return where


def parse_movebank(text: str, source: str = "the file", encoding: str = "utf-8") -> MovebankFile:
    """Every row of a Movebank CSV as a ``FixRecord``, or ``TelemetryFileError`` naming the bad lines.

    The whole text is checked before anything is returned, so a caller that writes only what this
    returns never writes half a file. Rows repeating an earlier (tag, sensor, time) are counted in
    ``duplicates`` and left out.
    """
    if "\x00" in text:
        raise TelemetryFileError(f"{source}: the file contains NUL bytes; it is not a text CSV (or is damaged)")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, [])
        where = _columns(header, source)
        named = set(where.values())
        extra_cols = [(i, h) for i, h in enumerate(header)
                      if i not in named and h.strip() and _norm(h) not in OWN_COLUMNS]
        has_loc = "location-long" in where
        records: list[FixRecord] = []
        seen: set[tuple[str, str, datetime]] = set()
        errors: list[str] = []
        bad = rows = dups = 0

        # a missing column reads as the empty cell appended to every row (no lookup per cell)
        pad = len(header)
        i_ts = where["timestamp"]
        i_tag, i_ind = where.get("tag-local-identifier", pad), where.get("individual-local-identifier", pad)
        i_lon, i_lat = where.get("location-long", pad), where.get("location-lat", pad)
        i_sensor, i_event, i_vis = where.get("sensor-type", pad), where.get("event-id", pad), where.get("visible", pad)
        i_marked, i_dop = where.get("manually-marked-outlier", pad), where.get("gps:dop", pad)
        i_taxon, i_study = where.get("individual-taxon-canonical-name", pad), where.get("study-name", pad)
        ts_header = header[i_ts].strip().lower()

        for row in reader:
            if not row or all(not c.strip() for c in row):
                continue
            rows += 1
            line = reader.line_num
            try:
                if len(row) != len(header):
                    raise ValueError(f"{len(row)} fields where the header has {len(header)}")
                row.append("")
                if row[i_ts].strip().lower() == ts_header:
                    raise ValueError("a second header row (two files pasted together?)")
                ts = parse_time(row[i_ts])
                tag = row[i_tag].strip() or row[i_ind].strip()
                if not tag:
                    raise ValueError("no tag-local-identifier nor individual-local-identifier")
                if len(tag) > 64:
                    raise ValueError(f"tag {tag[:20]!r}... is longer than 64 characters")
                lon = lat = None
                if has_loc:
                    lon = _number(row[i_lon], "location-long")
                    lat = _number(row[i_lat], "location-lat")
                    if (lon is None) != (lat is None):
                        raise ValueError("only one of location-long / location-lat is given")
                    if lat is not None and not -90.0 <= lat <= 90.0:
                        raise ValueError(f"location-lat {lat} is outside -90..90")
                    if lon is not None and not -180.0 <= lon <= 180.0:
                        raise ValueError(f"location-long {lon} is outside -180..180")
                sensor = row[i_sensor].strip().lower() or ("gps" if has_loc else "unknown")
                rec = FixRecord(
                    tag_id=tag,
                    sensor_type=sensor[:32],
                    timestamp=ts,
                    latitude=lat,
                    longitude=lon,
                    event_id=row[i_event].strip()[:64] or None,
                    animal=row[i_ind].strip()[:128] or None,
                    visible=_flag(row[i_vis], "visible", True),
                    marked_outlier=_flag(row[i_marked], "manually-marked-outlier", False),
                    dop=_number(row[i_dop], "gps:dop"),
                    taxon=row[i_taxon].strip()[:255] or None,
                    study=row[i_study].strip()[:500] or None,
                    extra={h: row[i] for i, h in extra_cols if row[i] != ""},
                )
            except ValueError as exc:
                bad += 1
                if len(errors) < MAX_ERRORS_SHOWN:
                    errors.append(f"line {line}: {exc}")
                continue
            if rec.key in seen:
                dups += 1
                continue
            seen.add(rec.key)
            records.append(rec)
    except csv.Error as exc:
        raise TelemetryFileError(f"{source}: not a readable CSV at line {reader.line_num}: {exc}") from exc
    if bad:
        more = f" (and {bad - len(errors)} more)" if bad > len(errors) else ""
        raise TelemetryFileError(f"{source}: {bad} of {rows} rows cannot be read, nothing was imported: "
                                 + "; ".join(errors) + more)
    return MovebankFile(source, list(header), records, rows, dups, encoding)


def read_movebank(path: Path) -> MovebankFile:
    """Read a Movebank export from disk (CSV, .csv.gz or Movebank's .zip)."""
    data, name = read_bytes(path)
    text, encoding = decode(data)
    return parse_movebank(text, name, encoding)
