"""Issue 20: classifications in MegaDetector results (SpeciesNet, AddaxAI) become machine observations
that reach Camtrap DP, never a person's word; a class Pardus cannot name refuses the file, writing nothing."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from tests.interop.helpers import frictionless_errors
from typer.testing import CliRunner

from pardus.ingest.card import import_card
from pardus.ingest.deployments import DeploymentSpec, upsert_deployment
from pardus.interop.camtrap_dp import export_camtrap_dp
from pardus.interop.md_classifications import ClassificationError, Label, parse_taxa, resolve, speciesnet_name
from pardus.interop.megadetector_json import MegaDetectorError, export_megadetector, import_megadetector
from pardus.store import Workspace
from pardus.store.models import Detection, Media, Observation, StageState

DATA = Path(__file__).parent / "data"
SPECIESNET_MD = DATA / "speciesnet_md_results.json"


def _obs(ws: Workspace, **where: Any) -> list[Observation]:
    with ws.db.session() as s:
        q = select(Observation)
        for k, v in where.items():
            q = q.where(getattr(Observation, k) == v)
        rows = list(s.scalars(q))
        s.expunge_all()
        return rows


def _by_file(ws: Workspace, level: str = "media") -> dict[str, list[Observation]]:
    with ws.db.session() as s:
        names = {mid: name for mid, name in s.execute(select(Media.id, Media.file_name))}
    out: dict[str, list[Observation]] = {}
    for o in _obs(ws, observation_level=level):
        out.setdefault(names.get(o.media_id, ""), []).append(o)
    return out


def _counts(ws: Workspace) -> tuple[int, ...]:
    with ws.db.session() as s:
        return tuple(s.scalar(select(func.count()).select_from(m)) or 0 for m in (Detection, StageState, Observation))


@pytest.fixture
def speciesnet_card(workspace: Workspace, shared_data: Path) -> Workspace:
    """The ten real SpeciesNet test photos as one card (a fresh store per test: the tests write).

    The place is the NACTI coordinates SpeciesNet's own instances.json gives two of them."""
    with workspace.db.session() as s:
        upsert_deployment(s, DeploymentSpec(id="SN", location_id="SN-1", latitude=41.46, longitude=-73.84))
    import_card(workspace, shared_data / "speciesnet-test-images" / "images", "SN")
    return workspace


