"""Issue 19: hostile files given to the importers. Each either imports correctly or is refused with
a clear message and nothing written; never a traceback (items 5 and 7)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from pardus.ingest.deployments import DeploymentSpec, upsert_deployment
from pardus.interop.md_classifications import builtin_names, resolve
from pardus.interop.megadetector_json import MegaDetectorError, import_megadetector
from pardus.store import Workspace
from pardus.store.models import Detection, Media, Observation, StageState

# --- MegaDetector results (item 5) ---------------------------------------------------------------

JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**30), 10**30), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
ANY_JSON = st.recursive(JSON_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)
NUMBERS = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-5, 5))
DETECTIONS = st.fixed_dictionaries(
    {"category": st.one_of(st.sampled_from(["1", "2", "3", "9"]), st.integers(0, 4), ANY_JSON),
     "conf": st.one_of(st.floats(0, 1), NUMBERS, ANY_JSON),
     "bbox": st.one_of(st.lists(st.floats(0, 1), min_size=4, max_size=4), st.lists(NUMBERS, max_size=6), ANY_JSON)},
    optional={"frame_number": st.one_of(st.integers(-3, 100), ANY_JSON),
              "classifications": st.one_of(
                  st.lists(st.tuples(st.one_of(st.sampled_from(["0", "1", "7"]), st.integers(0, 2)),
                                     st.one_of(st.floats(0, 1.2), NUMBERS)).map(list), max_size=3),
                  ANY_JSON)},
)
IMAGES = st.one_of(
    st.fixed_dictionaries(
        {"file": st.one_of(st.text(min_size=1, max_size=40), ANY_JSON),
         "detections": st.one_of(st.none(), st.lists(st.one_of(DETECTIONS, ANY_JSON), max_size=4), ANY_JSON)},
        optional={"failure": st.one_of(st.text(max_size=20), ANY_JSON),
                  "frame_rate": st.one_of(NUMBERS, ANY_JSON)},
    ),
    ANY_JSON,
)
RESULTS = st.fixed_dictionaries(
    {"images": st.lists(IMAGES, max_size=4)},
    optional={"info": st.one_of(st.fixed_dictionaries({"detector": st.one_of(st.text(max_size=20), ANY_JSON)}),
                                ANY_JSON),
              "detection_categories": st.one_of(st.just({"1": "animal", "2": "person"}), ANY_JSON),
              "classification_categories": st.one_of(st.just({"0": "leopard", "1": "blank"}), ANY_JSON)},
)


def _rows(ws: Workspace) -> tuple[int, int, int, int]:
    with ws.db.session() as s:
        return tuple(s.scalar(select(func.count()).select_from(m)) or 0  # type: ignore[return-value]
                     for m in (Media, Detection, StageState, Observation))


def _well_formed(doc: dict[str, Any]) -> bool:
    """What a correct importer must accept: the format's own rules, written out independently."""
    def number(v: object) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)

    info = doc.get("info")
    if info is not None and not isinstance(info, dict):
        return False
    det = (info or {}).get("detector")
    if det and not (isinstance(det, str) and det.strip()):
        return False
    cats = doc.get("detection_categories")
    if cats is not None and not (isinstance(cats, dict) and all(isinstance(v, str) and v.strip()
                                                                for v in cats.values())):
        return False
    classes = doc.get("classification_categories")
    if classes is not None and not (isinstance(classes, dict) and all(isinstance(v, str) and v.strip()
                                                                      for v in classes.values())):
        return False
    def clean(v: object) -> bool:
        if isinstance(v, str):
            return "\x00" not in v
        if isinstance(v, dict):
            return all(clean(k) and clean(x) for k, x in v.items())
        if isinstance(v, list):
            return all(clean(x) for x in v)
        return True

    if not clean(doc):
        return False
    for img in doc["images"]:
        if not isinstance(img, dict) or not isinstance(img.get("file"), str) or not img["file"].strip():
            return False
        if img.get("failure") is not None and not isinstance(img["failure"], str):
            return False
        rate = img.get("frame_rate")
        if rate is not None and not (number(rate) and rate > 0):
            return False
        dets = img.get("detections")
        if dets is not None and not isinstance(dets, list):
            return False
        for d in dets or []:
            if not isinstance(d, dict):
                return False
            c = d.get("category")
            if isinstance(c, bool) or not isinstance(c, str | int) or not str(c).strip():
                return False
            if not (number(d.get("conf")) and 0 <= d["conf"] <= 1):
                return False
            b = d.get("bbox")
            if not (isinstance(b, list) and len(b) == 4 and all(number(v) for v in b)):
                return False
            x, y, w, h = b
            if not (-0.01 <= x <= 1.01 and -0.01 <= y <= 1.01 and 0 <= w <= 1.01 and 0 <= h <= 1.01):
                return False
            f = d.get("frame_number", 0)
            if isinstance(f, bool) or not isinstance(f, int) or f < 0:
                return False
            if "classifications" in d and not _classifications_ok(d["classifications"], classes):
                return False
    return _nameable(doc) if classes is not None or _has_classes(doc) else True


