"""Issue 20: Wildlife Insights bulk-upload tables out and in; people's identifications only, sensitive
places rounded, computer vision read back as machine; every bad table refused by file, line and column."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from typer.testing import CliRunner

from pardus.config import Settings
from pardus.ingest.deployments import DeploymentSpec, upsert_deployment
from pardus.interop.wi_import import import_wildlife_insights
from pardus.interop.wildlife_insights import (
    BLANK_ID,
    CAMERA_COLUMNS,
    DEPLOYMENT_COLUMNS,
    IMAGE_COLUMNS,
    PROJECT_COLUMNS,
    WildlifeInsightsError,
    export_wildlife_insights,
)
from pardus.store import Workspace, open_workspace
from pardus.store.models import Deployment, Individual, Location, Media, Observation, Project

T0 = datetime(2024, 5, 3, 20, 15, tzinfo=UTC)  # 06:15 the next morning in Primorye (+10:00)
DEN = (43.123456, 131.654321)


def _store(ws: Workspace) -> None:
    """A den (sensitive) and a road; a person's labels, a machine's call, a burst label, a reset clock."""
    with ws.db.session() as s:
        s.add(Project(id="lotl-2024", title="Land of the Leopard 2024", description="Leopard monitoring"))
        s.flush()
        upsert_deployment(s, DeploymentSpec(id="DEN1", location_id="L-DEN", location_name="Den", latitude=DEN[0],
                                            longitude=DEN[1], sensitive=True, utc_offset_minutes=600,
                                            camera_id="CAM-7", camera_make="Reconyx", camera_model="HC600",
                                            start=T0, end=datetime(2024, 6, 1, tzinfo=UTC)))
        upsert_deployment(s, DeploymentSpec(id="ROAD2", location_id="L-ROAD", latitude=43.2, longitude=131.5,
                                            utc_offset_minutes=600, start=T0, end=datetime(2024, 6, 1, tzinfo=UTC)))
        s.flush()
        for d in s.scalars(select(Deployment)):
            d.project_id = "lotl-2024"
        for mid, dep, seq, issues in (("m1", "DEN1", "DEN1:1", None), ("m2", "DEN1", "DEN1:1", None),
                                      ("m3", "ROAD2", None, None), ("m4", "ROAD2", None, None),
                                      ("m5", "ROAD2", None, "clock-reset")):
            s.add(Media(id=mid, deployment_id=dep, file_path=f"DCIM/100MEDIA/{mid}.JPG", file_name=f"{mid}.JPG",
                        file_mediatype="image/jpeg", timestamp=T0, sequence_id=seq, timestamp_issues=issues))
        s.add(Individual(id="i1", code="LEO_001", scientific_name="Panthera pardus orientalis"))
        s.flush()
        s.add(Observation(id="h1", deployment_id="DEN1", media_id="m1", observation_type="animal",
                          scientific_name="Panthera pardus orientalis", count=1, sex="female", life_stage="adult",
                          individual_id="i1", classification_method="human", classified_by="O. Ivanova"))
        s.add(Observation(id="e1", deployment_id="DEN1", event_id="DEN1:1", observation_level="event",
                          observation_type="animal", scientific_name="Panthera pardus orientalis", count=2,
                          classification_method="human", classified_by="O. Ivanova"))
        s.add(Observation(id="h3", deployment_id="ROAD2", media_id="m3", observation_type="blank",
                          classification_method="human", classified_by="A. Petrov"))
        s.add(Observation(id="x4", deployment_id="ROAD2", media_id="m4", observation_type="animal",
                          scientific_name="Sus scrofa", count=3, classification_method="machine",
                          classified_by="speciesnet", classification_probability=0.9))


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_export_writes_the_templates_with_peoples_labels(workspace: Workspace, tmp_path: Path) -> None:
    _store(workspace)
    rep = export_wildlife_insights(workspace, tmp_path / "wi", project_fields={"country_code": "RUS", "embargo": "24"},
                                   media_url="gs://lotl-photos/")
    assert rep.counts == {"projects": 1, "cameras": 2, "deployments": 2, "images": 4}
    assert rep.obscured_locations == ["L-DEN"]
    assert any("1 photo(s) without a time" in w for w in rep.warnings)
    for name, columns in (("projects", PROJECT_COLUMNS), ("cameras", CAMERA_COLUMNS),
                          ("deployments", DEPLOYMENT_COLUMNS), ("images", IMAGE_COLUMNS)):
        with open(tmp_path / "wi" / f"{name}.csv", newline="") as f:
            assert next(csv.reader(f)) == list(columns)
    [project] = _rows(tmp_path / "wi" / "projects.csv")
    assert (project["project_id"], project["project_name"], project["country_code"], project["embargo"]) == (
        "lotl-2024", "Land of the Leopard 2024", "RUS", "24")
    cams = {r["camera_id"]: r for r in _rows(tmp_path / "wi" / "cameras.csv")}
    assert (cams["CAM-7"]["make"], cams["CAM-7"]["model"]) == ("Reconyx", "HC600") and "ROAD2-camera" in cams
    deps = {r["deployment_id"]: r for r in _rows(tmp_path / "wi" / "deployments.csv")}
    assert (deps["DEN1"]["latitude"], deps["DEN1"]["longitude"], deps["DEN1"]["placename"]) == ("43.1", "131.7", "Den")
    assert (deps["DEN1"]["start_date"], deps["DEN1"]["end_date"]) == ("2024-05-04 06:15:00", "2024-06-01 10:00:00")
    assert deps["ROAD2"]["latitude"] == "43.2" and deps["ROAD2"]["camera_id"] == "ROAD2-camera"
    images = _rows(tmp_path / "wi" / "images.csv")
    by = {r["image_id"]: r for r in images}
    assert sorted(by) == ["m1", "m2", "m3", "m4"] and len(images) == 4  # m5: a reset clock dates nothing
    leo = by["m1"]
    assert (leo["genus"], leo["species"], leo["common_name"], leo["number_of_objects"], leo["sex"], leo["age"]) == (
        "Panthera", "pardus", "Amur leopard", "1", "Female", "Adult")
    assert (leo["identified_by"], leo["individual_id"], leo["animal_recognizable"]) == ("O. Ivanova", "LEO_001", "Yes")
    assert (leo["timestamp"], leo["location"]) == ("2024-05-04 06:15:00", "gs://lotl-photos/DEN1/DCIM/100MEDIA/m1.JPG")
    assert (by["m2"]["genus"], by["m2"]["number_of_objects"]) == ("Panthera", "2")  # the burst's label
    assert (by["m3"]["wi_taxon_id"], by["m3"]["common_name"], by["m3"]["number_of_objects"]) == (BLANK_ID, "Blank", "0")
    # The machine's wild boar is not written as an identification: WI would show it as the uploader's.
    assert by["m4"]["genus"] == by["m4"]["identified_by"] == by["m4"]["wi_taxon_id"] == ""
    text = "".join(p.read_text() for p in (tmp_path / "wi").iterdir())
    assert "43.123456" not in text and "131.654321" not in text


def test_round_trip_into_a_fresh_store_field_by_field(workspace: Workspace, tmp_path: Path) -> None:
    _store(workspace)
    export_wildlife_insights(workspace, tmp_path / "wi")
    fresh = open_workspace(Settings(data_dir=tmp_path / "fresh"))
    try:
        rep = import_wildlife_insights(fresh, tmp_path / "wi", utc_offset_minutes=600)
        assert rep.counts == {"deployments": 2, "images": 4, "observations": 3} and rep.project_id == "lotl-2024"
        with fresh.db.session() as s:
            dep = s.get(Deployment, "DEN1")
            assert (dep.start, dep.camera_id, dep.utc_offset_minutes) == (T0, "CAM-7", 600)
            loc = s.get(Location, dep.location_id)
            assert (loc.name, loc.latitude, loc.longitude) == ("Den", 43.1, 131.7)
            m1 = s.get(Media, "m1")
            assert (m1.timestamp, m1.file_path, m1.available) == (T0, "DEN1/DCIM/100MEDIA/m1.JPG", False)
            got = sorted((o.media_id, o.observation_type, o.scientific_name, o.count, o.sex, o.life_stage,
                          o.classification_method, o.classified_by) for o in s.scalars(select(Observation)))
        assert got == [
            ("m1", "animal", "Panthera pardus", 1, "female", "adult", "human", "O. Ivanova"),
            ("m2", "animal", "Panthera pardus", 2, None, None, "human", "O. Ivanova"),
            ("m3", "blank", None, None, None, None, "human", "A. Petrov"),
        ]  # the subspecies has no column in WI's taxonomy: the species comes back
        export_wildlife_insights(fresh, tmp_path / "again")
        first, again = _rows(tmp_path / "wi" / "images.csv"), _rows(tmp_path / "again" / "images.csv")
        drop = ("individual_id", "animal_recognizable")  # the catalogue stays in Pardus
        assert [{k: v for k, v in r.items() if k not in drop} for r in again] == [
            {k: v for k, v in r.items() if k not in drop} for r in first]
        assert _rows(tmp_path / "again" / "deployments.csv") == _rows(tmp_path / "wi" / "deployments.csv")
    finally:
        fresh.close()


DOWNLOAD_IMAGES = (
    "project_id,deployment_id,image_id,filename,location,is_blank,identified_by,wi_taxon_id,class,order,family,"
    "genus,species,common_name,uncertainty,timestamp,number_of_objects,sex,age,license,highlighted,"
    "animal_recognizable,individual_id,individual_animal_notes,behavior,markings,cv_confidence\n"
    "2000123,D1,img-1,IMG_0001.JPG,gs://wi/2000123/IMG_0001.JPG,0,Computer vision,,Mammalia,Carnivora,Felidae,"
    "Panthera,pardus,Leopard,,2023-07-01 22:10:05,1,,,CC-BY,false,,,,,,0.87\n"
    "2000123,D1,img-2,IMG_0002.JPG,gs://wi/2000123/IMG_0002.JPG,1,Olga,f1856211-cfb7-4a5b-9158-c0f72fd09ee6,,,,,,"
    "Blank,,2023-07-01 22:40:00,0,,,CC-BY,false,,,,,,\n"
    "2000123,D1,img-3,IMG_0003.JPG,gs://wi/2000123/IMG_0003.JPG,0,Olga,,Mammalia,Cetartiodactyla,Suidae,Sus,"
    "scrofa,Wild Boar,,2023-07-02 03:00:00,4,,Juvenile,CC-BY,true,,,,,,\n"
    "2000123,D1,img-3,IMG_0003.JPG,gs://wi/2000123/IMG_0003.JPG,0,Olga,,Mammalia,Carnivora,Canidae,Nyctereutes,"
    "procyonoides,Raccoon Dog,,2023-07-02 03:00:00,1,,,CC-BY,true,,,,,,\n"
    "2000123,D1,img-4,IMG_0004.JPG,gs://wi/2000123/IMG_0004.JPG,0,,,,,,,,,,2023-07-02 04:00:00,,,,CC-BY,false,,,,,,\n"
)
DOWNLOAD_DEPLOYMENTS = (
    "project_id,deployment_id,placename,longitude,latitude,start_date,end_date,camera_id,feature_type,recorded_by\n"
    "2000123,D1,Ridge 4,131.61,43.02,2023-06-20 00:00:00,2023-08-01 00:00:00,C-9,Trail game,Olga\n"
)


def _download(folder: Path, images: str = DOWNLOAD_IMAGES, deployments: str = DOWNLOAD_DEPLOYMENTS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "images.csv").write_text(images, encoding="utf-8")
    (folder / "deployments.csv").write_text(deployments, encoding="utf-8")
    (folder / "projects.csv").write_text("project_id,project_name\n2000123,Ridge survey\n", encoding="utf-8")
    return folder


def test_a_download_reads_computer_vision_as_machine(workspace: Workspace, tmp_path: Path) -> None:
    rep = import_wildlife_insights(workspace, _download(tmp_path / "dl"), utc_offset_minutes=600, prefix="wi:")
    assert rep.counts == {"deployments": 1, "images": 4, "observations": 4} and rep.project_id == "wi:2000123"
    with workspace.db.session() as s:
        obs = {(o.media_id, o.scientific_name): o for o in s.scalars(select(Observation))}
        cv = obs["wi:img-1", "Panthera pardus"]
        assert (cv.classification_method, cv.classified_by, cv.classification_probability, cv.count) == (
            "machine", "Computer vision", 0.87, 1)
        blank = obs["wi:img-2", None]
        assert (blank.observation_type, blank.classification_method, blank.classified_by, blank.count) == (
            "blank", "human", "Olga", None)
        boar = obs["wi:img-3", "Sus scrofa"]
        assert (boar.count, boar.life_stage, boar.classification_method) == (4, "juvenile", "human")
        assert ("wi:img-3", "Nyctereutes procyonoides") in obs  # two species on one photo: two rows
        m = s.get(Media, "wi:img-3")
        assert (m.file_name, m.favorite, m.timestamp) == ("IMG_0003.JPG", True, datetime(2023, 7, 1, 17, 0, tzinfo=UTC))
        assert s.get(Deployment, "wi:D1").camera_id == "wi:C-9"
    again = import_wildlife_insights(workspace, tmp_path / "dl", utc_offset_minutes=600, prefix="wi:")
    assert again.counts["observations"] == 4
    with workspace.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Observation)) == 4  # again: updated, not doubled


def _counts(ws: Workspace) -> tuple[int, ...]:
    with ws.db.session() as s:
        return tuple(s.scalar(select(func.count()).select_from(m)) or 0 for m in (Deployment, Media, Observation))


@pytest.mark.parametrize(("table", "old", "new", "message"), [
    ("deployments", "43.02", "93.02", r"deployments.csv line 2, column latitude: '93.02' is no latitude"),
    ("deployments", "131.61", "east", "column longitude"),
    ("deployments", "2023-08-01 00:00:00", "2023-06-01 00:00:00", "line 2: the deployment ends"),
    ("deployments", "2023-06-20 00:00:00", "20.06.2023", "column start_date: '20.06.2023' is no date"),
    ("deployments", "latitude", "lat", "has no column 'latitude'"),
    ("images", "2023-07-01 22:10:05", "yesterday", r"images.csv line 2, column timestamp"),
    ("images", "0.87", "1.5", "column cv_confidence: '1.5' is not a number from 0 to 1"),
    ("images", "Wild Boar,,2023-07-02 03:00:00,4", "Wild Boar,,2023-07-02 03:00:00,four",
     "column number_of_objects: 'four' is not a whole number"),
    ("images", "2000123,D1,img-4", "2000123,D9,img-4", "line 6: deployment 'D9' is not in deployments.csv"),
    ("images", "2000123,D1,img-4", "2000123,D1," + "x" * 70, "column image_id"),
    ("images", "gs://wi/2000123/IMG_0002.JPG", "", "column location: the photo's location is empty"),
    ("images", "Raccoon Dog,,2023-07-02 03:00:00", "Raccoon Dog,,2023-07-02 03:00:01",
     "image 'img-3' is given again with another deployment, location or time"),
])  # fmt: skip
def test_bad_tables_are_refused_by_line_and_column(workspace: Workspace, tmp_path: Path, table: str, old: str,
                                                   new: str, message: str) -> None:
    images, deployments = DOWNLOAD_IMAGES, DOWNLOAD_DEPLOYMENTS
    if table == "images":
        assert old in images
        images = images.replace(old, new, 1)
    else:
        assert old in deployments
        deployments = deployments.replace(old, new, 1)
    with pytest.raises(WildlifeInsightsError, match=message):
        import_wildlife_insights(workspace, _download(tmp_path / "bad", images, deployments))
    assert _counts(workspace) == (0, 0, 0)


def test_unreadable_files_are_refused(workspace: Workspace, tmp_path: Path) -> None:
    folder = _download(tmp_path / "enc")
    (folder / "images.csv").write_bytes(DOWNLOAD_IMAGES.replace("Leopard", "Леопард").encode("cp1251"))
    with pytest.raises(WildlifeInsightsError, match="images.csv is not UTF-8"):
        import_wildlife_insights(workspace, folder)
    (folder / "images.csv").write_text(DOWNLOAD_IMAGES.replace("Leopard", "Leo\x00pard"))
    with pytest.raises(WildlifeInsightsError, match="NUL"):
        import_wildlife_insights(workspace, folder)
    (folder / "images.csv").unlink()
    with pytest.raises(WildlifeInsightsError, match="has no images.csv"):
        import_wildlife_insights(workspace, folder)
    with pytest.raises(WildlifeInsightsError, match="is not a folder"):
        import_wildlife_insights(workspace, tmp_path / "nowhere")
    assert _counts(workspace) == (0, 0, 0)
    with pytest.raises(WildlifeInsightsError, match="'country' is not a column"):
        export_wildlife_insights(workspace, tmp_path / "out", project_fields={"country": "RUS"})
    assert not (tmp_path / "out").exists()


CELL = st.one_of(st.sampled_from(["", "D1", "0", "1", "43.5", "-200", "2023-07-01 22:10:05", "x", "1.5", "Olga",
                                  "²", "1e400", "nan", "9999-12-31 23:59:59", "0001-01-01", "x" * 300]),
                 st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                         max_size=8))


IMAGE_FIELDS = ["deployment_id", "image_id", "location", "timestamp", "number_of_objects", "cv_confidence", "genus",
                "species", "is_blank"]
DEPLOYMENT_FIELDS = ["deployment_id", "latitude", "longitude", "start_date", "end_date"]
GOOD_TIME = st.sampled_from(["2023-07-01 22:10:05", "2023-06-01", "2023-08-01 00:00:00"])
IMAGE_CELLS = st.fixed_dictionaries({
    "deployment_id": st.one_of(st.just("D1"), CELL), "image_id": CELL, "location": CELL,
    "timestamp": st.one_of(GOOD_TIME, CELL),
    "number_of_objects": CELL, "cv_confidence": CELL, "genus": CELL, "species": CELL, "is_blank": CELL})
DEPLOYMENT_CELLS = st.fixed_dictionaries({
    "deployment_id": st.one_of(st.just("D1"), CELL),
    "latitude": st.one_of(st.floats(-90, 90).map(str), CELL),
    "longitude": st.one_of(st.floats(-180, 180).map(str), CELL),
    "start_date": st.one_of(st.just("2023-06-01"), CELL), "end_date": st.one_of(st.just("2023-08-01 00:00:00"), CELL)})


def test_wildlife_insights_import_property(workspace: Workspace, tmp_path: Path) -> None:
    """Generated tables: imported whole (every image kept) or refused with a WildlifeInsightsError that
    names the file; never another exception, never a partial import."""

    @settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
    @given(dep=DEPLOYMENT_CELLS, images=st.lists(IMAGE_CELLS, max_size=4))
    def check(dep: dict[str, str], images: list[dict[str, str]]) -> None:
        for name, cols, rows in (("deployments", DEPLOYMENT_FIELDS, [dep]), ("images", IMAGE_FIELDS, images)):
            with open(tmp_path / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
                w = csv.DictWriter(f, fieldnames=cols)
                w.writeheader()
                w.writerows(rows)
        try:
            rep = import_wildlife_insights(workspace, tmp_path)
        except WildlifeInsightsError as exc:
            assert ".csv" in str(exc) or "project_id" in str(exc)
            assert _counts(workspace) == (0, 0, 0)
            return
        assert rep.counts.get("images", 0) == len({r["image_id"] for r in images})
        imported.append(len(images))
        with workspace.db.session() as s:  # the next example starts from an empty store
            for model in (Observation, Media, Deployment, Location, Project):
                s.execute(model.__table__.delete())

    imported: list[int] = []
    check()
    assert imported, "no generated table was well formed: the strategy tests only refusals"


def test_cli_round_trip_and_refusal(workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pardus.cli import app
    from pardus.config import get_settings

    _store(workspace)
    monkeypatch.setenv("PARDUS_DATA_DIR", str(workspace.settings.data_dir))
    if workspace.settings.database_url:
        monkeypatch.setenv("PARDUS_DATABASE_URL", workspace.settings.database_url)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        res = runner.invoke(app, ["export", "wildlife-insights", str(tmp_path / "wi"), "--project-field",
                                  "country_code=RUS"])
        assert res.exit_code == 0, res.output
        assert "4 images" in res.output and "1 sensitive place(s) rounded" in res.output
        res = runner.invoke(app, ["export", "wildlife-insights", str(tmp_path / "x"), "--project-field", "RUS"])
        assert res.exit_code == 1 and "KEY=VALUE" in res.output
        bad = _download(tmp_path / "bad", deployments=DOWNLOAD_DEPLOYMENTS.replace("43.02", "north"))
        res = runner.invoke(app, ["import", "wildlife-insights", str(bad), "--prefix", "b:"])
        assert res.exit_code == 1 and "latitude" in res.output and "Traceback" not in res.output
        with workspace.db.session() as s:
            assert s.get(Deployment, "b:D1") is None
        res = runner.invoke(app, ["import", "wildlife-insights", str(_download(tmp_path / "good")), "--prefix", "g:",
                                  "--utc-offset", "+10:00"])
        assert res.exit_code == 0, res.output
        assert "4 observations" in res.output
    finally:
        get_settings.cache_clear()