def test_speciesnet_calls_become_machine_observations(speciesnet_card: Workspace, shared_data: Path,
                                                      tmp_path: Path) -> None:
    ws = speciesnet_card
    rep = import_megadetector(ws, SPECIESNET_MD)
    assert (rep.images, rep.detections, rep.failed) == (10, 16, 1)
    assert (rep.classifier, rep.min_conf) == ("speciesnet", 0.2)
    # 3+2+2+2 elephant boxes from 0.2 (the 0.06 and 0.01 ones are no calls), two blanks, dog, person, vehicle.
    assert rep.observations == 14
    media = _by_file(ws)
    assert "african_elephants_truncated_file.jpg" not in media  # the detector could not read it: no call
    elephants = sorted(media["african_elephants.jpg"], key=lambda o: -o.bbox_width)
    assert len(elephants) == 3
    e = elephants[0]
    assert (e.observation_type, e.scientific_name, e.count, e.classification_probability) == (
        "animal", "Loxodonta africana", 1, 0.9923)
    assert (e.bbox_x, e.bbox_y, e.bbox_width, e.bbox_height) == (0.7031, 0.4775, 0.1113, 0.1249)
    assert (e.classification_method, e.classified_by, e.classification_timestamp) == ("machine", "speciesnet", None)
    with ws.db.session() as s:
        det = s.get(Detection, e.extra["detection_id"])
        assert det is not None and (det.score, det.x) == (0.931, 0.7031)
    [dog] = media["domestic_dog.jpg"]
    assert (dog.scientific_name, dog.classification_probability) == ("Canis familiaris", 0.9871)
    [person] = media["human.jpg"]
    assert (person.observation_type, person.scientific_name, person.count) == ("human", "Homo sapiens", 1)
    [car] = media["vehicle.jpg"]
    assert (car.observation_type, car.scientific_name, car.classification_probability) == ("vehicle", None, 0.9391)
    for blank in ("blank.jpg", "blank3.jpg"):  # no box from 0.2: the detector's blank, not the classifier's
        [b] = media[blank]
        assert (b.observation_type, b.classified_by, b.count, b.bbox_x) == (
            "blank", "converted_from_predictions_json", None, None)
    assert not _obs(ws, classification_method="human")
    assert {o.classification_method for o in _obs(ws)} == {"machine"}

    # One event per burst: the three elephant photos taken together are one event of three elephants.
    assert rep.events == 8
    events = _obs(ws, observation_level="event")
    assert {o.classified_by for o in events} == {"speciesnet+sequence"}
    with ws.db.session() as s:
        seq = s.scalar(select(Media.sequence_id).where(Media.file_name == "african_elephants.jpg"))
    [burst] = [o for o in events if o.event_id == seq]
    assert (burst.observation_type, burst.scientific_name, burst.count) == ("animal", "Loxodonta africana", 3)
    assert sorted(o.observation_type for o in events) == ["animal"] * 4 + ["blank"] * 2 + ["human", "vehicle"]

    # Importing again replaces, never doubles.
    before = _counts(ws)
    rep2 = import_megadetector(ws, SPECIESNET_MD)
    assert (rep2.observations, rep2.events) == (14, 8) and _counts(ws) == before

    # The boxes still leave as the same file.
    export_megadetector(ws, tmp_path / "again.json")
    assert json.loads((tmp_path / "again.json").read_text()) == json.loads(SPECIESNET_MD.read_text())

    # And the calls reach Camtrap DP: machine rows by SpeciesNet, a valid package.
    out = tmp_path / "package"
    export_camtrap_dp(ws, out)
    with open(out / "observations.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    by_sn = [r for r in rows if r["classifiedBy"] == "speciesnet"]
    assert {r["classificationMethod"] for r in rows} == {"machine"}
    assert sorted({r["scientificName"] for r in by_sn}) == ["", "Canis familiaris", "Homo sapiens",
                                                            "Loxodonta africana"]  # '': the vehicle
    top = next(r for r in by_sn if r["bboxX"] == "0.7031")
    assert (top["observationLevel"], top["observationType"], top["count"], top["classificationProbability"]) == (
        "media", "animal", "1", "0.9923")
    assert "detection_id" not in top["observationTags"] and "detector_conf" not in top["observationTags"]
    assert any(r["classifiedBy"] == "speciesnet+sequence" and r["count"] == "3" for r in rows)
    assert frictionless_errors(out, shared_data / "camtrap-dp-example" / "schemas", tmp_path) == []


def _addax(images: list[dict[str, Any]]) -> dict[str, Any]:
    """AddaxAI's shape: the model author's common names, several classes per box, info.classifier."""
    return {
        "info": {"format_version": "1.4", "detector": "md_v5a.0.0.pt", "classifier": "AddaxAI test model v1",
                 "detector_metadata": {"megadetector_version": "v5a.0.0", "typical_detection_threshold": 0.3}},
        "detection_categories": {"1": "animal", "2": "person", "3": "vehicle"},
        "classification_categories": {"0": "elephant", "1": "domestic dog", "2": "wild boar"},
        "images": images,
    }  # fmt: skip


ADDAX_IMAGES = [
    {"file": "african_elephants.jpg", "detections": [
        {"category": "1", "conf": 0.93, "bbox": [0.70, 0.48, 0.11, 0.12],
         "classifications": [["2", 0.08], ["0", 0.83]]},
        {"category": "1", "conf": 0.25, "bbox": [0.14, 0.41, 0.10, 0.12], "classifications": [["0", 0.55]]}]},
    {"file": "domestic_dog.jpg", "detections": [
        {"category": "1", "conf": 0.95, "bbox": [0.29, 0.38, 0.37, 0.44],
         "classifications": [["1", 0.91], ["2", 0.05]]}]},
    {"file": "human.jpg", "detections": [{"category": "2", "conf": 0.91, "bbox": [0.41, 0.19, 0.18, 0.70]}]},
]  # fmt: skip


def test_addaxai_names_need_a_taxa_table_and_nothing_is_written_without_it(speciesnet_card: Workspace,
                                                                           tmp_path: Path) -> None:
    ws = speciesnet_card
    src = tmp_path / "addax.json"
    src.write_text(json.dumps(_addax(ADDAX_IMAGES)))
    before = _counts(ws)
    with pytest.raises(MegaDetectorError, match=r"1 class name\(s\) .*'elephant'.*--taxa FILE.*Nothing was imported"):
        import_megadetector(ws, src)
    assert _counts(ws) == before
    # Boxes only, when the user says so.
    rep = import_megadetector(ws, src, observations=False)
    assert (rep.detections, rep.observations) == (4, 0) and not _obs(ws)

    taxa = tmp_path / "taxa.csv"
    taxa.write_text("label,scientificName\nelephant,Loxodonta africana\n", encoding="utf-8")
    rep = import_megadetector(ws, src, taxa=taxa)
    assert (rep.classifier, rep.min_conf, rep.observations) == ("AddaxAI test model v1", 0.3, 3)
    media = _by_file(ws)
    [el] = media["african_elephants.jpg"]  # the 0.25 box is under the file's own threshold of 0.3
    assert (el.scientific_name, el.classification_probability, el.bbox_x) == ("Loxodonta africana", 0.83, 0.70)
    assert el.extra["source"]["label"] == "elephant" and el.extra["source"]["others"] == [["wild boar", 0.08]]
    [dog] = media["domestic_dog.jpg"]  # 'domestic dog' is a name Pardus's taxon maps know
    assert dog.scientific_name == "Canis familiaris"
    [person] = media["human.jpg"]  # not classified: the detector's call stands, and says who made it
    assert (person.observation_type, person.classified_by, person.count) == ("human", "md_v5a.0.0.pt", 1)
    assert rep.events == 3

    # A lower threshold, asked for: the second elephant box is a call too.
    assert import_megadetector(ws, src, taxa=taxa, min_conf=0.2).observations == 4


def test_cli_refuses_then_imports_with_taxa(speciesnet_card: Workspace, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from pardus.cli import app
    from pardus.config import get_settings

    ws = speciesnet_card
    monkeypatch.setenv("PARDUS_DATA_DIR", str(ws.settings.data_dir))
    if ws.settings.database_url:
        monkeypatch.setenv("PARDUS_DATABASE_URL", ws.settings.database_url)
    get_settings.cache_clear()
    try:
        _cli_steps(ws, tmp_path, app)
    finally:
        get_settings.cache_clear()


def _cli_steps(ws: Workspace, tmp_path: Path, app: Any) -> None:
    src = tmp_path / "addax.json"
    src.write_text(json.dumps(_addax(ADDAX_IMAGES)))
    runner = CliRunner()
    res = runner.invoke(app, ["import", "megadetector", str(src)])
    assert res.exit_code == 1 and "elephant" in res.output and "--taxa" in res.output
    assert "Traceback" not in res.output and _counts(ws)[0] == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("label,scientificName,observationType\nelephant,Loxodonta africana,mammal\n")
    res = runner.invoke(app, ["import", "megadetector", str(src), "--taxa", str(bad)])
    assert res.exit_code == 1 and "line 2" in res.output and "observationType" in res.output
    assert _counts(ws)[0] == 0
    good = tmp_path / "taxa.csv"
    good.write_text("label,scientificName\nelephant,Loxodonta africana\n")
    res = runner.invoke(app, ["import", "megadetector", str(src), "--taxa", str(good), "--classifier", "addax-v1"])
    assert res.exit_code == 0, res.output
    assert "3 machine observation(s)" in res.output and "addax-v1" in res.output
    assert {o.classified_by for o in _obs(ws, observation_level="media")} == {"addax-v1", "md_v5a.0.0.pt"}


def test_bad_classifications_refuse_the_file(speciesnet_card: Workspace, tmp_path: Path) -> None:
    ws = speciesnet_card
    cases = {
        "not a list": ({"classifications": "elephant"}, "must be a list"),
        "unknown id": ({"classifications": [["7", 0.5]]}, "'7' is not in 'classification_categories'"),
        "confidence": ({"classifications": [["0", 1.5]]}, "confidence must be a number from 0 to 1"),
        "pair": ({"classifications": [["0"]]}, r"must be \[category id, confidence\]"),
    }
    path = tmp_path / "bad.json"
    for extra, message in cases.values():
        doc = _addax([{"file": "domestic_dog.jpg",
                       "detections": [{"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.2, 0.2], **extra}]}])
        path.write_text(json.dumps(doc))
        with pytest.raises(MegaDetectorError, match=message):
            import_megadetector(ws, path)
    doc = _addax(ADDAX_IMAGES)
    del doc["classification_categories"]
    path.write_text(json.dumps(doc))
    with pytest.raises(MegaDetectorError, match="no 'classification_categories'"):
        import_megadetector(ws, path)
    assert _counts(ws) == (0, 0, 0)


def test_names_are_read_as_their_tools_mean_them() -> None:
    assert speciesnet_name("x;mammalia;carnivora;felidae;panthera;pardus;leopard") == "Panthera pardus"
    assert speciesnet_name("x;mammalia;carnivora;canidae;vulpes;;vulpes species") == "Vulpes"
    assert speciesnet_name("x;mammalia;carnivora;mustelidae;;;mustelid family") == "Mustelidae"
    assert speciesnet_name("f1856211-cfb7-4a5b-9158-c0f72fd09ee6;;;;;;blank") is None
    known = {"amur leopard": "Panthera pardus orientalis"}
    assert resolve("Amur Leopard", {}, known) == Label("animal", "Panthera pardus orientalis")
    assert resolve("x;mammalia;primates;hominidae;homo;;homo species", {}, known) == Label("human", "Homo sapiens")
    nocv = "f2efdae9-efb8-48fb-8a91-eccf79ab4ffb" + ";no cv result" * 6
    assert resolve(nocv, {}, known) == Label("unclassified", None)
    assert resolve("sable", {}, known) is None
    assert resolve("x;mammalia;carnivora;felidae;panthera;" + "p" * 300 + ";long", {}, known) is None  # > 255
    taxa = parse_taxa("label,scientificName,observationType\nsable,Martes zibellina,\nranger,,human\nnothing,,blank\n")
    assert resolve("Sable", taxa, known) == Label("animal", "Martes zibellina")
    assert taxa["ranger"] == Label("human", "Homo sapiens") and taxa["nothing"] == Label("blank", None)


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"),
    ("name,species\nsable,Martes zibellina\n", "needs the columns label and scientificName"),
    ("label,scientificName\n,Martes zibellina\n", "line 2: the label is empty"),
    ("label,scientificName\nsable,Martes zibellina\nSable,Martes\n", "line 3: the label 'Sable' is given twice"),
    ("label,scientificName\nsable,Martes zibellina,extra\n", "line 2: 3 cells under 2 column names"),
    ("label,scientificName,observationType\nnothing,Martes,blank\n", "a blank observation has no scientificName"),
    ("label,scientificName\nsable,Martes\x00\n", "NUL"),
])  # fmt: skip
def test_bad_taxa_tables_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ClassificationError, match=message):
        parse_taxa(text)


CELLS = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(
    st.text(max_size=200),
    st.lists(st.lists(CELLS, max_size=4), max_size=6).map(
        lambda rows: "label,scientificName,observationType\n" + "\n".join(",".join(r) for r in rows)),
))
def test_taxa_table_property(text: str) -> None:
    """Any text: a table of labels, or a ClassificationError saying what is wrong; never another error."""
    try:
        table = parse_taxa(text)
    except ClassificationError as exc:
        assert str(exc) and "Traceback" not in str(exc)
        return
    for key, label in table.items():
        assert key == key.strip().lower() and key
        assert label.observation_type in ("animal", "human", "vehicle", "blank", "unknown", "unclassified")
        assert label.scientific_name is None or label.observation_type in ("animal", "human")

