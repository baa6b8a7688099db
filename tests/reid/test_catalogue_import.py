"""Bringing a park's catalogue in, through the CLI, on SQLite and PostgreSQL (issue 18).

- `pardus individuals import ID-SHEET.csv`: every wrong row named, nothing half-written; photos
  found by file name, card path, sha256 or a copy beside the sheet; importing again adds nothing.
- `pardus reid confirm` for a photo without a proposal: a drawn box or the whole frame.
- `pardus individuals edit --species`: the change reaches matching at once.
- Real snow leopards catalogued as *Panthera uncia* are matched exactly as when catalogued as
  *Panthera pardus*, although the species stage calls them "Panthera pardus orientalis" (the
  default taxon map's name for every spotted big cat) or is unsure.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from pardus.cli import app
from pardus.config import Settings, get_settings
from pardus.reid.catalogue import Catalogue, CatalogueError, ParkTaxa, annotation_id, parse_box
from pardus.store import Workspace, open_workspace
from pardus.store.models import Detection, Individual, IndividualEvent, Media, Observation

runner = CliRunner()
Card = tuple[Path, dict[str, tuple[float, float, float, float]]]
LEO = "Panthera pardus orientalis"


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    """The CLI on this test's data folder and database (both backends), and a workspace beside it."""
    monkeypatch.setenv("PARDUS_DATA_DIR", str(settings.data_dir))
    if settings.database_url:
        monkeypatch.setenv("PARDUS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("PARDUS_USER", "ranger Olga")
    get_settings.cache_clear()
    ws = open_workspace(settings)
    try:
        yield ws
    finally:
        ws.close()
        get_settings.cache_clear()


def run(*args: str, code: int = 0) -> str:
    res = runner.invoke(app, list(args))
    assert res.exit_code == code, res.output
    return " ".join(res.output.split())  # the console wraps long lines


def write_sheet(path: Path, rows: list[list[str]], header: tuple[str, ...] = ("file", "individual", "name", "flank",
                                                                                "box")) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def as_current_detector(ws: Workspace) -> str | None:
    """Stamp the stored boxes as the current detect stage's (`pardus reid run` matches only those)."""
    from pardus.pipeline.stages import current_detector_key

    key = current_detector_key()
    if key is not None:
        with ws.db.session() as s:
            for det in s.scalars(select(Detection)):
                det.extra = {**(det.extra or {}), "stage": key}
    return key


def _box(b: tuple[float, float, float, float]) -> str:
    return ",".join(f"{v:.5f}" for v in b)


def test_species_scope_in_the_park_s_own_names() -> None:
    """The gate's rules, without a store: the park's names, matcher groups, unsure and other animals."""
    taxa = ParkTaxa({"a": "Panthera uncia", "b": "Panthera uncia", "t": "Panthera tigris altaica", "x": None})
    called = taxa.scope(LEO, assessed=True)  # the default map's name for a snow leopard
    assert called is not None and called.species == "Panthera uncia" and called.may_be_new
    assert set(called.individuals or ()) == {"a", "b", "x"}  # never the tiger; "x" has no species yet
    own = taxa.scope("Panthera uncia", assessed=True)
    assert own is not None and set(own.individuals or ()) == {"a", "b", "x"}
    tiger = taxa.scope("Panthera tigris", assessed=True)  # species, subspecies: one catalogue
    assert tiger is not None and tiger.species == "Panthera tigris altaica"
    assert set(tiger.individuals or ()) == {"t", "x"}
    unsure = taxa.scope(None, assessed=True, best=LEO)
    assert unsure is not None and not unsure.may_be_new and set(unsure.individuals or ()) == {"a", "b", "x"}
    assert taxa.scope("Cervidae", assessed=True) is None and taxa.scope("Sus scrofa", assessed=True) is None
    genus = taxa.scope("Panthera", assessed=True)
    assert genus is not None and not genus.may_be_new
    both = ParkTaxa({"p": "Panthera pardus", "u": "Panthera uncia"})  # a park with both: taken at their word
    assert (both.scope("Panthera pardus fusca", assessed=True) or called).individuals == ("p",)
    lynx = ParkTaxa({"l": "Lynx lynx"})  # the park's own taxa: a species it catalogues is matched
    assert lynx.scope("Lynx lynx", assessed=True) is not None and lynx.scope("Lynx pardinus", assessed=True) is None
    unassessed = taxa.scope(None, assessed=False)
    assert unassessed is not None and unassessed.individuals is None and unassessed.may_be_new
    for bad in ("0.1,0.2,0.5", "0.6,0.2,0.5,0.4", "a,b,c,d", "0.1,0.1,0,0.2"):
        with pytest.raises(CatalogueError, match="box"):
            parse_box(bad)
    assert parse_box(" 0.1; 0.2 0.5,0.4") == (0.1, 0.2, 0.5, 0.4)


def test_id_sheet_import_and_confirm_without_proposal(cli: Workspace, card: Card, tmp_path: Path,
                                                      load_card: Callable[[Workspace, Card], dict[str, str]]) -> None:
    ws = cli
    media = load_card(ws, card)
    boxes = card[1]
    with ws.db.session() as s:
        sha2 = s.get(Media, media["IMG_0002.JPG"]).sha256  # type: ignore[union-attr]

    # a sheet with mistakes: every one named by its row, nothing written
    bad = write_sheet(tmp_path / "bad.csv", [
        ["IMG_0001.JPG", "SC_026", "Berry", "L", _box(boxes["IMG_0001.JPG"])],
        ["IMG_0099.JPG", "SC_026", "", "left", ""],
        ["IMG_0002.JPG", "SC_031", "", "front", ""],
        ["IMG_0003.JPG", "SC_026", "Bella", "left", "0.5,0.5,0.7,0.2"],
        ["IMG_0004.JPG", "SC_026", "Bella", "left", ""],
    ])
    out = run("individuals", "import", str(bad), code=1)
    for said in ("row 3: no photo 'IMG_0099.JPG'", "row 4: flank 'front' is not left, right or empty",
                 "row 5: box '0.5,0.5,0.7,0.2' must lie inside the frame", "nothing was imported"):
        assert said in out, out
    out = run("individuals", "import", str(bad.with_name("missing.csv")), code=1)
    assert "cannot read the ID sheet" in out
    # the rows themselves are fine but contradict each other, and no species is given
    clash = write_sheet(tmp_path / "clash.csv", [["IMG_0001.JPG", "SC_026", "Berry", "left", ""],
                                                 ["IMG_0004.JPG", "SC_026", "Bella", "left", ""]])
    out = run("individuals", "import", str(clash), code=1)
    assert "row 3: SC_026 has name 'Bella' here but 'Berry' in row 2" in out
    assert "SC_026 is not in the catalogue yet and no species is given" in out
    with ws.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Individual)) == 0
        assert s.scalar(select(func.count()).select_from(Observation)) == 0

    # the right sheet: by file name, by path on the card, by sha256
    good = write_sheet(tmp_path / "good.csv", [
        ["IMG_0001.JPG", "SC_026", "Berry", "L", _box(boxes["IMG_0001.JPG"])],
        ["DCIM/100RECNX/IMG_0003.JPG", "SC_026", "", "left", _box(boxes["IMG_0003.JPG"])],
        [sha2 or "", "SC_031", "", "left", _box(boxes["IMG_0002.JPG"])],
    ])
    out = run("individuals", "import", str(good), "--species", LEO)
    assert "3 rows, 3 photos confirmed, 0 already in the catalogue" in out and "SC_026, SC_031" in out
    out = run("individuals", "import", str(good), "--species", LEO)  # again: nothing new
    assert "3 rows, 0 photos confirmed, 3 already in the catalogue" in out
    out = run("individuals", "list")
    assert "SC_026" in out and "Berry" in out and "2 (2/0/0)" in out and "1 (1/0/0)" in out
    with ws.db.session() as s:
        events = list(s.scalars(select(IndividualEvent).where(IndividualEvent.action == "confirm")))
        assert len(events) == 3 and {e.by for e in events} == {"ranger Olga"}
        assert {e.details["source"] for e in events} == {"ID sheet good.csv"}
        assert s.scalar(select(Individual.scientific_name).where(Individual.code == "SC_031")) == LEO
    # a row that says the same box is another animal is refused, with the way out
    other = write_sheet(tmp_path / "other.csv", [["IMG_0001.JPG", "SC_031", "", "left", _box(boxes["IMG_0001.JPG"])]])
    out = run("individuals", "import", str(other), code=1)
    assert "row 2: this box of IMG_0001.JPG is already confirmed as SC_026; split or merge" in out

    # confirm without a proposal: a drawn box, then the whole frame
    out = run("reid", "confirm", "IMG_0004.JPG", "SC_031", "--box", _box(boxes["IMG_0004.JPG"]), "--flank", "left")
    assert "is SC_031 (left flank), the box given" in out
    out = run("reid", "confirm", "IMG_0005.JPG", "SC_040", code=1)
    assert "no individual with code 'SC_040'" in out
    run("individuals", "create", "--code", "SC_040", "--species", LEO)
    out = run("reid", "confirm", "IMG_0005.JPG", "SC_040", "--box", "0.5,0.5,0.7,0.2", code=1)
    assert "must lie inside the frame" in out
    out = run("reid", "confirm", "IMG_0005.JPG", "SC_040")
    assert "is SC_040, the whole frame" in out
    out = run("reid", "confirm", "IMG_0005.JPG", "SC_040", code=1)
    assert "the whole frame of photo IMG_0005.JPG is already confirmed as SC_040" in out
    out = run("reid", "confirm", "IMG_0042.JPG", "SC_040", code=1)
    assert "no photo 'IMG_0042.JPG'" in out and "pardus import-card" in out

    # a photo with one open proposal: naming the photo confirms that proposal
    with ws.db.session() as s:
        m = s.get(Media, media["IMG_0004.JPG"])
        assert m is not None
        x, y, w, h = boxes["IMG_0004.JPG"]
        prop = Observation(deployment_id=m.deployment_id, media_id=m.id, observation_type="animal",
                           bbox_x=x * 0.5, bbox_y=y, bbox_width=w * 0.5, bbox_height=h,
                           classification_method="machine", classified_by="pardus-reid-hotspotter@1/test",
                           extra={"reid": {"is_new": True, "new_probability": 0.9, "candidates": []}})
        s.add(prop)
        s.flush()
        prop_id = prop.id
    out = run("reid", "confirm", "IMG_0004.JPG", "SC_040")
    assert "is SC_040, its proposal" in out
    with ws.db.session() as s:
        decided = s.get(Observation, prop_id)
        assert decided is not None and decided.extra["reid"]["decision"]["code"] == "SC_040"

    # a species change reaches the index at once (no reindex)
    out = run("individuals", "edit", "SC_031", "--species", "Panthera uncia")
    assert "species 'Panthera pardus orientalis' -> 'Panthera uncia'" in out
    cat = Catalogue(ws)
    with ws.db.session() as s:
        sc031 = s.scalars(select(Individual).where(Individual.code == "SC_031")).one()
        photos = list(s.scalars(select(Observation).where(Observation.individual_id == sc031.id)))
    assert len(photos) == 2 and {o.scientific_name for o in photos} == {"Panthera uncia"}
    assert {cat.index.annotation(annotation_id(o.id)).species for o in photos} == {"Panthera uncia"}
    assert "Nothing to change" in run("individuals", "edit", "SC_031", "--species", "Panthera uncia")


