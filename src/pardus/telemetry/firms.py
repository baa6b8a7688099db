"""Read NASA FIRMS active-fire CSVs (MODIS and VIIRS; 24-hour text files, area API, archive and
download-tool layouts; plain or gzip) into typed hotspots, or refuse the whole file.

The layouts differ in small ways a reader must absorb: VIIRS text files call the brightness columns
``bright_ti4``/``bright_ti5`` but archive files call them ``brightness``/``bright_t31``; only some
carry ``instrument`` (else it is told by those column names) and ``type``; ``satellite`` is ``N``,
``N20``, ``1`` (old NOAA-20 code), ``T``/``A`` or ``Terra``/``Aqua``; ``confidence`` is a word, a letter
or a percentage; ``acq_time`` is ``HHMM`` UTC (files re-written by spreadsheets drop its leading zeros,
which is read the same). Each hotspot's ``key`` (instrument, satellite, time, place) is its identity.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pardus.telemetry.movebank import MAX_ERRORS_SHOWN, TelemetryFileError, decode, read_bytes

REQUIRED = ("latitude", "longitude", "acq_date", "acq_time")
SATELLITES = {"n": "Suomi NPP", "npp": "Suomi NPP", "suomi npp": "Suomi NPP", "1": "NOAA-20", "n20": "NOAA-20",
              "j1": "NOAA-20", "noaa-20": "NOAA-20", "n21": "NOAA-21", "j2": "NOAA-21", "noaa-21": "NOAA-21",
              "t": "Terra", "terra": "Terra", "a": "Aqua", "aqua": "Aqua"}
CONFIDENCE_WORDS = {"l": "low", "low": "low", "n": "nominal", "nominal": "nominal", "h": "high", "high": "high"}
CONFIDENCE_PCT = {"low": 0.0, "nominal": 50.0, "high": 100.0}


@dataclass(frozen=True)
class Hotspot:
    """One fire pixel: its centre (WGS84), when the satellite saw it (UTC) and how sure FIRMS is."""

    latitude: float
    longitude: float
    acquired: datetime
    instrument: str  # MODIS | VIIRS
    satellite: str | None
    confidence: str | None  # low/nominal/high, or a MODIS percentage as text
    confidence_pct: float | None  # the words as 0/50/100, for rules with min_score
    frp: float | None
    daynight: str | None
    brightness: float | None
    fire_type: int | None  # archive files: 0 vegetation, 1 volcano, 2 other static land source, 3 offshore
    version: str | None

    @property
    def key(self) -> str:
        return (f"{self.instrument}:{self.satellite or '-'}:{self.acquired:%Y%m%dT%H%M}:"
                f"{self.latitude:.5f}:{self.longitude:.5f}")


@dataclass
class FirmsFile:
    source: str
    layout: str
    hotspots: list[Hotspot]
    rows: int
    duplicates: int = 0


def _float(text: str, what: str) -> float | None:
    t = text.strip()
    if t == "" or t.lower() in ("na", "nan"):
        return None
    try:
        v = float(t)
    except ValueError:
        raise ValueError(f"{what} {text[:30]!r} is not a number") from None
    if not math.isfinite(v):
        raise ValueError(f"{what} {text[:30]!r} is not a finite number")
    return v


def _time(date_text: str, time_text: str) -> datetime:
    t = time_text.strip().replace(":", "")
    if not t.isdigit() or len(t) > 4:
        raise ValueError(f"acq_time {time_text[:20]!r} is not HHMM")
    t = t.zfill(4)
    try:
        d = datetime.strptime(date_text.strip(), "%Y-%m-%d")
        return d.replace(hour=int(t[:2]), minute=int(t[2:]), tzinfo=UTC)
    except ValueError:
        raise ValueError(f"acq_date/acq_time {date_text[:20]!r} {time_text[:8]!r} is not YYYY-MM-DD HHMM") from None


def parse_firms(text: str, source: str = "the file") -> FirmsFile:
    """Every row of a FIRMS CSV as a ``Hotspot``, or ``TelemetryFileError`` naming the bad lines."""
    if "\x00" in text:
        raise TelemetryFileError(f"{source}: the file contains NUL bytes; it is not a FIRMS CSV (or is damaged)")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [h.strip().lower().strip('"') for h in next(reader, [])]
        if len(set(header)) != len(header):
            raise TelemetryFileError(f"{source}: a column appears twice in the header (two layouts pasted together?)")
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise TelemetryFileError(f"{source}: not a FIRMS hotspot file: no {', '.join(missing)} column "
                                     f"(columns: {', '.join(header[:8])})")
        col = {h: i for i, h in enumerate(header)}
        if "instrument" in col:
            layout_instrument = None
        elif "bright_ti4" in col:
            layout_instrument = "VIIRS"
        elif "brightness" in col:
            layout_instrument = "MODIS"
        else:
            raise TelemetryFileError(f"{source}: no instrument column and no bright_ti4 (VIIRS) nor brightness "
                                     "(MODIS) column: the instrument cannot be told")
        layout = ("archive" if "type" in col else "download") if "instrument" in col else "24h-text"
        bright = col.get("bright_ti4", col.get("brightness"))
        out: list[Hotspot] = []
        seen: set[str] = set()
        errors: list[str] = []
        rows = bad = dups = 0

        def cell(row: list[str], name: str) -> str:
            i = col.get(name)
            return row[i] if i is not None else ""

        for row in reader:
            if not row or all(not c.strip() for c in row):
                continue
            rows += 1
            try:
                if len(row) != len(header):
                    raise ValueError(f"{len(row)} fields where the header has {len(header)}")
                if cell(row, "latitude").strip().lower() == "latitude":
                    raise ValueError("a second header row (two files pasted together?)")
                lat = _float(cell(row, "latitude"), "latitude")
                lon = _float(cell(row, "longitude"), "longitude")
                if lat is None or lon is None:
                    raise ValueError("no latitude or longitude")
                if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                    raise ValueError(f"latitude/longitude {lat}, {lon} is outside the Earth's range")
                instrument = (cell(row, "instrument").strip().upper() or layout_instrument or "")
                if instrument not in ("MODIS", "VIIRS"):
                    raise ValueError(f"instrument {instrument[:20]!r} is neither MODIS nor VIIRS")
                sat_raw = cell(row, "satellite").strip()
                conf_raw = cell(row, "confidence").strip().lower()
                pct: float | None
                if conf_raw in CONFIDENCE_WORDS:
                    conf: str | None = CONFIDENCE_WORDS[conf_raw]
                    pct = CONFIDENCE_PCT[conf]  # type: ignore[index]
                elif conf_raw == "":
                    conf, pct = None, None
                else:
                    pct = _float(conf_raw, "confidence")
                    if pct is None or not 0 <= pct <= 100:
                        raise ValueError(f"confidence {conf_raw[:20]!r} is not low/nominal/high nor 0-100")
                    conf = f"{pct:g}"
                ftype = _float(cell(row, "type"), "type")
                dn = cell(row, "daynight").strip().upper()[:1] or None
                hs = Hotspot(lat, lon, _time(cell(row, "acq_date"), cell(row, "acq_time")), instrument,
                             SATELLITES.get(sat_raw.lower(), sat_raw[:16] or None), conf, pct,
                             _float(cell(row, "frp"), "frp"),
                             dn if dn in ("D", "N") else None,
                             _float(row[bright], "brightness") if bright is not None else None,
                             int(ftype) if ftype is not None else None, cell(row, "version").strip()[:16] or None)
            except ValueError as exc:
                bad += 1
                if len(errors) < MAX_ERRORS_SHOWN:
                    errors.append(f"line {reader.line_num}: {exc}")
                continue
            if hs.key in seen:
                dups += 1
                continue
            seen.add(hs.key)
            out.append(hs)
    except csv.Error as exc:
        raise TelemetryFileError(f"{source}: not a readable CSV at line {reader.line_num}: {exc}") from exc
    if bad:
        more = f" (and {bad - len(errors)} more)" if bad > len(errors) else ""
        raise TelemetryFileError(f"{source}: {bad} of {rows} rows cannot be read, nothing was imported: "
                                 + "; ".join(errors) + more)
    return FirmsFile(source, layout, out, rows, dups)


def read_firms(path: Path) -> FirmsFile:
    """Read a FIRMS CSV from disk (.csv or .csv.gz)."""
    data, name = read_bytes(path)
    text, _ = decode(data)
    return parse_firms(text, name)