def _classifications_ok(value: object, classes: object) -> bool:
    """The format's rule for a box's classifications: [category id, confidence 0..1] pairs, ids the file names."""
    if not isinstance(value, list):
        return False
    for pair in value:
        if not (isinstance(pair, list) and len(pair) >= 2):
            return False
        cid, conf = pair[0], pair[1]
        if isinstance(cid, bool) or not isinstance(cid, str | int) or not str(cid).strip():
            return False
        if not isinstance(classes, dict) or str(cid) not in classes:
            return False
        if isinstance(conf, bool) or not isinstance(conf, int | float) or not 0 <= conf <= 1:
            return False
    return True


def _has_classes(doc: dict[str, Any]) -> bool:
    return any(d.get("classifications") for i in doc["images"] for d in i.get("detections") or [])


def _nameable(doc: dict[str, Any]) -> bool:
    """A file with classifications becomes observations: every call (box from 0.2, its best class or its
    detector category) must be a name Pardus can turn into a taxon, else the file is refused."""
    if not _has_classes(doc):
        return True
    known = builtin_names()
    classes = {str(k): v for k, v in doc["classification_categories"].items()}
    cats = {str(k): v for k, v in (doc.get("detection_categories") or {"1": "animal", "2": "person",
                                                                      "3": "vehicle"}).items()}
    for img in doc["images"]:
        if img.get("failure"):
            continue
        for d in img.get("detections") or []:
            if d["conf"] < 0.2:
                continue
            pairs = d.get("classifications") or []
            text = classes[str(max(pairs, key=lambda p: p[1])[0])] if pairs else cats.get(str(d["category"]),
                                                                                           str(d["category"]))
            if resolve(text, {}, known) is None:
                return False
    return True


def test_megadetector_entries_property(workspace: Workspace, tmp_path: Path) -> None:
    """Generated results files of every shape: imported whole when well formed, refused whole with
    a MegaDetectorError otherwise; never another exception, never a partial write."""
    with workspace.db.session() as s:
        upsert_deployment(s, DeploymentSpec(id="H1"))
    path = tmp_path / "md.json"

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(RESULTS)
    def check(doc: dict[str, Any]) -> None:
        path.write_text(json.dumps(doc))
        before = _rows(workspace)
        good = _well_formed(doc)
        try:
            rep = import_megadetector(workspace, path, deployment_id="H1")
        except MegaDetectorError as exc:
            assert not good, f"a well-formed file was refused: {exc}"
            assert "Traceback" not in str(exc) and " object at 0x" not in str(exc)
            assert _rows(workspace) == before, "a refused file left rows behind"
            return
        assert good, "a malformed file was imported"
        assert rep.images == len(doc["images"])
        assert rep.detections == sum(len(i.get("detections") or []) for i in doc["images"])

    check()


@pytest.mark.parametrize("text", ["NaN", "-Infinity", "Infinity"])
def test_megadetector_refuses_json_constants(workspace: Workspace, tmp_path: Path, text: str) -> None:
    path = tmp_path / "md.json"
    box = '{"category": "1", "conf": 0.5, "bbox": [0, 0, ' + text + ", 0.1]}"
    path.write_text('{"images": [{"file": "a.jpg", "detections": [' + box + "]}]}")
    with pytest.raises(MegaDetectorError, match="is not a number JSON allows"):
        import_megadetector(workspace, path)


# --- Camtrap DP paths that lead out of the package (item 7) --------------------------------------

SECRET = "root:x:0:0:the first line of a file outside the package"