# Two real bursts of Panthera V4 photos (EXIF times): Cat5 at station 26, Cat11 at station 19.
# Boxes drawn by hand on the photos (x, y, w, h as fractions of the frame).
SNOW = {
    "Cat5": ("Station26", [("02__Station26__Camera2__2012-8-7__9-3-20(1).JPG", (0.0, 0.48, 0.55, 0.28)),
                           ("02__Station26__Camera2__2012-8-7__9-3-24(5).JPG", (0.2, 0.5, 0.45, 0.25)),
                           ("02__Station26__Camera2__2012-8-7__9-3-26(6).JPG", (0.25, 0.45, 0.45, 0.28))]),
    "Cat11": ("Station19", [("02__Station19__Camera2__2012-6-21__1-34-44(5).JPG", None),
                            ("02__Station19__Camera2__2012-6-21__1-34-52(3).JPG", (0.42, 0.4, 0.3, 0.33)),
                            ("02__Station19__Camera2__2012-6-21__1-34-50(1).JPG", (0.42, 0.4, 0.3, 0.33))]),
}


def _top1(ws: Workspace) -> dict[str, tuple[str | None, str | None, bool]]:
    """file name -> (best candidate's code, the proposal's species, probably new) of undecided proposals."""
    with ws.db.session() as s:
        rows = s.execute(select(Media.file_name, Observation.scientific_name, Observation.extra)
                         .join(Media, Media.id == Observation.media_id)
                         .where(Observation.classified_by.like("pardus-reid%"))).all()
    out = {}
    for name, species, extra in rows:
        reid = extra["reid"]
        cands = reid["candidates"]
        out[name] = (cands[0]["code"] if cands else None, species, bool(reid["is_new"]))
    return out


