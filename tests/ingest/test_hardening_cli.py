"""Issue 19 item 5 (CLI side): hostile or careless command-line input gets a clear message, never
a traceback, and nothing is written: `import megadetector`, `fix-time`, `report`.

Each command is run through Typer's runner; a traceback shows there as ``res.exception`` being
something other than the ``SystemExit`` of a clean refusal.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from typer.testing import CliRunner

from pardus.cli import app
from pardus.ingest.synthetic import write_card
from pardus.ingest.timefix import MAX_CLOCK_OFFSET_S, TimeFixError, parse_offset, to_utc
from pardus.store.models import ClockCorrection, Deployment, Detection, Media, StageState

runner = CliRunner()


def _refused(res, *words: str) -> None:
    """A clean refusal: exit code 1 or 2 (usage), a message with ``words``, no traceback."""
    assert res.exit_code in (1, 2), res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    flat = " ".join(res.output.split())
    for w in words:
        assert w in flat, flat


def _counts(env: Path) -> dict[str, int]:
    from pardus.console import open_cli_workspace

    with open_cli_workspace() as ws, ws.db.session() as s:
        return {m.__name__: s.scalar(select(func.count()).select_from(m)) or 0
                for m in (Media, Detection, StageState, ClockCorrection)}


@pytest.fixture
def card_env(env: Path) -> Path:
    """A data folder holding one imported card of 4 photos in deployment C1 (plot P1)."""
    card = env / "card"
    write_card(card, 4, datetime(2024, 6, 1, 22, 0), size=(160, 120))
    assert runner.invoke(app, ["deployments", "add", "C1", "--lat", "43.1", "--lon", "131.9",
                               "--start", "2024-05-30T10:00:00", "--plot", "P1"]).exit_code == 0
    res = runner.invoke(app, ["import-card", str(card), "--deployment", "C1"])
    assert res.exit_code == 0, res.output
    return env


# --- import megadetector ------------------------------------------------------------------------

GOOD = {"file": "DCIM/100RECNX/IMG_0001.JPG", "detections": [
    {"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.2, 0.2]}]}


@pytest.mark.parametrize(("bad", "words"), [
    ({"file": "x.jpg", "detections": [{"category": "1", "conf": "high", "bbox": [0, 0, 0.1, 0.1]}]},
     ["'conf' must be a number from 0 to 1", '"high"', "box #1"]),
    (None, ["image #2", "must be an object", "null"]),
    ({"file": "x.jpg", "detections": [None]}, ["box #1", "must be an object", "null"]),
    ({"file": "x.jpg", "detections": [{"category": "1", "conf": None, "bbox": [0, 0, 0.1, 0.1]}]},
     ["'conf' must be a number"]),
    ({"file": "x.jpg", "detections": [{"category": None, "conf": 0.5, "bbox": [0, 0, 0.1, 0.1]}]},
     ["'category' must be a category id"]),
    ({"file": "x.jpg", "detections": [{"category": "1", "conf": 0.5, "bbox": [0.1, 0.2, 0.3]}]},
     ["'bbox' must be four numbers", "[0.1, 0.2, 0.3]"]),
    ({"file": "x.jpg", "detections": [{"category": "1", "conf": 0.5, "bbox": None}]}, ["'bbox' must be four"]),
    ({"file": "x.jpg", "detections": [{"category": "1", "conf": 0.5, "bbox": [0, 0, 7, 0.1]}]},
     ["is not normalised"]),
    ({"file": "x.jpg", "detections": "none"}, ["'detections' must be a list"]),
    ({"file": None, "detections": []}, ["image #2 in md.json has no 'file'"]),
    ({"file": "x.jpg", "frame_rate": 0, "detections": []}, ["'frame_rate' must be a positive number"]),
    ({"file": "x.jpg", "detections": [{"category": "1", "conf": 0.5, "bbox": [0, 0, 0.1, 0.1],
                                       "frame_number": -3}]}, ["'frame_number' must be a whole number"]),
    ({"file": "x" * 2000, "detections": []}, ["2000 characters long"]),
])
def test_import_megadetector_refuses_bad_entries_by_name_and_writes_nothing(
        card_env: Path, bad: object, words: list[str]) -> None:
    path = card_env / "md.json"
    # A good entry first: the bad one halfway down must not leave the first one's boxes behind.
    path.write_text(json.dumps({"images": [GOOD, bad]}))
    before = _counts(card_env)
    res = runner.invoke(app, ["import", "megadetector", str(path), "-d", "C1"])
    _refused(res, *words)
    assert _counts(card_env) == before


def test_import_megadetector_refuses_nan_and_infinity(card_env: Path) -> None:
    path = card_env / "md.json"
    for constant in ("NaN", "Infinity", "-Infinity"):
        box = '{"category": "1", "conf": ' + constant + ', "bbox": [0, 0, 0.1, 0.1]}'
        path.write_text('{"images": [{"file": "a.jpg", "detections": [' + box + "]}]}")
        before = _counts(card_env)
        _refused(runner.invoke(app, ["import", "megadetector", str(path), "-d", "C1"]),
                 f"{constant} is not a number JSON allows")
        assert _counts(card_env) == before


def test_import_megadetector_refuses_bad_header_fields(card_env: Path) -> None:
    path = card_env / "md.json"
    for doc, words in (
        ({"info": [1], "images": []}, ["'info' must be an object"]),
        ({"detection_categories": ["animal"], "images": []}, ["'detection_categories' must map ids to names"]),
        ({"info": {"detector": {"name": 1}}, "images": []}, ["info.detector must be text"]),
        ({"info": {"detector": "m" * 300}, "images": []}, ["info.detector is 300 characters long"]),
    ):
        path.write_text(json.dumps(doc))
        _refused(runner.invoke(app, ["import", "megadetector", str(path)]), *words)
    path.write_text("[" * 100_000 + "]" * 100_000)
    _refused(runner.invoke(app, ["import", "megadetector", str(path)]), "nested too deeply")


def test_import_megadetector_still_reads_a_good_file(card_env: Path) -> None:
    path = card_env / "md.json"
    path.write_text(json.dumps({"images": [GOOD, {"file": "DCIM/100RECNX/IMG_0002.JPG", "detections": [
        {"category": 1, "conf": 1, "bbox": [0, 0, 1, 1]}]}]}))
    res = runner.invoke(app, ["import", "megadetector", str(path)])
    assert res.exit_code == 0, res.output
    assert "2 files, 2 boxes" in res.output


# --- fix-time -----------------------------------------------------------------------------------

def _offset(env: Path) -> float:
    from pardus.console import open_cli_workspace

    with open_cli_workspace() as ws, ws.db.session() as s:
        dep = s.get(Deployment, "C1")
        assert dep is not None
        return dep.clock_offset_s


@pytest.mark.parametrize(("offset", "words"), [
    ("1e300", ["more than 100 years"]),
    ("99999999999999999999d", ["more than 100 years"]),
    ("+1000000:00:00", ["more than 100 years"]),
    ("nan", ["cannot read the offset 'nan'"]),
    ("inf", ["cannot read the offset"]),
    ("-Infinity", ["cannot read the offset"]),
    ("+25:99:99", ["minutes and seconds up to 59"]),
    ("+01:60", ["minutes and seconds up to 59"]),
    ("9" * 5000, ["cannot read the offset"]),
])
def test_fix_time_refuses_absurd_offsets_and_changes_nothing(card_env: Path, offset: str, words: list[str]) -> None:
    before = _counts(card_env)
    res = runner.invoke(app, ["fix-time", "-d", "C1", "--offset", offset])
    _refused(res, *words)
    assert _counts(card_env) == before and _offset(card_env) == 0.0


def test_fix_time_refuses_offset_with_reference_and_true_time_alone(card_env: Path) -> None:
    res = runner.invoke(app, ["fix-time", "-d", "C1", "--offset", "+1h", "--reference", "IMG_0001.JPG",
                              "--true-time", "2024-06-01T23:00:00"])
    _refused(res, "not both")
    _refused(runner.invoke(app, ["fix-time", "-d", "C1", "--true-time", "2024-06-01T23:00:00"]),
             "--true-time needs --reference")
    res = runner.invoke(app, ["fix-time", "-d", "C1", "--reference", "IMG_0001.JPG", "--true-time",
                              "9999-12-31T23:59:59"])
    _refused(res, "more than 100 years")
    res = runner.invoke(app, ["fix-time", "-d", "C1", "--reference", "IMG_0001.JPG", "--true-time",
                              "0001-01-01T00:00:00-12:00"])
    _refused(res)
    assert _offset(card_env) == 0.0 and _counts(card_env)["ClockCorrection"] == 0
    # The plain forms still work, and a century-old clock reset can still be corrected.
    assert runner.invoke(app, ["fix-time", "-d", "C1", "--offset", "+25:30:00"]).exit_code == 0
    assert _offset(card_env) == 25.5 * 3600
    assert runner.invoke(app, ["fix-time", "-d", "C1", "--offset", "+20000d"]).exit_code == 0


def test_parse_offset_property_clean_error_or_bounded_finite_seconds() -> None:
    @settings(max_examples=400, deadline=None)
    @given(st.one_of(
        st.text(max_size=30),
        st.text(alphabet="+-0123456789:.dhmse nafiy", max_size=30),
        st.builds(lambda h, m, s: f"+{h}:{m:02d}:{s:02d}", st.integers(0, 10**12), st.integers(0, 99),
                  st.integers(0, 99)),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
    ))
    def check(text: str) -> None:
        try:
            seconds = parse_offset(text)
        except TimeFixError as exc:
            assert str(exc) and "Traceback" not in str(exc)
            return
        assert math.isfinite(seconds) and abs(seconds) <= MAX_CLOCK_OFFSET_S

    check()


def test_clock_form_is_exact_when_valid() -> None:
    @settings(max_examples=200, deadline=None)
    @given(st.sampled_from("+-"), st.integers(0, 876_000), st.integers(0, 59), st.integers(0, 59))
    def check(sign: str, h: int, m: int, s: int) -> None:
        expected = (h * 3600 + m * 60 + s) * (-1 if sign == "-" else 1)
        assert parse_offset(f"{sign}{h}:{m:02d}:{s:02d}") == expected

    check()


def test_to_utc_never_overflows() -> None:
    @settings(max_examples=300, deadline=None)
    @given(st.datetimes(), st.integers(-14 * 60, 14 * 60), st.floats(-MAX_CLOCK_OFFSET_S, MAX_CLOCK_OFFSET_S))
    def check(t: datetime, zone: int, clock: float) -> None:
        got = to_utc(t, zone, clock)
        assert got is None or got.tzinfo is not None

    check()


def test_fix_time_property_on_the_command(card_env: Path) -> None:
    """Whatever is typed as --offset, the command answers 0 or a clean refusal; a refusal writes nothing."""
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.one_of(st.text(min_size=1, max_size=20).filter(lambda t: not t.startswith("-")),
                     st.floats().map(repr).filter(lambda t: not t.startswith("-")),
                     st.integers(0, 10**20).map(lambda n: f"+{n}s")))
    def check(text: str) -> None:
        before = _counts(card_env)
        res = runner.invoke(app, ["fix-time", "-d", "C1", "--offset", text])
        if res.exit_code == 0:
            assert _counts(card_env)["ClockCorrection"] == before["ClockCorrection"] + 1
            assert math.isfinite(_offset(card_env))
        else:
            _refused(res)
            assert _counts(card_env) == before

    check()


# --- report -------------------------------------------------------------------------------------

@pytest.mark.parametrize("year", ["0", "-5", "9999", "10000"])
def test_report_refuses_years_outside_the_calendar(card_env: Path, year: str) -> None:
    res = runner.invoke(app, ["report", "--plot", "P1", "--year", year, "--out", str(card_env / "r")])
    _refused(res, "--year")
    assert not (card_env / "r").exists()


@pytest.mark.parametrize(("option", "value"), [
    ("--occasion-days", "nan"), ("--occasion-days", "inf"), ("--occasion-days", "0"),
    ("--threshold", "nan"), ("--threshold", "-1"), ("--bootstrap", "10000000"),
    ("--mask-buffer", "nan"), ("--mask-spacing", "-3"), ("--mask-buffer", "inf"),
])
def test_report_refuses_absurd_numbers(card_env: Path, option: str, value: str) -> None:
    res = runner.invoke(app, ["report", "--plot", "P1", "--year", "2024", option, value,
                              "--out", str(card_env / "r")])
    _refused(res, option)
    assert not (card_env / "r").exists()


# --- camera ids (item 6) ------------------------------------------------------------------------

@pytest.mark.parametrize("camera_id", [".", "..", ".hidden", "a/b", "..%2f", "a+b", "#", "a b", "x" * 65, "",
                                       "C1\x00", "-rf"])
def test_path_like_camera_ids_are_refused(env: Path, camera_id: str) -> None:
    from pardus.console import open_cli_workspace

    res = runner.invoke(app, ["cameras", "add", "--", camera_id])
    _refused(res, "camera id")
    with open_cli_workspace() as ws, ws.db.session() as s:
        from pardus.store.models import Camera

        assert s.scalar(select(func.count()).select_from(Camera)) == 0


def test_a_camera_named_by_a_field_sheet_gets_no_token_under_a_path_like_id(env: Path) -> None:
    sheet = env / "sheet.csv"
    sheet.write_text("deploymentID,cameraID\nD1,..\n")
    assert runner.invoke(app, ["deployments", "import", str(sheet)]).exit_code == 0
    _refused(runner.invoke(app, ["cameras", "token", "--", ".."]), "camera id '..'")
    assert runner.invoke(app, ["cameras", "add", "LP-C017"]).exit_code == 0


def test_accepted_camera_ids_are_one_url_path_step_and_one_mqtt_topic_level() -> None:
    import httpx

    from pardus.live.cameras import CameraError, check_camera_id

    @settings(max_examples=500, deadline=None)
    @given(st.text(max_size=70) | st.sampled_from([".", "..", "...", "a.b", "LP-C017", "КАМ-01", "SN:1@x~y"]))
    def check(text: str) -> None:
        try:
            check_camera_id(text)
        except CameraError as exc:
            assert "camera id" in str(exc)
            return
        assert 1 <= len(text) <= 64 and text.strip(".") and not text.startswith(".")
        assert not set(text) & set("/+#%?$\\ \t\r\n\x00")
        url = httpx.URL(f"http://h/api/v1/cameras/{text}/media")
        assert url.path.split("/")[4] == text or httpx.URL(url).path == f"/api/v1/cameras/{text}/media"

    check()


# --- interrupted imports (item 7) ---------------------------------------------------------------

def _cli_env(settings) -> dict[str, str]:
    import os

    env = {**os.environ, "PARDUS_DATA_DIR": str(settings.data_dir)}
    env.pop("PARDUS_DATABASE_URL", None)
    if settings.database_url:
        env["PARDUS_DATABASE_URL"] = settings.database_url
    return env


def _items(ws) -> int:
    from pardus.store.models import ImportItem

    with ws.db.session() as s:
        return s.scalar(select(func.count()).select_from(ImportItem)) or 0


def test_killed_import_is_reported_interrupted_and_the_rerun_finishes_it(settings, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from pardus.ingest.card import check_import_runs
    from pardus.store import open_workspace
    from pardus.store.models import ImportItem, ImportRun

    card = tmp_path / "card"
    write_card(card, 240, datetime(2024, 7, 1, 2, 0), size=(320, 240))
    env = _cli_env(settings)
    cmd = [sys.executable, "-m", "pardus"]
    with open_workspace(settings) as ws:
        # A live import is never called interrupted, however long it takes.
        proc = subprocess.Popen([*cmd, "import-card", str(card), "-d", "K1"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while proc.poll() is None and _items(ws) < 60 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, "the import ended before it could be looked at; make the card bigger"
        live = check_import_runs(ws)
        assert [r.deployment_id for r in live.running] == ["K1"] and live.interrupted == []
        assert live.running[0].where and str(proc.pid) in live.running[0].where
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        with ws.db.session() as s:
            run = s.scalars(select(ImportRun)).one()
            assert run.finished is None and run.status == "running"  # what the issue saw: for ever
            killed_id = run.id
        res = subprocess.run([*cmd, "status"], env=env, capture_output=True, text=True, timeout=120)
        flat = " ".join(res.stdout.split())
        assert res.returncode == 0 and "Import interrupted:" in flat and f"pardus import-card {card}" in flat, flat
        with ws.db.session() as s:
            run = s.get(ImportRun, killed_id)
            assert run is not None and run.status == "interrupted" and run.finished is not None
            items = dict(s.execute(select(ImportItem.status, func.count()).where(ImportItem.run_id == killed_id)
                                   .group_by(ImportItem.status)).all())  # fmt: skip
            assert run.counts == items and sum(items.values()) >= 60
            assert "interrupted before its end" in (run.message or "")
        done = subprocess.run([*cmd, "import-card", str(card), "-d", "K1"], env=env, capture_output=True,
                              text=True, timeout=600)
        flat = " ".join(done.stdout.split())
        assert done.returncode == 0, done.stdout + done.stderr
        assert "An earlier import of this card" in flat and "this import has finished it" in flat
        res = subprocess.run([*cmd, "status"], env=env, capture_output=True, text=True, timeout=120)
        assert "Import interrupted" not in res.stdout and "Import running" not in res.stdout
        with ws.db.session() as s:
            assert s.scalar(select(func.count()).select_from(Media)) == 240
            statuses = Counter(s.scalars(select(ImportRun.status)))
            assert statuses == {"interrupted": 1, "finished": 1}
        assert not list((settings.data_dir / "runs").glob("*.lock")), "no lock file left behind"


# --- what a file or a sheet says about itself, longer than the store keeps (both databases) ------

def test_overlong_exif_paths_and_ids_are_clipped_or_refused_never_a_crash(workspace, tmp_path: Path) -> None:
    import zipfile

    from pardus.ingest.card import CardError, import_card
    from pardus.ingest.deployments import DeploymentError, DeploymentSpec, upsert_deployment
    from pardus.ingest.one import ingest_file
    from pardus.ingest.synthetic import camera_jpeg
    from pardus.live.cameras import add_camera
    from pardus.store.models import Camera

    card = tmp_path / "card.zip"
    with zipfile.ZipFile(card, "w") as zf:
        zf.writestr("DCIM/100/IMG_0001.JPG", camera_jpeg(datetime(2024, 1, 1), make="M" * 200, model="X" * 300,
                                                         serial="S" * 100, size=(160, 120)))
        zf.writestr("DCIM/100/IMG_0002.JPG", camera_jpeg(datetime(2024, 1, 1), seed=2, serial="S" * 100,
                                                         size=(160, 120)))
        zf.writestr("DCIM/" + "d" * 1100 + "/IMG_0003.JPG", camera_jpeg(datetime(2024, 1, 1), seed=3, size=(160, 120)))
    rep = import_card(workspace, card, "LONG1")
    assert rep.counts == {"imported": 2, "skipped": 1}, rep.counts
    assert any("1024" in why for _, _, why in rep.problems)
    with workspace.db.session() as s:
        makes = {m.exif_make for m in s.scalars(select(Media))}
        assert all(m is None or len(m) <= 128 for m in makes) and any(m and m.startswith("MMM") for m in makes)
        dep = s.get(Deployment, "LONG1")
        assert dep is not None and dep.camera_id is None, "a 100-character serial is no camera id"
        assert s.scalar(select(func.count()).select_from(Camera)) == 0
    with pytest.raises(CardError, match="1-64 characters"):
        import_card(workspace, card, "D" * 100)
    with workspace.db.session() as s, pytest.raises(DeploymentError, match="plot is 200 characters"):
        upsert_deployment(s, DeploymentSpec(id="LONG2", plot="p" * 200))
    with workspace.db.session() as s, pytest.raises(DeploymentError, match="camera id"):
        upsert_deployment(s, DeploymentSpec(id="LONG3", camera_id="c" * 65))
    add_camera(workspace, "UP1")
    res = ingest_file(workspace, camera_jpeg(datetime(2024, 1, 2), seed=9, size=(160, 120)), camera_id="UP1",
                      filename="n" * 1000 + ".JPG")
    with workspace.db.session() as s:
        m = s.get(Media, res.media_id)
        assert m is not None and len(m.file_name or "") <= 255 and m.file_name.endswith(".jpg")
        assert s.get(Deployment, "LONG2") is None and s.get(Deployment, "LONG3") is None


# --- field sheets (deployments CSV), other encodings included ---------------------------------------

def test_cp1251_sheet_is_refused_with_what_to_do_then_read_with_encoding(env: Path) -> None:
    from pardus.console import open_cli_workspace
    from pardus.store.models import Location

    sheet = env / "sheet.csv"
    sheet.write_bytes("deploymentID,locationID,locationName,latitude,longitude,utcOffset\n"
                      "D1,L1,Кедровая падь,43.1,131.9,+10:00\n".encode("cp1251"))
    _refused(runner.invoke(app, ["deployments", "import", str(sheet)]), "not UTF-8 text", "--encoding cp1251")
    res = runner.invoke(app, ["deployments", "import", str(sheet), "--encoding", "cp1251"])
    assert res.exit_code == 0, res.output
    with open_cli_workspace() as ws, ws.db.session() as s:
        loc = s.get(Location, "L1")
        assert loc is not None and loc.name == "Кедровая падь"
    _refused(runner.invoke(app, ["deployments", "import", str(sheet), "--encoding", "klingon"]), "unknown encoding")


@pytest.mark.parametrize(("text", "words"), [
    ("deploymentID,latitude\nD1,nan\n", "latitude: 'nan' is not a number"),
    ("deploymentID,x_m\nD1,1e999\n", "x_m: '1e999' is not a number"),
    ("deploymentID,cameraHeading\nD1,720\n", "not a compass bearing"),
    ("deploymentID,utcOffset\nD1,+99:99\n", "no time zone"),
    ("deploymentID,deploymentStart,utcOffset\nD1,9999-12-31T23:00:00,-10:00\n", "outside the calendar"),
    ("deploymentID,plot\nD1,a,b,c\n", "more cells than the header"),
    ("deploymentID,plot\n,P1\n", "line 3 has no deploymentID"),
    ("deploymentID,plot\nD1,P\x001\n", "NUL characters"),
    ("deploymentID\n" + "D" * 80 + "\n", "1-64 characters"),
])
def test_bad_sheet_rows_are_named_and_nothing_is_recorded(env: Path, text: str, words: str) -> None:
    from pardus.console import open_cli_workspace

    sheet = env / "sheet.csv"
    sheet.write_text("deploymentID,plot\nGOOD1,P1\n" + text.split("\n", 1)[1] if text.startswith("deploymentID,plot")
                     else text)
    _refused(runner.invoke(app, ["deployments", "import", str(sheet)]), words)
    with open_cli_workspace() as ws, ws.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Deployment)) == 0


CELLS = st.one_of(st.text(max_size=12), st.sampled_from(["", "nan", "inf", "1e400", "43.1", "-181", "+10:00",
                                                         "+25:00", "2024-05-01T10:00:00", "9999-12-31", "true"]))
SHEET_COLUMNS = ["deploymentID", "locationID", "locationName", "plot", "latitude", "longitude", "x_m", "cameraID",
                 "deploymentStart", "deploymentEnd", "cameraHeading", "utcOffset", "habitat"]


def test_deployment_sheet_property(workspace, tmp_path: Path) -> None:
    """Generated sheets in UTF-8 or cp1251: recorded whole, or a DeploymentError and nothing recorded."""
    import csv
    import io

    from pardus.ingest.deployments import DeploymentError, load_deployments_csv

    path = tmp_path / "sheet.csv"

    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.fixed_dictionaries({c: CELLS for c in SHEET_COLUMNS}), min_size=1, max_size=4),
           st.sampled_from(["utf-8", "cp1251"]), st.integers(0, 10**9))
    def check(rows: list[dict[str, str]], encoding: str, tag: int) -> None:
        buf = io.StringIO()
        w = csv.DictWriter(buf, SHEET_COLUMNS)
        w.writeheader()
        for i, r in enumerate(rows):
            w.writerow({**r, "deploymentID": f"{r['deploymentID'][:8]}-{tag}-{i}"})
        try:
            data = buf.getvalue().encode(encoding)
        except UnicodeEncodeError:
            return  # text cp1251 cannot hold; a real cp1251 sheet cannot hold it either
        path.write_bytes(data)
        with workspace.db.session() as s:
            before = s.scalar(select(func.count()).select_from(Deployment))
        try:
            with workspace.db.session() as s:
                ids = load_deployments_csv(s, path, encoding=encoding)
        except DeploymentError as exc:
            assert str(exc) and " object at 0x" not in str(exc)
            with workspace.db.session() as s:
                assert s.scalar(select(func.count()).select_from(Deployment)) == before
            return
        assert len(ids) == len(rows)

    check()
