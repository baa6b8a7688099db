"""Pardus's own data as Camtrap DP: sensitive places hidden, people's photos private, individuals kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pardus.config import Settings
from pardus.ingest.deployments import DeploymentSpec, upsert_deployment
from pardus.interop.camtrap_dp import (
    CamtrapDPError,
    export_camtrap_dp,
    import_camtrap_dp,
    user_may_see_exact_coordinates,
)
from pardus.store import open_workspace
from pardus.store.models import Detection, Individual, Location, Media, Observation, User

from .helpers import cell_differences, frictionless_errors, read_table

LAT, LON = 43.123456, 131.654321  # a leopard den: must never leave exactly


def _park(ws) -> None:
    t0 = datetime(2024, 5, 1, 0, 0, tzinfo=UTC)
    with ws.db.session() as s:
        upsert_deployment(s, DeploymentSpec(
            id="C017", location_id="den-7", latitude=LAT, longitude=LON, start=t0, end=t0 + timedelta(days=30),
            utc_offset_minutes=600, sensitive=True, camera_id="H2-0017", camera_make="RECONYX", camera_model="HF2X",
        ))  # fmt: skip
        upsert_deployment(s, DeploymentSpec(
            id="C018", location_id="trail-2", latitude=43.5, longitude=131.25, start=t0, end=t0 + timedelta(days=30),
            utc_offset_minutes=600,
        ))  # fmt: skip
        s.get(Location, "den-7").name = f"den near {LAT}, {LON}"
        s.add(Individual(id="ind-1", code="SC_026", name="Berry", scientific_name="Panthera pardus orientalis",
                         sex="female", first_seen=t0 + timedelta(hours=2), notes="left ear notch"))  # fmt: skip
        for i in range(4):
            s.add(Media(
                id=f"m{i}", deployment_id="C017" if i < 3 else "C018", file_path=f"DCIM/100RECNX/IMG_{i:04d}.JPG",
                file_name=f"IMG_{i:04d}.JPG", file_mediatype="image/jpeg", timestamp=t0 + timedelta(hours=2, seconds=i),
                camera_time=datetime(2024, 5, 1, 12, 0, i), exif_make="RECONYX", exif_model="HF2X",
                exif_datetime_raw=f"2024:05:01 12:00:0{i}", sha256=f"{i:064d}",
                comments=f"GPS {LAT:.5f} {LON:.5f}" if i == 0 else None,
                extra={"exifData": json.dumps({"GPSLatitude": LAT, "Make": "RECONYX"})} if i == 1 else {},
            ))  # fmt: skip
        s.flush()
        s.add(Observation(id="o0", deployment_id="C017", media_id="m0", observation_level="media",
                          observation_type="animal", scientific_name="Panthera pardus orientalis", count=1,
                          individual_id="ind-1", classification_method="human", classified_by="E. Ecologist",
                          bbox_x=0.1, bbox_y=0.2, bbox_width=0.3, bbox_height=0.4,
                          extra={"reviewStatus": "confirmed"}))  # fmt: skip
        s.add(Observation(id="o1", deployment_id="C017", media_id="m1", observation_level="media",
                          observation_type="human", classification_method="machine",
                          classified_by="MegaDetector v5a", classification_probability=0.93))  # fmt: skip
        s.add(Detection(media_id="m2", category="person", score=0.81, x=0.1, y=0.1, w=0.2, h=0.5,
                        model_name="md_v5a.0.0.pt", model_version="v5a.0.0"))  # fmt: skip
        s.add(Observation(id="o3", deployment_id="C018", event_id="C018:000001", observation_level="event",
                          observation_type="blank", event_start=t0 + timedelta(hours=2, seconds=3),
                          event_end=t0 + timedelta(hours=2, seconds=3)))  # fmt: skip


def _all_text(folder: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in folder.rglob("*") if p.suffix in (".csv", ".json"))


def test_sensitive_place_never_leaves_exactly(workspace, tmp_path: Path) -> None:
    _park(workspace)
    rep = export_camtrap_dp(workspace, tmp_path / "out")
    assert rep.validation.valid, rep.validation.summary()
    text = _all_text(tmp_path / "out")
    for digits in ("43.123", "131.654", "43.12345", "131.65432"):
        assert digits not in text, f"{digits} leaked"
    _, deps = read_table(tmp_path / "out" / "deployments.csv")
    assert (deps["C017"]["latitude"], deps["C017"]["longitude"]) == ("43.1", "131.7")
    assert int(deps["C017"]["coordinateUncertainty"]) >= 7800  # half the diagonal of a 0.1 degree cell
    assert (deps["C018"]["latitude"], deps["C018"]["longitude"]) == ("43.5", "131.25")  # not sensitive
    meta = json.loads((tmp_path / "out" / "datapackage.json").read_text())
    assert meta["coordinatePrecision"] == 0.1
    assert rep.obscured_locations == ["den-7"] and rep.redacted_values >= 3


def test_exact_coordinates_need_the_right_role(workspace, tmp_path: Path) -> None:
    _park(workspace)
    with pytest.raises(CamtrapDPError, match="reviewer or an admin"):
        export_camtrap_dp(workspace, tmp_path / "a", exact_coordinates=True, allow_exact=False)
    with workspace.db.session() as s:
        s.add_all([User(name="olga", role="reviewer"), User(name="ivan", role="ranger")])
    with workspace.db.session() as s:
        assert user_may_see_exact_coordinates(s, "olga") and not user_may_see_exact_coordinates(s, "ivan")
        with pytest.raises(CamtrapDPError, match="no user"):
            user_may_see_exact_coordinates(s, "nobody")
    export_camtrap_dp(workspace, tmp_path / "b", exact_coordinates=True, allow_exact=True)
    _, deps = read_table(tmp_path / "b" / "deployments.csv")
    assert (float(deps["C017"]["latitude"]), float(deps["C017"]["longitude"])) == (LAT, LON)
    export_camtrap_dp(workspace, tmp_path / "c", coordinate_precision=0.01)
    _, deps = read_table(tmp_path / "c" / "deployments.csv")
    assert deps["C017"]["latitude"] == "43.12"
    assert json.loads((tmp_path / "c" / "datapackage.json").read_text())["coordinatePrecision"] == 0.01


def test_photos_of_people_are_not_public(workspace, tmp_path: Path) -> None:
    _park(workspace)
    export_camtrap_dp(workspace, tmp_path / "out")
    _, media = read_table(tmp_path / "out" / "media.csv")
    assert media["m1"]["filePublic"] == "false"  # a human observation
    assert media["m2"]["filePublic"] == "false"  # MegaDetector saw a person
    assert media["m0"]["filePublic"] == "true" and media["m3"]["filePublic"] == "true"


def test_native_export_is_valid_and_round_trips_with_individuals(
    workspace, shared_data: Path, tmp_path: Path
) -> None:
    _park(workspace)
    out = tmp_path / "out"
    rep = export_camtrap_dp(workspace, out, exact_coordinates=True, allow_exact=True)
    assert rep.validation.valid, rep.validation.summary()
    # o0, a person's photo observation, is published at event level too (issue 20: GBIF reads events)
    assert rep.counts == {"deployments": 2, "media": 4, "observations": 4, "individuals": 1, "events_reviewed": 1}
    assert frictionless_errors(out, shared_data / "camtrap-dp-example" / "schemas", tmp_path) == []
    meta = json.loads((out / "datapackage.json").read_text())
    res = {r["name"]: r for r in meta["resources"]}
    assert res["individuals"]["path"] == "individuals.csv" and meta["project"]["individualAnimals"] is True
    _, obs = read_table(out / "observations.csv")
    assert obs["o0"]["individualID"] == "SC_026"
    assert obs["o0"]["eventStart"] == "2024-05-01T12:00:00+10:00"  # media-level: the photo's time, local
    assert obs["o0"]["observationTags"] == "reviewStatus:confirmed"  # nothing Pardus knows is dropped
    _, media = read_table(out / "media.csv")
    assert media["m0"]["filePath"] == "media/C017/DCIM/100RECNX/IMG_0000.JPG"
    assert json.loads(media["m0"]["exifData"]) == {"Make": "RECONYX", "Model": "HF2X",
                                                   "DateTimeOriginal": "2024:05:01 12:00:00"}  # fmt: skip
    ws2 = open_workspace(Settings(data_dir=tmp_path / "second"))
    try:
        rep2 = import_camtrap_dp(ws2, out)
        assert rep2.counts["individuals"] == 1
        export_camtrap_dp(ws2, tmp_path / "again")
    finally:
        ws2.close()
    assert cell_differences(out, tmp_path / "again") == []
    _, ind_a = read_table(out / "individuals.csv")
    _, ind_b = read_table(tmp_path / "again" / "individuals.csv")
    assert ind_a == ind_b and ind_a["SC_026"]["individualName"] == "Berry"


def test_deployment_without_place_gets_a_clear_error(workspace, tmp_path: Path) -> None:
    with workspace.db.session() as s:
        upsert_deployment(s, DeploymentSpec(id="C099"))
    with pytest.raises(CamtrapDPError, match="C099 has no latitude/longitude.*pardus deployments add"):
        export_camtrap_dp(workspace, tmp_path / "out")


def _jpeg_with_gps() -> bytes:
    import io

    from PIL import Image

    exif = Image.Exif()
    exif[0x010F] = "RECONYX"
    exif.get_ifd(0x8769)[0x9003] = "2024:06:01 21:00:00"
    exif[0x8825] = {1: "N", 2: (43.0, 10.0, 30.0), 3: "E", 4: (131.0, 20.0, 0.0)}
    buf = io.BytesIO()
    Image.new("RGB", (320, 240), (90, 120, 80)).save(buf, "JPEG", exif=exif.tobytes(), quality=90)
    return buf.getvalue()


def test_item2_copied_photos_carry_no_gps_unless_exact_places_were_allowed(workspace, tmp_path) -> None:
    """Issue 19, item 2: `--copy-media` published exact sensitive places in the copies' EXIF GPS
    while media.csv rounded them. Copies lose the GPS block (pixels and camera time kept); the stored
    original is never changed; an authorised exact export keeps it."""
    import io

    import exifread
    from sqlalchemy import select

    from pardus.ingest.card import import_card
    from pardus.store.blobs import sha256_bytes
    from pardus.store.models import Deployment, Location, Media

    data = _jpeg_with_gps()
    card = tmp_path / "card" / "DCIM" / "100MEDIA"
    card.mkdir(parents=True)
    (card / "IMG_0001.JPG").write_bytes(data)
    with workspace.db.session() as s:
        s.add(Location(id="L9", name="den", latitude=43.1751, longitude=131.3334, sensitive=True))
        s.add(Deployment(id="D9", location_id="L9"))
    import_card(workspace, tmp_path / "card", "D9")
    with workspace.db.session() as s:
        m = s.scalars(select(Media)).one()
    for exact, keeps in ((False, False), (True, True)):
        out = tmp_path / f"pkg-{exact}"
        export_camtrap_dp(workspace, out, copy_media=True, exact_coordinates=exact, allow_exact=exact, validate=False)
        copy = next(out.rglob("IMG_0001.JPG")).read_bytes()
        tags = exifread.process_file(io.BytesIO(copy), details=False)
        assert any(k.startswith("GPS") for k in tags) is keeps
        assert str(tags["EXIF DateTimeOriginal"]) == "2024:06:01 21:00:00"
    assert sha256_bytes(workspace.blobs.get_bytes(m.sha256)) == m.sha256 == sha256_bytes(data)