@pytest.fixture
def package(shared_data: Path, tmp_path: Path) -> Path:
    """A copy of the official example package, beside a 'secret' file outside it."""
    import shutil

    (tmp_path / "secret.txt").write_text(SECRET + "\n")
    (tmp_path / "secret.jpg").write_bytes(b"\xff\xd8\xff" + SECRET.encode())
    pkg = tmp_path / "pkg" / "inner"
    shutil.copytree(shared_data / "camtrap-dp-example" / "example", pkg, ignore=shutil.ignore_patterns("media"))
    for p in [pkg, *pkg.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return pkg


def _set_path(pkg: Path, name: str, path: str) -> None:
    desc = json.loads((pkg / "datapackage.json").read_text())
    found = [r for r in desc["resources"] if r["name"] == name]
    if found:
        found[0]["path"] = path
    else:
        desc["resources"].append({"name": name, "path": path, "profile": "data-resource"})
    (pkg / "datapackage.json").write_text(json.dumps(desc))


def _nothing_imported(ws: Workspace) -> None:
    from pardus.store.models import Project

    with ws.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Project)) == 0
        assert s.scalar(select(func.count()).select_from(Media)) == 0


@pytest.mark.parametrize("table", ["deployments", "media", "observations"])
@pytest.mark.parametrize("path", ["../../secret.txt", "../../../../../../../../etc/passwd", "/etc/passwd",
                                  "sub/../../../secret.txt", "..\\..\\secret.txt"])
def test_camtrap_dp_table_path_outside_the_package_is_refused(
        workspace: Workspace, package: Path, table: str, path: str) -> None:
    from pardus.interop.camtrap_dp import CamtrapDPError, import_camtrap_dp

    _set_path(package, table, path)
    with pytest.raises(CamtrapDPError, match="leads out of the package folder") as exc:
        import_camtrap_dp(workspace, package)
    assert "root:" not in str(exc.value)
    _nothing_imported(workspace)


def test_camtrap_dp_link_out_of_the_package_is_refused(workspace: Workspace, package: Path) -> None:
    from pardus.interop.camtrap_dp import CamtrapDPError, import_camtrap_dp

    (package / "deployments.csv").unlink()
    (package / "deployments.csv").symlink_to(package.parent.parent / "secret.txt")
    with pytest.raises(CamtrapDPError, match="leads out of the package folder") as exc:
        import_camtrap_dp(workspace, package)
    assert "root:" not in str(exc.value)
    _nothing_imported(workspace)


def test_camtrap_dp_extra_resource_outside_is_refused_before_anything_is_stored(
        workspace: Workspace, package: Path) -> None:
    from pardus.interop.camtrap_dp import CamtrapDPError, import_camtrap_dp

    _set_path(package, "notes", "../../secret.txt")
    with pytest.raises(CamtrapDPError, match="resource 'notes'.*leads out"):
        import_camtrap_dp(workspace, package)
    _nothing_imported(workspace)
    derived = workspace.settings.data_dir
    assert not any(SECRET.encode() in p.read_bytes() for p in derived.rglob("*") if p.is_file()
                   and p.suffix not in (".sqlite", ".sqlite-wal", ".sqlite-shm"))


def test_camtrap_dp_media_file_outside_is_recorded_not_read(workspace: Workspace, package: Path) -> None:
    """media.csv's own pattern refuses '..' in filePath; a link inside the package that points out
    of it passes the pattern, and is recorded as a photo not read, never copied into the store."""
    from pardus.interop.camtrap_dp import CamtrapDPError, import_camtrap_dp

    media = (package / "media.csv").read_text().splitlines()
    first = media[1].split(",")
    first[4] = "../../secret.jpg"
    (package / "media.csv").write_text("\n".join([media[0], ",".join(first), *media[2:]]) + "\n")
    with pytest.raises(CamtrapDPError, match="filePath"):
        import_camtrap_dp(workspace, package)
    _nothing_imported(workspace)
    (package / "media").mkdir()
    (package / "media" / "evil.jpg").symlink_to(package.parent.parent / "secret.jpg")
    first[4] = "media/evil.jpg"
    (package / "media.csv").write_text("\n".join([media[0], ",".join(first), *media[2:]]) + "\n")
    rep = import_camtrap_dp(workspace, package)
    assert rep.counts.get("media_refused") == 1 and "media_files" not in rep.counts
    with workspace.db.session() as s:
        m = s.get(Media, first[0])
        assert m is not None and not m.available and m.sha256 is None and "leads out" in (m.file_issues or "")
    blobs = workspace.settings.data_dir / "blobs"
    assert not any(SECRET.encode() in p.read_bytes() for p in blobs.rglob("*") if p.is_file())


