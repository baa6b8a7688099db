"""Issue 20 step 1: Pardus's own reviewed season is a valid Camtrap DP package, checked by frictionless
against the official schemas, with nothing the public should not see and the review at event level."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import typer
from sqlalchemy import select
from typer.testing import CliRunner

from pardus.ingest.timefix import time_is_trusted
from pardus.interop.camtrap_dp import (
    CamtrapDPError,
    PackageMetadata,
    export_camtrap_dp,
    parse_contributor,
    read_metadata_file,
)
from pardus.interop.camtrap_dp_schema import validate_package
from pardus.store.models import Individual, Media, Observation

from .conftest import Season
from .helpers import frictionless_errors, read_table

SCHEMAS = Path("camtrap-dp-example") / "schemas"


def _mess(season: Season) -> None:
    """What the pipeline and the catalogue leave in a store: re-id data in extra, a sex 'unknown'."""
    with season.ws.db.session() as s:
        if s.scalars(select(Individual).where(Individual.code == "XX_001")).first():
            return
        media = s.scalars(select(Media).where(Media.timestamp_issues.is_(None)).order_by(Media.id)).first()
        ind = Individual(code="XX_001", scientific_name="Panthera pardus orientalis", sex="unknown")
        s.add(ind)
        s.flush()
        s.add(Observation(deployment_id=media.deployment_id, media_id=media.id, observation_level="media",
                          observation_type="animal", scientific_name="Panthera pardus orientalis", count=1,
                          individual_id=ind.id, classification_method="human", classified_by="O. Ivanova"))
        s.add(Observation(deployment_id=media.deployment_id, media_id=media.id, observation_level="media",
                          observation_type="animal", scientific_name="Panthera pardus orientalis",
                          classification_method="machine", classified_by="reid",
                          extra={"reid": {"is_new": True, "new_probability": 0.7, "candidates": [["PO_007", 0.2]]},
                                 "detection_id": "d-123", "stage": "detect:md6", "boxes_from": "detect:md6",
                                 "travelDirection": "left"}))  # fmt: skip


def test_season_exports_valid_for_frictionless_and_gbif(
    reviewed_season: Season, shared_data: Path, tmp_path: Path
) -> None:
    _mess(reviewed_season)
    out = tmp_path / "pkg"
    rep = export_camtrap_dp(reviewed_season.ws, out, metadata=PackageMetadata(
        title="Leopards of the virtual park 2024", contributors=[parse_contributor("O. Ivanova:principalInvestigator")],
        license="CC-BY-4.0", rights_holder="Virtual Park Authority", project_title="Virtual leopard monitoring",
        sampling_design="systematicRandom"))  # fmt: skip
    assert rep.validation.valid, rep.validation.summary()
    assert frictionless_errors(out, shared_data / SCHEMAS, tmp_path) == []

    _, obs = read_table(out / "observations.csv")
    # blanks carry no count (Camtrap DP's minimum is 1); sexes are the standard's words
    assert all(o["count"] != "0" for o in obs.values())
    assert {o["sex"] for o in obs.values()} <= {"", "female", "male"}
    _, inds = read_table(out / "individuals.csv")
    assert {i["sex"] for i in inds.values()} <= {"", "female", "male"} and inds["XX_001"]["sex"] == ""
    # the reset clock publishes nothing dated 2000, and sets no first sighting
    _, media = read_table(out / "media.csv")
    assert not [m for m in media.values() if m["timestamp"].startswith("2000")]
    assert not [o for o in obs.values() if o["eventStart"].startswith("2000")]
    assert not [i for i in inds.values() if i["firstSeen"].startswith("2000")]
    with reviewed_season.ws.db.session() as s:
        reset = s.scalar(select(Media.id).where(Media.timestamp_issues.contains("clock-reset")))
    assert reset is not None and reset not in media
    assert any("cannot be trusted" in w for w in rep.warnings)
    # pipeline data stays home; a public tag stays
    tags = " ".join(o["observationTags"] for o in obs.values())
    for private in ("reid", "detection_id", "candidates", "stage:", "boxes_from", "new_probability"):
        assert private not in tags
    assert "travelDirection:left" in tags
    # without --copy-media the package holds no photos, and the export says so
    assert any("--copy-media" in w and "--media-url" in w for w in rep.warnings)
    # people's review is published at event level: one human observation per reviewed event and taxon
    with reviewed_season.ws.db.session() as s:
        expected = {
            (dep, seq or mid, name)
            for dep, mid, seq, name, issues in s.execute(
                select(Observation.deployment_id, Media.id, Media.sequence_id, Observation.scientific_name,
                       Media.timestamp_issues)
                .join(Media, Media.id == Observation.media_id)
                .where(Observation.classification_method == "human", Observation.observation_type == "animal")
            )
            if time_is_trusted(issues)
        }  # fmt: skip
    events = {
        (o["deploymentID"], o["eventID"], o["scientificName"])
        for o in obs.values()
        if o["observationLevel"] == "event" and o["classificationMethod"] == "human"
        and o["observationType"] == "animal"
    }
    assert events == expected and len(events) > 10
    meta = json.loads((out / "datapackage.json").read_text())
    assert meta["title"] == "Leopards of the virtual park 2024"
    assert {"title": "Virtual Park Authority", "role": "rightsHolder"} in meta["contributors"]
    assert meta["licenses"] == [{"name": "CC-BY-4.0", "scope": "data"}, {"name": "CC-BY-4.0", "scope": "media"}]
    assert meta["project"]["title"] == "Virtual leopard monitoring"
    assert meta["project"]["samplingDesign"] == "systematicRandom"
    assert not any("no source metadata" in w for w in rep.warnings)


def test_media_url_makes_file_paths_addresses(reviewed_season: Season, tmp_path: Path) -> None:
    rep = export_camtrap_dp(reviewed_season.ws, tmp_path / "pkg", media_url="https://photos.example.org/2024/",
                            validate=False)
    with open(tmp_path / "pkg" / "media.csv", newline="") as f:
        paths = [r["filePath"] for r in csv.DictReader(f)]
    assert paths and all(p.startswith("https://photos.example.org/2024/media/") for p in paths)
    assert not any("--copy-media" in w for w in rep.warnings)
    with pytest.raises(CamtrapDPError, match="http"):
        export_camtrap_dp(reviewed_season.ws, tmp_path / "x", media_url="photos/")
    assert not (tmp_path / "x").exists()


def test_individuals_table_is_checked_whatever_its_name(reviewed_season: Season, tmp_path: Path) -> None:
    out = tmp_path / "pkg"
    export_camtrap_dp(reviewed_season.ws, out)
    meta = json.loads((out / "datapackage.json").read_text())
    res = next(r for r in meta["resources"] if r["name"] == "individuals")
    res["name"], res["path"] = "pardus_individuals", "pardus_individuals.csv"
    (out / "datapackage.json").write_text(json.dumps(meta))
    text = (out / "individuals.csv").read_text().replace(",male,", ",M,", 1)
    (out / "pardus_individuals.csv").write_text(text)
    (out / "individuals.csv").unlink()
    report = validate_package(out)
    assert not report.valid and "pardus_individuals.csv" in report.summary() and "'M'" in report.summary()


def test_metadata_file_and_bad_metadata(tmp_path: Path) -> None:
    good = tmp_path / "meta.json"
    good.write_text(json.dumps({"title": "T", "project": {"acronym": "VP"}}))
    assert read_metadata_file(good) == {"title": "T", "project": {"acronym": "VP"}}
    for text, msg in (("{", "not valid JSON"), ("[1]", "one JSON object"), ('{"spatial": {}}', "computes")):
        bad = tmp_path / "bad.json"
        bad.write_text(text)
        with pytest.raises(CamtrapDPError, match=msg):
            read_metadata_file(bad)
    with pytest.raises(CamtrapDPError, match="does not exist"):
        read_metadata_file(tmp_path / "nowhere.json")
    assert parse_contributor("A. B:contact:a@b.org") == {"title": "A. B", "role": "contact", "email": "a@b.org"}
    for bad_c, msg in ((":contact", "no name"), ("A:boss", "not one of"), ("A:contact:nomail", "e-mail")):
        with pytest.raises(CamtrapDPError, match=msg):
            parse_contributor(bad_c)


def test_cli_sets_package_metadata(reviewed_season: Season, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pardus.config import get_settings
    from pardus.interop.commands import export_app

    monkeypatch.setenv("PARDUS_DATA_DIR", str(reviewed_season.ws.settings.data_dir))
    get_settings.cache_clear()
    app = typer.Typer()
    app.add_typer(export_app, name="export")
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"description": "From a file", "keywords": ["leopard"]}))
    try:
        res = CliRunner().invoke(app, [
            "export", "camtrap-dp", str(tmp_path / "pkg"), "--title", "Season 2024", "--contributor",
            "O. Ivanova:contact:olga@example.org", "--license", "CC0-1.0", "--media-license", "CC-BY-NC-4.0",
            "--rights-holder", "Park", "--project-title", "Leopards", "--metadata", str(meta)])  # fmt: skip
        assert res.exit_code == 0, res.output
        assert "valid Camtrap DP" in res.output and "--copy-media" in " ".join(res.output.split())
        desc = json.loads((tmp_path / "pkg" / "datapackage.json").read_text())
        assert desc["title"] == "Season 2024" and desc["description"] == "From a file"
        assert desc["keywords"] == ["leopard"] and desc["project"]["title"] == "Leopards"
        assert desc["licenses"][1] == {"name": "CC-BY-NC-4.0", "scope": "media"}
        assert desc["contributors"][0] == {"title": "O. Ivanova", "role": "contact", "email": "olga@example.org"}
        res = CliRunner().invoke(app, ["export", "camtrap-dp", str(tmp_path / "no"), "--contributor", "A:boss"])
        assert res.exit_code == 1 and "not one of" in res.output and not (tmp_path / "no").exists()
        res = CliRunner().invoke(app, ["export", "camtrap-dp", str(tmp_path / "no"), "--sampling-design", "x"])
        assert res.exit_code == 1 and "sampling design" in res.output and not (tmp_path / "no").exists()
    finally:
        get_settings.cache_clear()
