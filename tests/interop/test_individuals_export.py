"""Issue 20: the individuals catalogue on its own (CSV and JSON, photos per flank); sensitive places never exact."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pardus.ingest.deployments import DeploymentSpec, upsert_deployment
from pardus.interop.individuals import IndividualsExportError, export_individuals
from pardus.store import Workspace
from pardus.store.models import Individual, Media, Observation

DEN = (43.123456, 131.654321)  # a sensitive place: a den
T0 = datetime(2024, 5, 3, 20, 15, tzinfo=UTC)


def _catalogue(ws: Workspace) -> None:
    """Two leopards at a den (sensitive) and a road; one record merged into another; a proposal, a
    corrected decision and a reset clock, which the catalogue must not publish as they are."""
    with ws.db.session() as s:
        upsert_deployment(s, DeploymentSpec(id="DEN1", location_id="L-DEN", latitude=DEN[0], longitude=DEN[1],
                                            sensitive=True, utc_offset_minutes=600))
        upsert_deployment(s, DeploymentSpec(id="ROAD2", location_id="L-ROAD", latitude=43.2, longitude=131.5,
                                            utc_offset_minutes=600))
        s.flush()
        for mid, dep, issues in (("m1", "DEN1", None), ("m2", "DEN1", None), ("m3", "ROAD2", None),
                                 ("m4", "ROAD2", "clock-reset"), ("m5", "ROAD2", None)):
            s.add(Media(id=mid, deployment_id=dep, file_path=f"DCIM/100MEDIA/{mid}.JPG", file_name=f"{mid}.JPG",
                        file_mediatype="image/jpeg", sha256=mid * 16, timestamp=T0, timestamp_issues=issues))
        s.add(Individual(id="i1", code="LEO_001", name="Berry", scientific_name="Panthera pardus orientalis", sex="F",
                         first_seen=T0, last_seen=T0, notes=f"den at {DEN[0]}, {DEN[1]}; seen with cubs"))
        s.add(Individual(id="i2", code="LEO_002", scientific_name="Panthera pardus orientalis", sex="unknown"))
        s.add(Individual(id="i9", code="LEO_009", scientific_name="Panthera pardus orientalis", merged_into="i1"))
        s.add(Individual(id="t1", code="TIG_001", scientific_name="Panthera tigris altaica", sex="M"))
        s.flush()

        def seen(oid: str, mid: str, ind: str, flank: str | None, **kw: object) -> None:
            dep = "DEN1" if mid in ("m1", "m2") else "ROAD2"
            s.add(Observation(id=oid, deployment_id=dep, media_id=mid, observation_type="animal", individual_id=ind,
                              scientific_name="Panthera pardus orientalis", classification_method="human",
                              classified_by="O. Ivanova", classification_timestamp=T0,
                              extra={"reid": {"flank": flank}}, **kw))

        seen("o1", "m1", "i1", "left", bbox_x=0.1, bbox_y=0.2, bbox_width=0.3, bbox_height=0.4)
        seen("o2", "m2", "i1", "right")
        seen("o3", "m3", "i1", None)
        seen("o4", "m4", "i2", "left")
        seen("o5", "m5", "i2", "left", superseded_by="d9")  # a person corrected this one: not the catalogue
        s.add(Observation(id="p1", deployment_id="ROAD2", media_id="m5", observation_type="animal",
                          classification_method="machine", individual_id="i2",
                          classified_by="reid"))  # a machine's call: not the catalogue


def test_json_holds_each_animal_with_its_photos_per_flank(workspace: Workspace, tmp_path: Path) -> None:
    _catalogue(workspace)
    rep = export_individuals(workspace, tmp_path / "cat.json")
    assert (rep.individuals, rep.photos, rep.obscured_locations) == (3, 4, ["L-DEN"])
    doc = json.loads((tmp_path / "cat.json").read_text())
    assert doc["coordinatePrecision"] == 0.1 and doc["flanks"] == ["left", "right", "unknown"]
    inds = {r["individualCode"]: r for r in doc["individuals"]}
    assert sorted(inds) == ["LEO_001", "LEO_002", "TIG_001"]  # LEO_009 lives on inside LEO_001
    berry = inds["LEO_001"]
    assert (berry["name"], berry["sex"], berry["firstSeen"], berry["formerCodes"]) == (
        "Berry", "female", "2024-05-03T20:15:00Z", ["LEO_009"])
    assert berry["photoCount"] == 3 and berry["locations"] == ["L-DEN", "L-ROAD"]
    [left] = berry["photos"]["left"]
    assert left == {
        "observationID": "o1", "mediaID": "m1", "file": "DEN1/DCIM/100MEDIA/m1.JPG", "sha256": "m1" * 16,
        "timestamp": "2024-05-04T06:15:00+10:00", "timeIssue": None, "deploymentID": "DEN1", "locationID": "L-DEN",
        "latitude": 43.1, "longitude": 131.7, "coordinatesRounded": True, "bbox": [0.1, 0.2, 0.3, 0.4],
        "confirmedBy": "O. Ivanova", "confirmedAt": "2024-05-03T20:15:00Z",
    }  # fmt: skip
    assert [p["observationID"] for p in berry["photos"]["right"]] == ["o2"]
    [road] = berry["photos"]["unknown"]
    assert (road["latitude"], road["longitude"], road["coordinatesRounded"]) == (43.2, 131.5, False)
    # Nowhere in the file is the den exact: not in a photo, not in the notes.
    text = (tmp_path / "cat.json").read_text()
    assert "43.123456" not in text and "131.654321" not in text and "43.12" not in text
    assert berry["notes"] == "den at 43.1, 131.7; seen with cubs"
    # A reset clock dates nothing; a corrected decision and a machine's call are not the catalogue.
    [reset] = inds["LEO_002"]["photos"]["left"]
    assert (reset["observationID"], reset["timestamp"], reset["timeIssue"]) == ("o4", None, "clock-reset")
    assert inds["LEO_002"]["sex"] is None and inds["TIG_001"]["sex"] == "male"
    assert inds["TIG_001"]["photoCount"] == 0


def test_csv_tables_and_choices(workspace: Workspace, tmp_path: Path) -> None:
    _catalogue(workspace)
    rep = export_individuals(workspace, tmp_path / "tables", species="Panthera pardus", coordinate_precision=0.5)
    assert (rep.individuals, rep.photos) == (2, 4)
    with open(tmp_path / "tables" / "individuals.csv", newline="", encoding="utf-8") as f:
        rows = {r["individualCode"]: r for r in csv.DictReader(f)}
    assert sorted(rows) == ["LEO_001", "LEO_002"]
    assert (rows["LEO_001"]["photos"], rows["LEO_001"]["photosLeft"], rows["LEO_001"]["photosRight"],
            rows["LEO_001"]["photosFlankUnknown"], rows["LEO_001"]["formerCodes"]) == ("3", "1", "1", "1", "LEO_009")
    with open(tmp_path / "tables" / "individual_photos.csv", newline="", encoding="utf-8") as f:
        photos = list(csv.DictReader(f))
    assert [(p["individualCode"], p["flank"], p["observationID"]) for p in photos] == [
        ("LEO_001", "left", "o1"), ("LEO_001", "right", "o2"), ("LEO_001", "unknown", "o3"), ("LEO_002", "left", "o4")]
    den = photos[0]
    assert (den["latitude"], den["longitude"], den["coordinatesRounded"], den["bboxWidth"]) == (
        "43.0", "131.5", "true", "0.3")
    assert photos[3]["timestamp"] == "" and photos[3]["timeIssue"] == "clock-reset"
    only = export_individuals(workspace, tmp_path / "one.json", codes=["LEO_002"])
    assert (only.individuals, only.photos, only.obscured_locations) == (1, 1, [])


def test_bad_requests_write_nothing(workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _catalogue(workspace)
    with pytest.raises(IndividualsExportError, match="no individual 'LEO_404'"):
        export_individuals(workspace, tmp_path / "x.json", codes=["LEO_404"])
    with pytest.raises(IndividualsExportError, match="positive number of degrees"):
        export_individuals(workspace, tmp_path / "x.json", coordinate_precision=0)
    assert not (tmp_path / "x.json").exists()
    (tmp_path / "taken").write_text("a file, not a folder")
    with pytest.raises(IndividualsExportError, match="is a file"):
        export_individuals(workspace, tmp_path / "taken")

    from pardus.cli import app
    from pardus.config import get_settings

    monkeypatch.setenv("PARDUS_DATA_DIR", str(workspace.settings.data_dir))
    if workspace.settings.database_url:
        monkeypatch.setenv("PARDUS_DATABASE_URL", workspace.settings.database_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        res = runner.invoke(app, ["export", "individuals", str(tmp_path / "y.json"), "--code", "LEO_404"])
        assert res.exit_code == 1 and "LEO_404" in res.output and not (tmp_path / "y.json").exists()
        res = runner.invoke(app, ["export", "individuals", str(tmp_path / "y.json")])
        assert res.exit_code == 0, res.output
        assert "3 individuals, 4 confirmed photos" in res.output and "1 sensitive place(s) rounded" in res.output
    finally:
        get_settings.cache_clear()