def test_camtrap_dp_merge_refuses_a_resource_outside(package: Path, tmp_path: Path) -> None:
    import shutil

    from pardus.interop.camtrap_dp import CamtrapDPError, merge_packages

    other = tmp_path / "pkg" / "other"
    shutil.copytree(package, other)
    desc = json.loads((other / "datapackage.json").read_text())
    desc["name"] = "other"
    (other / "datapackage.json").write_text(json.dumps(desc))
    _set_path(package, "notes", "../../secret.txt")
    with pytest.raises(CamtrapDPError, match="leads out"):
        merge_packages(package, other, tmp_path / "merged", names=("a", "b"))
    assert not any(SECRET in p.read_text(errors="replace") for p in (tmp_path / "merged").rglob("*") if p.is_file())


def test_package_file_property(tmp_path: Path) -> None:
    """Whatever the path text, package_file answers a path inside the folder or None."""
    from pardus.interop.camtrap_dp import package_file

    root = tmp_path / "p"
    (root / "a").mkdir(parents=True)

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.sampled_from(["..", ".", "a", "b", "", "/", "\\", "C:", "~", "x.csv", "\x00"]),
                    max_size=8).map("/".join) | st.text(max_size=30))
    def check(text: str) -> None:
        got = package_file(root, text)
        if got is not None:
            assert got.resolve().is_relative_to(root.resolve())

    check()


# --- camera heartbeats (item 6): the one boundary for HTTP and MQTT, live.health.record_heartbeat ----

def test_heartbeat_values_are_bounded_over_http(workspace: Workspace) -> None:
    from fastapi.testclient import TestClient

    from pardus.live.cameras import add_camera
    from pardus.store.models import Camera, SensorReading
    from pardus.web.app import LiveConfig, create_app

    token = add_camera(workspace, "C1")
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    refused = [
        ('{"battery_pct": 1e308}', "battery_pct 1e+308 is outside"),
        ('{"battery_pct": NaN}', "battery_pct must be a number"),
        ('{"signal_dbm": "-Infinity"}', "signal_dbm must be a number"),
        ('{"temperature_c": true}', "temperature_c must be a number"),
        ('{"temperature_c": 500}', "outside what a camera can report"),
        ('{"fw": NaN}', "finite"),
        ('{"fw": "a\\u0000b"}', "NUL"),
        ('{"fw": "\\ud800"}', "Unicode"),
        (json.dumps({f"k{i}": i for i in range(40)}), "at most 32 other fields"),
        (json.dumps({"log": "x" * 5000}), "at most 4096 bytes"),
        (json.dumps({"k" * 70: 1}), "field names are 1-64 characters"),
    ]
    with TestClient(create_app(workspace, LiveConfig(pipeline=False))) as client:
        for body, words in refused:
            r = client.post("/api/v1/cameras/C1/heartbeat", content=body.encode(), headers=auth)
            assert r.status_code == 400 and words in r.json()["error"], (body, r.text)
        ok = client.post("/api/v1/cameras/C1/heartbeat", headers=auth, content=json.dumps(
            {"battery_pct": "81", "signal_dbm": -97, "temperature_c": -31.5, "fw": "2.1", "gps": {"fix": True}}))
        assert ok.status_code == 200, ok.text
    with workspace.db.session() as s:
        assert s.scalar(select(func.count()).select_from(SensorReading)) == 4, "refused heartbeats store nothing"
        cam = s.get(Camera, "C1")
        assert cam is not None and cam.health["battery_pct"] == 81.0 and cam.health["other"]["fw"] == "2.1"


def test_heartbeat_property(workspace: Workspace) -> None:
    """Any JSON object: stored whole (known values in range, the rest small) or a HeartbeatError;
    never another exception, never a partial row."""
    from pardus.live.cameras import add_camera
    from pardus.live.health import RANGES, HeartbeatError, record_heartbeat
    from pardus.store.models import Camera, SensorReading

    add_camera(workspace, "HB")
    values = st.one_of(ANY_JSON, st.floats(), st.sampled_from(["nan", "inf", "80", "-97.5", "1e400"]))
    bodies = st.dictionaries(st.one_of(st.sampled_from(sorted(RANGES)), st.text(max_size=70)), values, max_size=40)

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    @given(bodies)
    def check(body: dict[str, Any]) -> None:
        with workspace.db.session() as s:
            before = s.scalar(select(func.count()).select_from(SensorReading))
        try:
            with workspace.db.session() as s:
                cam = s.get(Camera, "HB")
                health = record_heartbeat(s, cam, body)
        except HeartbeatError as exc:
            assert str(exc) and " object at 0x" not in str(exc)
            with workspace.db.session() as s:
                assert s.scalar(select(func.count()).select_from(SensorReading)) == before
            return
        for name, (lo, hi) in RANGES.items():
            if body.get(name) is not None:
                assert lo <= health[name] <= hi and math.isfinite(health[name])

    check()
