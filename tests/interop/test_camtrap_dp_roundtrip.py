"""The official Camtrap DP example goes in and comes out with every cell and every metadata value intact."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pardus.config import Settings
from pardus.interop.camtrap_dp import CamtrapDPError, export_camtrap_dp, import_camtrap_dp
from pardus.interop.camtrap_dp_schema import validate_package
from pardus.store import open_workspace
from pardus.store.blobs import sha256_file
from pardus.store.models import Deployment, Media, Observation

from .helpers import cell_differences, frictionless_errors, read_table


@pytest.fixture(scope="session")
def example(shared_data: Path) -> Path:
    return shared_data / "camtrap-dp-example" / "example"


def test_example_round_trip_is_lossless(workspace, example: Path, tmp_path: Path) -> None:
    rep = import_camtrap_dp(workspace, example)
    assert rep.counts["media"] == 423 and rep.counts["observations"] == 549 and rep.counts["deployments"] == 4
    out = tmp_path / "out"
    exp = export_camtrap_dp(workspace, out, copy_media=True)
    assert exp.validation is not None and exp.validation.valid, exp.validation.summary()
    assert cell_differences(example, out) == []
    assert json.loads((out / "datapackage.json").read_text()) == json.loads((example / "datapackage.json").read_text())
    for jpg in (example / "media").iterdir():
        assert sha256_file(out / "media" / jpg.name) == sha256_file(jpg)

    # import -> export -> import -> export: the second trip changes nothing either.
    ws2 = open_workspace(Settings(data_dir=tmp_path / "second", database_url=None))
    try:
        import_camtrap_dp(ws2, out)
        export_camtrap_dp(ws2, tmp_path / "out2", copy_media=True)
    finally:
        ws2.close()
    assert cell_differences(out, tmp_path / "out2") == []
    assert json.loads((out / "datapackage.json").read_text()) == json.loads(
        (tmp_path / "out2" / "datapackage.json").read_text()
    )


def test_store_keeps_utc_instants_and_remote_media_as_unavailable(workspace, example: Path) -> None:
    rep = import_camtrap_dp(workspace, example)
    assert rep.counts["media_remote"] == 413 and rep.counts["media_files"] == 10
    with workspace.db.session() as s:
        m = s.get(Media, "07840dcc")  # 2020-05-30T04:57:37+02:00
        assert m is not None and m.timestamp == datetime(2020, 5, 30, 2, 57, 37, tzinfo=UTC)
        assert m.available is False and m.sha256 is None
        assert s.get(Deployment, "00a2c20d").utc_offset_minutes == 120
        local = s.get(Media, "7ab33b3a")
        assert local.available and workspace.blobs.exists(local.sha256)
        ev = s.get(Observation, "705e6036")
        assert ev.observation_level == "event" and ev.event_start == datetime(2020, 5, 30, 2, 57, 37, tzinfo=UTC)
        assert s.scalar(select(func.count()).select_from(Observation)) == 549


def test_version_1_0_with_bom_reads_the_same(sqlite_settings, shared_data: Path, example: Path, tmp_path: Path) -> None:
    old = shared_data / "camtrap-dp-example" / "example-1.0"
    assert (old / "observations.csv").read_bytes()[:3] == b"\xef\xbb\xbf"
    ws = open_workspace(sqlite_settings)
    try:
        rep = import_camtrap_dp(ws, old / "datapackage.json")
        assert rep.version == "1.0"
        exp = export_camtrap_dp(ws, tmp_path / "out")
    finally:
        ws.close()
    assert exp.validation.valid, exp.validation.summary()
    assert cell_differences(example, tmp_path / "out") == []
    # Written as 1.0.2: the profile and schema URLs name the current version.
    assert "/1.0.2/" in json.loads((tmp_path / "out" / "datapackage.json").read_text())["profile"]


def test_export_passes_frictionless_against_the_official_schemas(
    sqlite_settings, shared_data: Path, example: Path, tmp_path: Path
) -> None:
    schemas = shared_data / "camtrap-dp-example" / "schemas"
    ws = open_workspace(sqlite_settings)
    try:
        import_camtrap_dp(ws, example)
        export_camtrap_dp(ws, tmp_path / "out")
    finally:
        ws.close()
    assert frictionless_errors(tmp_path / "out", schemas, tmp_path) == []
    # The same check does catch a broken package (a count of zero and a made-up observation type).
    broken = tmp_path / "broken"
    shutil.copytree(tmp_path / "out", broken)
    text = (broken / "observations.csv").read_text().replace(",media,animal,", ",media,ghost,", 1)
    (broken / "observations.csv").write_text(text)
    assert any("constraint" in e for e in frictionless_errors(broken, schemas, tmp_path))
    assert not validate_package(broken).valid


def test_reimport_is_idempotent_and_edits_win_over_kept_text(workspace, example: Path, tmp_path: Path) -> None:
    import_camtrap_dp(workspace, example)
    import_camtrap_dp(workspace, example)
    with workspace.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Media)) == 423
        dep = s.get(Deployment, "00a2c20d")
        assert dep.camera_height == 1.3 and dep.text_hints["cameraHeight"] == ["1.3", "1.30"]
        dep.camera_height = 1.5  # a correction made in Pardus
    export_camtrap_dp(workspace, tmp_path / "out")
    _, rows = read_table(tmp_path / "out" / "deployments.csv")
    assert rows["00a2c20d"]["cameraHeight"] == "1.5"
    assert rows["29b7d356"]["cameraHeight"] == "0.70"


def test_clashing_ids_are_refused_unless_prefixed(workspace, example: Path) -> None:
    with workspace.db.session() as s:
        s.add(Deployment(id="00a2c20d"))
    with pytest.raises(CamtrapDPError, match="--prefix"):
        import_camtrap_dp(workspace, example)
    with workspace.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Media)) == 0  # all or nothing
    rep = import_camtrap_dp(workspace, example, prefix="mica_")
    assert rep.counts["observations"] == 549
    with workspace.db.session() as s:
        assert s.get(Media, "mica_07840dcc").deployment_id == "mica_00a2c20d"