@pytest.mark.slow
def test_snow_leopards_catalogued_as_uncia_are_matched_as_pardus(cli: Workspace, shared_data: Path,
                                                                 tmp_path: Path) -> None:
    ws = cli
    images = shared_data / "snow-leopard-reid" / "images"
    archive = tmp_path / "archive"  # the park's own copies, beside its ID sheet
    rows = []
    for cat_id, (station, photos) in SNOW.items():
        card = tmp_path / f"card-{station}" / "DCIM" / "100EK113"
        card.mkdir(parents=True)
        (archive / cat_id).mkdir(parents=True)
        for i, (name, box) in enumerate(photos):
            shutil.copy(images / cat_id / name, card / name)
            if i < 2:  # the first two are the catalogue, the third a new photo to match
                shutil.copy(images / cat_id / name, archive / cat_id / name)
                rows.append([f"archive/{cat_id}/{name}", cat_id, "", "", _box(box) if box else ""])
        run("import-card", str(card.parents[1]), "--deployment", f"{station}-C2")
    sheet = write_sheet(tmp_path / "id-sheet.csv", rows)
    out = run("individuals", "import", str(sheet), "--species", "Panthera uncia")
    assert "4 photos confirmed" in out and "New individuals: Cat5, Cat11" in out

    # the new photos: the detector's box, and what the species stage says with the default map
    queries = {photos[2][0]: (cat_id, photos[2][1]) for cat_id, (_, photos) in SNOW.items()}
    with ws.db.session() as s:
        for name, (cat_id, box) in queries.items():
            m = s.scalars(select(Media).where(Media.file_name == name)).one()
            assert m.sequence_id, "EXIF times group the burst"
            det = Detection(media_id=m.id, category="animal", score=0.8, x=box[0], y=box[1], w=box[2], h=box[3],
                            model_name="hand-drawn", model_version="1")
            s.add(det)
            s.flush()
            unsure = cat_id == "Cat11"
            s.add(Observation(
                deployment_id=m.deployment_id, media_id=m.id, observation_type="animal",
                scientific_name=None if unsure else LEO, classification_method="machine",
                classified_by="mobilenet-v2-imagenet/land-of-the-leopard", classification_probability=0.3 if unsure
                else 0.8, bbox_x=box[0], bbox_y=box[1], bbox_width=box[2], bbox_height=box[3],
                extra={"stage": "species", "detection_id": det.id, "best": LEO}
                | ({"unsure_box": True} if unsure else {})))
    key = as_current_detector(ws)
    with ws.db.session() as s:
        for o in s.scalars(select(Observation).where(Observation.classification_method == "machine")):
            o.extra = {**o.extra, "boxes_from": key}

    run("reid", "run")
    as_uncia = _top1(ws)
    assert set(as_uncia) == set(queries)
    for name, (cat_id, _) in queries.items():
        assert as_uncia[name][0] == cat_id, (name, as_uncia)
        assert not as_uncia[name][2]
    assert as_uncia[SNOW["Cat5"][1][2][0]][1] == "Panthera uncia"  # the park's name, not the classifier's
    assert as_uncia[SNOW["Cat11"][1][2][0]][1] is None  # unsure: matched, species left to a person

    # the same catalogue recorded as Panthera pardus: the same answers
    for cat_id in SNOW:
        run("individuals", "edit", cat_id, "--species", "Panthera pardus")
    run("reid", "run", "--rematch")
    as_pardus = _top1(ws)
    assert {n: v[0] for n, v in as_pardus.items()} == {n: v[0] for n, v in as_uncia.items()}
    assert as_pardus[SNOW["Cat5"][1][2][0]][1] == "Panthera pardus"
    # a tiger catalogue is another matcher: the spotted cats are not compared with it
    for cat_id in SNOW:
        run("individuals", "edit", cat_id, "--species", "Panthera tigris")
    run("reid", "run", "--rematch")
    as_tiger = _top1(ws)
    assert as_tiger[SNOW["Cat5"][1][2][0]][0] is None and as_tiger[SNOW["Cat5"][1][2][0]][2]
