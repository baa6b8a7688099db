"""Movebank telemetry: every real file in, nothing twice, failed fixes kept, outliers flagged, round trip."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from pardus.store import open_workspace
from pardus.store.models import Individual, TelemetryFix, TelemetryTag
from pardus.telemetry.export import export_csv
from pardus.telemetry.fixes import TelemetryError, import_records, link_tag, speed_outliers, tracks
from pardus.telemetry.movebank import TelemetryFileError, parse_movebank, read_movebank

EVENT_FILES = ("move2-fishers/fishers.csv.gz", "move-leroy/leroy.csv.gz",
               "move2-galapagos-albatrosses/Galapagos_Albatrosses-1332012225316982996.zip",
               "mahoney-cougar-coyote-excerpt/gps-data.csv", "mahoney-cougar-coyote-excerpt/acc-data.csv")


def _import(ws, path: Path):
    with ws.db.session() as s:
        return import_records(s, read_movebank(path))


def _records(ws) -> set[tuple]:
    with ws.db.session() as s:
        return {(f.tag_id, f.sensor_type, f.timestamp, f.latitude, f.longitude, f.event_id, f.animal, f.visible,
                 f.outlier, tuple(sorted((f.extra or {}).items())))
                for f in s.scalars(select(TelemetryFix))}


def test_every_real_file_in_once_and_round_trip(shared_data: Path, sqlite_settings, tmp_path: Path) -> None:
    d = shared_data / "telemetry-movebank"
    with open_workspace(sqlite_settings) as ws:
        reps = {name: _import(ws, d / name) for name in EVENT_FILES}
        fishers = reps["move2-fishers/fishers.csv.gz"]
        assert (fishers.rows, fishers.stored, fishers.without_fix) == (47347, 47347, 14443)
        # leroy.csv.gz is the same fixes as fisher M1 (tag 74) in an older layout: nothing new
        assert (reps["move-leroy/leroy.csv.gz"].stored, reps["move-leroy/leroy.csv.gz"].already) == (0, 1990)
        for name, rep in reps.items():
            assert rep.rows == rep.stored + rep.already + rep.duplicates, name
        again = [_import(ws, d / name) for name in EVENT_FILES]
        assert sum(r.stored for r in again) == 0
        with ws.db.session() as s:
            per_tag = dict(s.execute(select(TelemetryFix.animal, func.count()).where(TelemetryFix.tag_id.in_(
                ["1072", "74", "1587"])).group_by(TelemetryFix.animal)).all())
            fixed = s.scalar(select(func.count()).select_from(TelemetryFix).where(TelemetryFix.latitude.is_not(None)))
            assert s.scalar(select(func.count()).select_from(TelemetryFix)) == 47347 + 1676 + 30 + 10
            acc = s.scalar(select(func.count()).select_from(TelemetryFix).where(
                TelemetryFix.sensor_type == "acceleration"))
            text = export_csv(s)
        assert per_tag == {"F1": 2795, "M1": 1990, "M5": 15058}
        assert fixed == 32904 + 1624 + 30 and acc == 10
        before = _records(ws)
    out = tmp_path / "export.csv"
    out.write_text(text, newline="")
    from pardus.config import Settings

    with open_workspace(Settings(data_dir=tmp_path / "again")) as ws2:
        rep = _import(ws2, out)
        assert rep.stored == len(before)
        assert _records(ws2) == before


def test_unsorted_cr_only_file_and_failed_fixes(shared_data: Path) -> None:
    f = read_movebank(shared_data / "telemetry-movebank/mahoney-cougar-coyote-excerpt/gps-data.csv")
    assert f.rows == 30 and len(f.records) == 30
    coyote = [r.timestamp for r in f.records if r.animal == "IdCoy_P3_1"]
    assert coyote != sorted(coyote)  # kept as the file has them; the store orders by time
    assert f.records[0].study and "," in f.records[0].study


def _file(rows: list[str], header: str = "event-id,timestamp,location-long,location-lat,tag-local-identifier,"
          "individual-local-identifier,sensor-type,visible") -> str:
    return "\r\n".join([header, *rows]) + "\r\n"


def test_outliers_flagged_never_deleted(sqlite_settings) -> None:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    rows = []
    for i in range(10):
        lon, lat = 131.3 + 0.001 * i, 43.1
        if i == 4:
            lon, lat = 135.0, 45.0  # 300 km away and back within the hour: a bad fix
        ts = (t0 + timedelta(minutes=15 * i)).strftime("%Y-%m-%d %H:%M:%S.000")
        rows.append(f"{i},{ts},{lon},{lat},T1,LEO,gps,{'false' if i == 7 else 'true'}")
    rows.append(f"99,{(t0 + timedelta(hours=5)):%Y-%m-%d %H:%M:%S},,,T1,LEO,gps,true")
    rows.append(f"98,{(t0 + timedelta(hours=6)):%Y-%m-%d %H:%M:%S},0,0,T1,LEO,gps,true")
    with open_workspace(sqlite_settings) as ws, ws.db.session() as s:
        rep = import_records(s, parse_movebank(_file(rows)))
        assert rep.stored == 12 and rep.without_fix == 1
        assert rep.flagged == {"speed": 1, "marked": 1, "null-island": 1}
        flags = dict(s.execute(select(TelemetryFix.event_id, TelemetryFix.outlier)).all())
        assert flags["4"] == "speed" and flags["7"] == "marked" and flags["98"] == "null-island"
        assert flags["3"] is None and flags["5"] is None  # the good fixes either side stay good
        (track,) = tracks(s, tag_id="T1")
        assert len(track.lons) == 8 and track.outliers == 3 and track.without_fix == 1


def test_speed_filter_ends_and_real_dash() -> None:
    # one fast step (a real dash followed by rest) is not a spike; the ends are never spikes
    times = [0, 600, 1200, 1800]
    lons = [0.0, 0.0, 0.2, 0.2]  # 22 km in 10 min, then stays
    assert speed_outliers(times, lons, [0.0] * 4, 100.0) == [False] * 4
    assert speed_outliers([0, 600, 1200], [0.0, 1.0, 0.0], [0.0] * 3, 100.0) == [False, True, False]


@pytest.mark.parametrize(("text", "says"), [
    ("a,b,c\r\n1,2,3\r\n", "no 'timestamp' column"),
    (_file(["1,2024-01-01 00:00:00,abc,43.1,T1,LEO,gps,true"]), "location-long 'abc' is not a number"),
    (_file(["1,2024-01-01 00:00:00,131.0,91.5,T1,LEO,gps,true"]), "outside -90..90"),
    (_file(["1,2024-01-01 00:00:00,181,43,T1,LEO,gps,true"]), "outside -180..180"),
    (_file(["1,2024-01-01 00:00:00,131,,T1,LEO,gps,true"]), "only one of"),
    (_file(["1,2024-01-01,131,43,T1,LEO,gps,true"]), "no time of day"),
    (_file(["1,yesterday 10:00:00,131,43,T1,LEO,gps,true"]), "is not yyyy-MM-dd"),
    (_file(["1,2024-01-01 00:00:00,131,43,T1,LEO,gps,maybe"]), "neither true nor false"),
    (_file(["1,2024-01-01 00:00:00,131,43,T1,LEO,gps"]), "fields where the header has"),
    (_file(["1,2024-01-01 00:00:00,131,43,T1,LEO,gps,true",
            "event-id,timestamp,location-long,location-lat,tag-local-identifier,individual-local-identifier,"
            "sensor-type,visible"]), "second header"),
    ("timestamp,location-long,location.long,tag-local-identifier\n", "appears twice"),
    ("study-local-timestamp,study-timezone,tag-local-identifier\n2024-01-01 00:00:00,X,T1\n",
     "study-local-timestamp"),
    ("timestamp,location-long,tag-local-identifier\n", "only one of location-long"),
    ("", "empty"),
    ("timestamp,tag-local-identifier\n2024-01-01 00:00:00,T\x001\n", "NUL"),
])
def test_bad_files_refused_with_a_reason(text: str, says: str) -> None:
    with pytest.raises(TelemetryFileError) as err:
        parse_movebank(text, "bad.csv")
    assert says in str(err.value)


def test_bad_file_writes_nothing_over_cli(env: Path) -> None:
    from pardus.cli import app

    good = env / "good.csv"
    good.write_text(_file(["1,2024-01-01 00:00:00,131.1,43.1,T1,LEO,gps,true"]))
    bad = env / "bad.csv"
    bad.write_text(_file(["1,2024-01-01 00:00:00,131.1,43.1,T2,LEO2,gps,true",
                          "2,2024-01-01 01:00:00,131.1,95,T2,LEO2,gps,true"]))
    runner = CliRunner()
    res = runner.invoke(app, ["telemetry", "import", str(good)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["telemetry", "import", str(bad)])
    assert res.exit_code == 1
    assert "line 3" in res.output and "outside -90..90" in res.output and "Traceback" not in res.output
    from pardus.config import get_settings

    with open_workspace(get_settings()) as ws, ws.db.session() as s:
        assert s.scalars(select(TelemetryFix.tag_id)).all() == ["T1"]
        assert s.get(TelemetryTag, "T2") is None


def test_link_tag_puts_the_track_on_the_individual(env: Path) -> None:
    from pardus.cli import app
    from pardus.config import get_settings

    f = env / "t.csv"
    f.write_text(_file([f"{i},2024-01-01 0{i}:00:00,131.{i},43.1,TAG123,collar-7,gps,true" for i in range(3)]))
    with open_workspace(get_settings()) as ws, ws.db.session() as s:
        s.add(Individual(code="SC_026", scientific_name="Panthera pardus"))
    runner = CliRunner()
    res = runner.invoke(app, ["individuals", "link-tag", "SC_026", "TAG123", "--by", "Olga"])
    assert res.exit_code == 0, res.output
    assert runner.invoke(app, ["telemetry", "import", str(f)]).exit_code == 0
    res = runner.invoke(app, ["individuals", "link-tag", "NOBODY", "TAG123", "--by", "Olga"])
    assert res.exit_code == 1 and "no individual with code 'NOBODY'" in res.output
    with open_workspace(get_settings()) as ws, ws.db.session() as s:
        ind = s.scalars(select(Individual).where(Individual.code == "SC_026")).one()
        (track,) = tracks(s, individual_id=ind.id)
        assert track.tag_id == "TAG123" and len(track.lons) == 3
        s.add(Individual(code="SC_027"))
        s.flush()
        with pytest.raises(TelemetryError, match="linked to SC_026 already"):
            link_tag(s, "SC_027", "TAG123", by="Olga")
    res = runner.invoke(app, ["telemetry", "export", "--individual", "SC_026"])
    assert res.exit_code == 0 and Counter(line.count("TAG123") for line in res.output.splitlines()) == {0: 1, 1: 3}


def test_import_and_round_trip_on_each_backend(shared_data: Path, workspace) -> None:
    """The small real files on SQLite and PostgreSQL: stored once, export then import gives the same."""
    d = shared_data / "telemetry-movebank/mahoney-cougar-coyote-excerpt"
    for name in ("gps-data.csv", "acc-data.csv"):
        assert _import(workspace, d / name).stored > 0
        assert _import(workspace, d / name).stored == 0
    before = _records(workspace)
    assert len(before) == 40
    with workspace.db.session() as s:
        text = export_csv(s)
        s.execute(TelemetryFix.__table__.delete())
    with workspace.db.session() as s:
        rep = import_records(s, parse_movebank(text, "export.csv"))
    assert rep.stored == 40 and _records(workspace) == before
