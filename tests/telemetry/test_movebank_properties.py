"""Hostile Movebank CSVs: whatever the bytes, a clear refusal or the right records, never a traceback,
and nothing of a refused file in the store."""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from pardus.store.models import TelemetryFix
from pardus.telemetry.fixes import import_records
from pardus.telemetry.movebank import TelemetryFileError, decode, parse_movebank

HEADER = ["event-id", "timestamp", "location-long", "location-lat", "tag-local-identifier",
          "individual-local-identifier", "sensor-type", "visible", "eobs:temperature"]
SPELLINGS = {"location-long": ["location-long", "location.long", "location_long", "Location Long"],
             "location-lat": ["location-lat", "location.lat", "location_lat", "Location Lat"],
             "tag-local-identifier": ["tag-local-identifier", "tag.local.identifier", "tag_local_identifier"]}


def _parse_any(text: str) -> None:
    try:
        f = parse_movebank(text, "fuzz.csv")
    except TelemetryFileError as exc:
        assert str(exc).startswith("fuzz.csv")
        return
    for r in f.records:
        assert r.timestamp.tzinfo is not None and r.tag_id
        assert (r.latitude is None) == (r.longitude is None)
        if r.latitude is not None:
            assert -90 <= r.latitude <= 90 and -180 <= r.longitude <= 180
            assert math.isfinite(r.latitude) and math.isfinite(r.longitude)
    assert f.rows == len(f.records) + f.duplicates


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_any_bytes_never_a_traceback(data: bytes) -> None:
    text, _ = decode(b"timestamp,location-long,location-lat,tag-local-identifier\n" + data)
    _parse_any(text)
    _parse_any(decode(data)[0])


cells = st.one_of(st.sampled_from(["", "NaN", "nan", "NA", "inf", "-inf", "1e400", "91", "-181", "0", "abc", "true",
                                   "false", "2024-01-01 00:00:00", "2024-13-45 99:99:99", '"', "\x00", "\r", "é"]),
                  st.text(max_size=12), st.floats(allow_nan=True, allow_infinity=True).map(repr))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(cells, min_size=0, max_size=10), max_size=8), st.sampled_from(["\n", "\r\n", "\r"]))
def test_hostile_cells_never_a_traceback(rows: list[list[str]], eol: str) -> None:
    body = eol.join(",".join(r) for r in rows)
    _parse_any(",".join(HEADER) + eol + body)


fixes = st.lists(st.tuples(
    st.integers(0, 10**6),  # seconds after t0
    st.one_of(st.none(), st.tuples(st.floats(-180, 180, allow_nan=False), st.floats(-90, 90, allow_nan=False))),
    st.sampled_from(["T1", "T 2", "tag,3", 'tag"4', "Ł5"]),
    st.booleans(),
    # a line break inside a cell is quoted by a writer only when it is the line terminator in use
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r\n"), max_size=8),
), max_size=25)


@settings(max_examples=120, deadline=None)
@given(fixes, st.sampled_from(["\n", "\r\n", "\r"]), st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]),
       st.booleans(), st.data())
def test_valid_files_read_exactly(rows, eol, encoding, quote_all, data) -> None:
    t0 = datetime(2020, 2, 29, 23, 59, 59, 999000, tzinfo=UTC)
    header = [data.draw(st.sampled_from(SPELLINGS.get(h, [h]))) for h in HEADER]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator=eol, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL)
    w.writerow(header)
    expected = {}
    for i, (sec, pos, tag, visible, temp) in enumerate(rows):
        ts = t0 + timedelta(seconds=sec)
        lon, lat = pos if pos else ("", "")
        w.writerow([i, ts.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3], repr(lon) if pos else "", repr(lat) if pos else "",
                    tag, "animal", "gps", "true" if visible else "false", temp])
        expected.setdefault((tag, ts), (pos, visible, temp))
    text, _ = decode(buf.getvalue().encode(encoding))
    f = parse_movebank(text, "gen.csv")
    got = {(r.tag_id, r.timestamp): ((r.longitude, r.latitude) if r.latitude is not None else None, r.visible,
                                     r.extra.get("eobs:temperature", "")) for r in f.records}
    assert got == expected
    assert f.duplicates == len(rows) - len(expected)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(cells, min_size=9, max_size=9), min_size=1, max_size=6))
def test_refused_file_leaves_nothing(workspace_sqlite, rows) -> None:
    ws = workspace_sqlite
    text = ",".join(HEADER) + "\n" + "\n".join(",".join(r) for r in rows)
    with ws.db.session() as s:
        before = s.scalar(select(func.count()).select_from(TelemetryFix))
    try:
        parsed = parse_movebank(text, "fuzz.csv")
    except TelemetryFileError:
        with ws.db.session() as s:
            assert s.scalar(select(func.count()).select_from(TelemetryFix)) == before
        return
    with ws.db.session() as s:
        rep = import_records(s, parsed)
    with ws.db.session() as s:
        assert s.scalar(select(func.count()).select_from(TelemetryFix)) == before + rep.stored


FIRMS_HEAD = ("latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,instrument,confidence,version,"
              "bright_ti5,frp,daynight,type")
firms_cells = st.one_of(cells, st.sampled_from(["VIIRS", "MODIS", "n", "h", "nominal", "N20", "0134", "134",
                                                "2025-11-18",
                                                "D", "N", "-8.5", "179.99"]))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(firms_cells, min_size=13, max_size=16), max_size=6), st.sampled_from(["\n", "\r\n", "\r"]))
def test_hostile_firms_never_a_traceback(rows: list[list[str]], eol: str) -> None:
    from pardus.telemetry.firms import parse_firms

    text = FIRMS_HEAD + eol + eol.join(",".join(r) for r in rows)
    try:
        f = parse_firms(text, "fuzz.csv")
    except TelemetryFileError as exc:
        assert str(exc).startswith("fuzz.csv")
        return
    for h in f.hotspots:
        assert -90 <= h.latitude <= 90 and -180 <= h.longitude <= 180 and h.acquired.tzinfo is not None
        assert h.instrument in ("MODIS", "VIIRS")


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["sensor,time,kind,value,unit", "Station_ID,Date_Time,air_temp_set_1",
                        '"Date","Site ID","POC","Daily Mean PM2.5 Concentration","UNITS"']),
       st.lists(st.lists(cells, min_size=2, max_size=6), max_size=6), st.sampled_from([None, -480, 600]))
def test_hostile_sensor_files_never_a_traceback(header: str, rows: list[list[str]], offset: int | None) -> None:
    from pardus.telemetry.sensors import parse_sensor_csv

    text = header + "\n" + "\n".join(",".join(r) for r in rows)
    try:
        f = parse_sensor_csv(text, "fuzz.csv", utc_offset_minutes=offset)
    except TelemetryFileError as exc:
        assert str(exc).startswith("fuzz.csv")
        return
    for readings in f.readings.values():
        for r in readings:
            assert r.timestamp.tzinfo is not None and (r.value is None or math.isfinite(r.value))
