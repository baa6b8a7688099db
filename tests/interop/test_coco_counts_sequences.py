"""Issue 20 (COCO Camera Traps): count and sequence_level_annotation honoured on import, seq_id carried to
events, file_name unique across cards, machine and human labels told apart; hostile files refused whole."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from pardus.config import Settings
from pardus.ingest.deployments import DeploymentSpec, upsert_deployment
from pardus.interop.coco_ct import CocoError, export_coco
from pardus.interop.coco_import import import_coco
from pardus.store import Workspace, open_workspace
from pardus.store.models import Media, Observation

# Snapshot Serengeti's way: the volunteers' label of a burst copied to each of its frames.
COCO: dict[str, Any] = {
    "info": {"version": "1.0", "description": "Serengeti-style sample"},
    "images": [
        {"id": "B03/seq7/0", "file_name": "S1/B03/R1/PICT0101.JPG", "width": 2048, "height": 1536,
         "datetime": "2010-07-18 16:26:14", "seq_id": "B03/seq7", "seq_num_frames": 3, "frame_num": 0,
         "location": "B03"},
        {"id": "B03/seq7/1", "file_name": "S1/B03/R1/PICT0102.JPG", "width": 2048, "height": 1536,
         "datetime": "2010-07-18 16:26:15", "seq_id": "B03/seq7", "seq_num_frames": 3, "frame_num": 1,
         "location": "B03"},
        {"id": "B03/seq7/2", "file_name": "S1/B03/R1/PICT0103.JPG", "width": 2048, "height": 1536,
         "datetime": "2010-07-18 16:26:16", "seq_id": "B03/seq7", "seq_num_frames": 3, "frame_num": 2,
         "location": "B03"},
        {"id": 41, "file_name": "S1/D04/R1/PICT0007.JPG", "datetime": "2010-07-19 06:02:00", "location": "D04"},
        {"id": 42, "file_name": "S1/D04/R1/PICT0008.JPG", "datetime": "2010-07-19 06:10:00", "location": "D04"},
    ],
    "annotations": [
        *({"id": f"z{i}", "image_id": f"B03/seq7/{i}", "category_id": 3, "count": 4,
           "sequence_level_annotation": True, "classification_method": "human", "classified_by": "volunteers"}
          for i in range(3)),
        *({"id": f"w{i}", "image_id": f"B03/seq7/{i}", "category_id": 5, "count": 1,
           "sequence_level_annotation": True, "classification_method": "human", "classified_by": "volunteers"}
          for i in range(3)),
        {"id": "md1", "image_id": "B03/seq7/2", "category_id": 3, "bbox": [204.8, 307.2, 409.6, 614.4], "count": 1,
         "classification_method": "machine", "classified_by": "MDv5a", "classification_probability": 0.93},
        {"id": 7, "image_id": 41, "category_id": 6, "count": 2, "sequence_level_annotation": True},
        {"id": 8, "image_id": 42, "category_id": 0, "sequence_level_annotation": False, "consensus": 0.8},
    ],
    "categories": [{"id": 0, "name": "empty"}, {"id": 3, "name": "zebra"}, {"id": 5, "name": "wildebeest"},
                   {"id": 6, "name": "impala"}],
}  # fmt: skip

FIELDS = ("observation_level", "observation_type", "scientific_name", "count", "media_id", "event_id",
          "classification_method", "classified_by", "classification_probability", "bbox_x", "bbox_y",
          "bbox_width", "bbox_height", "event_start", "event_end")  # fmt: skip


def _observations(ws: Workspace) -> dict[str, tuple[Any, ...]]:
    """Each observation's fields, keyed by id (events by their first annotation's id)."""
    with ws.db.session() as s:
        return {o.id: tuple(getattr(o, f) for f in FIELDS) for o in s.scalars(select(Observation))}


def _by_id(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda d: str(d["id"]))


def test_counts_bursts_and_who_labelled_survive_a_round_trip(workspace: Workspace, tmp_path: Path) -> None:
    (tmp_path / "in.json").write_text(json.dumps(COCO))
    rep = import_coco(workspace, tmp_path / "in.json", utc_offset_minutes=180)
    assert (rep.images, rep.annotations, rep.events, rep.locations) == (5, 9, 2, 2)
    obs = _observations(workspace)
    start, end = datetime(2010, 7, 18, 13, 26, 14, tzinfo=UTC), datetime(2010, 7, 18, 13, 26, 16, tzinfo=UTC)
    # The burst's labels are one observation each, of the burst, with its count; not one per frame.
    assert obs["z0"] == ("event", "animal", "zebra", 4, None, "B03/seq7", "human", "volunteers", None,
                         None, None, None, None, start, end)
    assert obs["w0"][:8] == ("event", "animal", "wildebeest", 1, None, "B03/seq7", "human", "volunteers")
    assert "z1" not in obs and "w2" not in obs
    # A frame's own box: media level, in its burst's event, the machine's with its probability.
    md = obs["md1"]
    assert md[:9] == ("media", "animal", "zebra", 1, "B03/seq7/2", "B03/seq7", "machine", "MDv5a", 0.93)
    assert md[9:13] == pytest.approx((0.1, 0.2, 0.2, 0.4))
    # A burst label on a photo without a burst stays with the photo; an empty photo has no count.
    assert obs["7"][:6] == ("media", "animal", "impala", 2, "41", None)
    assert obs["8"][:4] == ("media", "blank", None, None)
    assert len(obs) == 5

    export_coco(workspace, tmp_path / "out.json")
    out = json.loads((tmp_path / "out.json").read_text())
    assert _by_id(out["images"]) == _by_id(COCO["images"])
    assert _by_id(out["annotations"]) == _by_id(COCO["annotations"])
    assert out["categories"] == COCO["categories"]

    fresh = open_workspace(Settings(data_dir=tmp_path / "fresh"))
    try:
        import_coco(fresh, tmp_path / "out.json", utc_offset_minutes=180)
        assert _observations(fresh) == obs
    finally:
        fresh.close()
    # Importing again updates what it made.
    import_coco(workspace, tmp_path / "in.json", utc_offset_minutes=180)
    assert _observations(workspace) == obs


def _card_store(ws: Workspace) -> None:
    """Two cameras whose cards both hold DCIM/100MEDIA/IMG_0001.JPG, labelled by a person and a machine."""
    t = datetime(2024, 6, 1, 21, 0, tzinfo=UTC)
    with ws.db.session() as s:
        for dep in ("C1", "C2"):
            upsert_deployment(s, DeploymentSpec(id=dep))
        s.flush()
        for dep in ("C1", "C2"):
            for i in (1, 2):
                s.add(Media(id=f"{dep}-{i}", deployment_id=dep, file_path=f"DCIM/100MEDIA/IMG_000{i}.JPG",
                            file_name=f"IMG_000{i}.JPG", file_mediatype="image/jpeg", timestamp=t,
                            sequence_id=f"{dep}:000001", sequence_index=i, width=1920, height=1080))
        s.flush()
        s.add(Observation(id="h1", deployment_id="C1", media_id="C1-1", event_id="C1:000001",
                          observation_type="animal", scientific_name="Panthera pardus orientalis", count=2,
                          classification_method="human", classified_by="O. Ivanova",
                          bbox_x=0.1, bbox_y=0.2, bbox_width=0.3, bbox_height=0.4))
        s.add(Observation(id="m1", deployment_id="C2", media_id="C2-1", observation_type="animal",
                          scientific_name="Capreolus pygargus", count=1, classification_method="machine",
                          classified_by="speciesnet", classification_probability=0.91))
        s.add(Observation(id="e1", deployment_id="C2", event_id="C2:000001", observation_level="event",
                          observation_type="animal", scientific_name="Capreolus pygargus", count=3,
                          classification_method="human", classified_by="O. Ivanova"))
        s.add(Observation(id="v1", deployment_id="C2", event_id="C2:000001", observation_level="event",
                          observation_type="animal", scientific_name="Capreolus pygargus", count=1,
                          classification_method="machine", classified_by="speciesnet+sequence"))


def test_pardus_labels_leave_with_unique_names_and_who_made_them(workspace: Workspace, tmp_path: Path) -> None:
    _card_store(workspace)
    counts = export_coco(workspace, tmp_path / "park.json")
    out = json.loads((tmp_path / "park.json").read_text())
    names = [i["file_name"] for i in out["images"]]
    assert len(names) == len(set(names)) == 4
    assert "C1/DCIM/100MEDIA/IMG_0001.JPG" in names and "C2/DCIM/100MEDIA/IMG_0001.JPG" in names
    anns = {a["id"]: a for a in out["annotations"]}
    cats = {c["id"]: c["name"] for c in out["categories"]}
    assert anns["h1"]["classification_method"] == "human" and anns["h1"]["classified_by"] == "O. Ivanova"
    assert anns["h1"]["count"] == 2 and anns["h1"]["bbox"] == pytest.approx([192, 216, 576, 432])
    assert (anns["m1"]["classification_method"], anns["m1"]["classification_probability"]) == ("machine", 0.91)
    # The person's burst label on each of the burst's photos; the machine's burst vote is not a label.
    burst = [a for a in out["annotations"] if a.get("sequence_level_annotation")]
    assert sorted(a["image_id"] for a in burst) == ["C2-1", "C2-2"]
    assert {(cats[a["category_id"]], a["count"], a["classification_method"]) for a in burst} == {
        ("Capreolus pygargus", 3, "human")}
    assert counts == {"images": 4, "annotations": 4}

    fresh = open_workspace(Settings(data_dir=tmp_path / "fresh"))
    try:
        import_coco(fresh, tmp_path / "park.json")
        back = _observations(fresh)
        assert back["h1"][:9] == ("media", "animal", "Panthera pardus orientalis", 2, "C1-1", "C1:000001",
                                  "human", "O. Ivanova", None)
        assert back["m1"][6:9] == ("machine", "speciesnet", 0.91)
        [event] = [v for v in back.values() if v[0] == "event"]
        assert event[:8] == ("event", "animal", "Capreolus pygargus", 3, None, "C2:000001", "human", "O. Ivanova")
        with fresh.db.session() as s:
            assert s.scalar(select(Media.file_path).where(Media.id == "C2-1")) == "C2/DCIM/100MEDIA/IMG_0001.JPG"
        export_coco(fresh, tmp_path / "again.json")
        again = json.loads((tmp_path / "again.json").read_text())
        assert _by_id(again["annotations"]) == _by_id(out["annotations"])
        assert _by_id(again["images"]) == _by_id(out["images"])
    finally:
        fresh.close()


def _doc(**changes: Any) -> dict[str, Any]:
    doc = json.loads(json.dumps(COCO))
    for path, value in changes.items():
        part, index, key = path.split(".")
        doc[part][int(index)][key] = value
    return doc


@pytest.mark.parametrize(("changes", "message"), [
    ({"annotations.6.count": -1}, r"annotation \"md1\".*'count' must be a whole number"),
    ({"annotations.6.count": 1.5}, "'count' must be a whole number"),
    ({"annotations.0.sequence_level_annotation": "yes"}, "'sequence_level_annotation' must be true or false"),
    ({"annotations.6.classification_method": "ai"}, "'classification_method' must be human or machine"),
    ({"annotations.6.classification_probability": 3}, "'classification_probability' must be a number from 0 to 1"),
    ({"annotations.6.bbox": [1, 2, 3]}, "'bbox' must be \\[x, y, width, height\\]"),
    ({"annotations.6.bbox_relative": [0.5, 0.5, 0.9, 0.1]}, "'bbox_relative' must be"),
    ({"annotations.1.id": "z0"}, "its id is given twice"),
    ({"annotations.1.image_id": "nowhere"}, "refers to image \"nowhere\", which is not in the file"),
    ({"annotations.1.category_id": "3"}, "has category \"3\", not in 'categories'"),
    ({"images.1.id": "B03/seq7/0"}, "its id is given twice"),
    ({"images.0.width": "2048"}, "'width' must be a whole number of pixels"),
    ({"images.0.frame_num": -1}, "'frame_num' must be a whole number from 0"),
    ({"images.0.location": "x" * 80}, "'location'.*must be 1-64 characters"),
    ({"images.0.seq_id": True}, "'seq_id' must be a number or text"),
    ({"images.0.file_name": ""}, "'file_name' must be a path"),
])  # fmt: skip
def test_bad_items_refuse_the_file_by_name(workspace: Workspace, tmp_path: Path, changes: dict[str, Any],
                                           message: str) -> None:
    (tmp_path / "bad.json").write_text(json.dumps(_doc(**changes)))
    with pytest.raises(CocoError, match=message):
        import_coco(workspace, tmp_path / "bad.json")
    assert _rows(workspace) == (0, 0)


def _rows(ws: Workspace) -> tuple[int, int]:
    with ws.db.session() as s:
        return (s.scalar(select(func.count()).select_from(Media)) or 0,
                s.scalar(select(func.count()).select_from(Observation)) or 0)


def test_validate_names_what_the_importer_would_refuse(tmp_path: Path) -> None:
    from pardus.interop.validate import validate_path

    (tmp_path / "bad.json").write_text(json.dumps(_doc(**{"annotations.6.count": "many"})))
    v = validate_path(tmp_path / "bad.json")
    assert v.kind == "COCO Camera Traps" and "'count' must be a whole number" in v.problems[0]
    (tmp_path / "good.json").write_text(json.dumps(COCO))
    assert validate_path(tmp_path / "good.json").valid


JUNK = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False, allow_infinity=False),
                 st.text(max_size=6), st.lists(st.integers(0, 9), max_size=5))
IDS = st.one_of(st.sampled_from(["a", "b", "c"]), st.integers(0, 3))
IMAGES = st.fixed_dictionaries(
    {"id": st.one_of(IDS, JUNK), "file_name": st.one_of(st.sampled_from(["x/1.jpg", "x/2.JPG"]), JUNK)},
    optional={"width": st.one_of(st.integers(1, 4000), JUNK), "height": st.integers(1, 4000),
              "datetime": st.one_of(st.sampled_from(["2024-06-01 21:00:00", "junk"]), JUNK),
              "seq_id": st.one_of(st.sampled_from(["s1", "s2"]), JUNK),
              "frame_num": st.one_of(st.integers(0, 3), JUNK), "location": st.one_of(st.sampled_from(["L1", 2]), JUNK)},
)  # fmt: skip
ANNOTATIONS = st.fixed_dictionaries(
    {"id": st.one_of(st.integers(0, 20), st.text(min_size=1, max_size=4), JUNK), "image_id": st.one_of(IDS, JUNK),
     "category_id": st.one_of(st.sampled_from([0, 1, "1"]), JUNK)},
    optional={"bbox": st.one_of(st.lists(st.floats(0, 500), min_size=4, max_size=4), JUNK),
              "bbox_relative": st.one_of(st.just([0.1, 0.1, 0.2, 0.2]), JUNK),
              "count": st.one_of(st.integers(0, 5), JUNK),
              "sequence_level_annotation": st.one_of(st.booleans(), JUNK),
              "classification_method": st.one_of(st.sampled_from(["human", "machine"]), JUNK),
              "classification_probability": st.one_of(st.floats(0, 1), JUNK)},
)  # fmt: skip
DOCS = st.fixed_dictionaries(
    {"images": st.lists(IMAGES, max_size=4), "annotations": st.lists(ANNOTATIONS, max_size=5),
     "categories": st.one_of(st.just([{"id": 0, "name": "empty"}, {"id": 1, "name": "zebra"}]), st.lists(JUNK))},
)


def test_coco_import_property(workspace: Workspace, tmp_path: Path) -> None:
    """Generated files of every shape: imported whole (every image and annotation kept, every box,
    count and label as written) or refused whole with a CocoError; never another exception."""
    path = tmp_path / "coco.json"

    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
    @given(DOCS)
    def check(doc: dict[str, Any]) -> None:
        path.write_text(json.dumps(doc))
        before = _rows(workspace)
        try:
            rep = import_coco(workspace, path, prefix="p/")
        except CocoError as exc:
            assert str(exc) and " object at 0x" not in str(exc)
            assert _rows(workspace) == before, "a refused file left rows behind"
            return
        assert rep.images == len(doc["images"]) and rep.annotations == len(doc["annotations"])
        with workspace.db.session() as s:
            for ann in doc["annotations"]:
                o = s.get(Observation, f"p/{ann['id']}")
                if o is None:  # a burst label: kept in its event
                    assert ann.get("sequence_level_annotation") is True
                    continue
                assert o.count == ann.get("count")
                assert o.classification_method == ann.get("classification_method")
        export_coco(workspace, tmp_path / "out.json", project_id=rep.project_id)
        out = json.loads((tmp_path / "out.json").read_text())
        assert sorted(str(a["id"]) for a in out["annotations"]) == sorted(str(a["id"]) for a in doc["annotations"])
        with workspace.db.session() as s:  # the next example starts from an empty store
            for model in (Observation, Media):
                s.execute(model.__table__.delete())

    check()
