"""Issue 20 step 4: a Darwin Core Archive from the same data as Camtrap DP, and `pardus validate`."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

import typer
from sqlalchemy import select
from typer.testing import CliRunner

from pardus.ingest.timefix import time_is_trusted
from pardus.interop.camtrap_dp import export_camtrap_dp
from pardus.interop.dwca import TERMS, check_dwca, export_dwca
from pardus.interop.validate import validate_path
from pardus.store.models import Deployment, Location, Media, Observation

from .conftest import Season


def _verified_animal_events(season: Season) -> int:
    """The season's human-verified event-level animal observations, counted from the store itself:
    people's active photo observations of animals, one per event and what they say, trusted times only."""
    with season.ws.db.session() as s:
        rows = s.execute(
            select(Observation.deployment_id, Media.id, Media.sequence_id, Observation.scientific_name,
                   Observation.individual_id, Observation.life_stage, Observation.sex, Media.timestamp_issues)
            .join(Media, Media.id == Observation.media_id)
            .where(Observation.classification_method == "human", Observation.observation_type == "animal",
                   Observation.superseded_by.is_(None), Observation.observation_level == "media")
        ).all()  # fmt: skip
    return len({(d, seq or mid, n, i, ls, sx) for d, mid, seq, n, i, ls, sx, issues in rows if time_is_trusted(issues)})


def _occurrences(z: zipfile.ZipFile) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(z.read("occurrence.txt").decode()), delimiter="\t"))


def test_occurrences_equal_the_verified_animal_events(reviewed_season: Season, tmp_path: Path) -> None:
    ws = reviewed_season.ws
    with ws.db.session() as s:  # one camera's place is sensitive: rounded in both formats alike
        dep = s.scalars(select(Deployment).order_by(Deployment.id)).first()
        loc = s.get(Location, dep.location_id)
        loc.sensitive, exact = True, (loc.latitude, loc.longitude)
    try:
        rep = export_dwca(ws, tmp_path / "gbif.zip", metadata=None)
        expected = _verified_animal_events(reviewed_season)
        with zipfile.ZipFile(tmp_path / "gbif.zip") as z:
            occ = _occurrences(z)
            meta = ET.fromstring(z.read("meta.xml"))
            eml = ET.fromstring(z.read("eml.xml"))
        assert rep.occurrences == len(occ) == expected > 10
        assert rep.left_out_machine >= 0 and check_dwca(tmp_path / "gbif.zip") == []
        assert {o["identificationVerificationStatus"] for o in occ} == {"verified by a person from the recorded images"}
        assert len({o["occurrenceID"] for o in occ}) == len(occ)
        assert list(occ[0]) == [n for n, _ in TERMS]
        ns = "{http://rs.tdwg.org/dwc/text/}"
        assert meta.find(ns + "core").get("rowType") == "http://rs.tdwg.org/dwc/terms/Occurrence"
        assert eml.find("dataset/title").text
        # the same data as Camtrap DP: its event-level human animal observations, its rounded places
        export_camtrap_dp(ws, tmp_path / "pkg")
        with open(tmp_path / "pkg" / "observations.csv", newline="") as f:
            events = {o["observationID"] for o in csv.DictReader(f) if o["observationLevel"] == "event"
                      and o["observationType"] == "animal" and o["classificationMethod"] == "human"}
        assert {o["occurrenceID"] for o in occ} == events
        mine = [o for o in occ if o["parentEventID"] == dep.id]
        text = (tmp_path / "gbif.zip").read_bytes()
        for o in mine:
            lat = o["decimalLatitude"]
            assert ("." not in lat or len(lat.split(".")[1]) <= 1) and o["coordinatePrecision"] == "0.1"
        assert f"{exact[0]:.4f}".encode() not in text
    finally:
        with ws.db.session() as s:
            s.get(Location, dep.location_id).sensitive = False


def test_validate_tells_formats_and_problems(reviewed_season: Season, shared_data: Path, tmp_path: Path) -> None:
    export_camtrap_dp(reviewed_season.ws, tmp_path / "pkg")
    export_dwca(reviewed_season.ws, tmp_path / "dwca")
    lila = shared_data / "megadetector-lila-test-set" / "megadetector_v5a_output.json"
    verdicts = {p.name: validate_path(p) for p in (tmp_path / "pkg", tmp_path / "dwca", lila)}
    assert [(v.kind, v.valid) for v in verdicts.values()] == [
        ("Camtrap DP", True), ("Darwin Core Archive", True), ("MegaDetector results", True)]
    coco = {"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"id": 1, "image_id": 2, "category_id": 0}],
            "categories": [{"id": 0, "name": "empty"}]}  # fmt: skip
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    v = validate_path(tmp_path / "coco.json")
    assert v.kind == "COCO Camera Traps" and not v.valid and "image_id 2" in v.problems[0]
    # broken: a count of 0, a DwC-A row short of columns, an unknown file
    obs = (tmp_path / "pkg" / "observations.csv").read_text().splitlines()
    head = obs[0].split(",")
    cells = obs[1].split(",")
    cells[head.index("count")] = "0"
    (tmp_path / "pkg" / "observations.csv").write_text("\n".join([obs[0], ",".join(cells), *obs[2:]]) + "\n")
    v = validate_path(tmp_path / "pkg")
    assert not v.valid and any("observations.csv row 2 column count" in p for p in v.problems)
    occ = tmp_path / "dwca" / "occurrence.txt"
    occ.write_text(occ.read_text() + "short\trow\n")
    assert any("columns, meta.xml describes" in p for p in validate_path(tmp_path / "dwca").problems)
    (tmp_path / "notes.txt").write_text("hello")
    assert validate_path(tmp_path / "notes.txt").kind == "unknown"

    from pardus.interop.commands import validate_cmd

    app = typer.Typer()
    app.command("validate")(validate_cmd)
    app.command("other")(lambda: None)  # two commands, so Typer keeps the command name
    runner = CliRunner()
    res = runner.invoke(app, ["validate", str(lila)])
    assert res.exit_code == 0 and "MegaDetector results, valid" in res.output
    res = runner.invoke(app, ["validate", str(tmp_path / "pkg")])
    assert res.exit_code == 1 and "count" in res.output
    res = runner.invoke(app, ["validate", str(tmp_path / "notes.txt")])
    assert res.exit_code == 1 and "none of the formats" in " ".join(res.output.split())
