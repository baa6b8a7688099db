"""COCO Camera Traps: import then export gives back the same file; Pardus data exports as COCO."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from pardus.config import Settings
from pardus.interop.camtrap_dp import import_camtrap_dp
from pardus.interop.coco_ct import export_coco
from pardus.interop.coco_import import import_coco
from pardus.store import open_workspace
from pardus.store.models import Media, Observation

COCO = {
    "info": {"version": "1.0", "description": "Land of the Leopard sample", "year": 2024, "contributor": "LotL"},
    "licenses": [{"id": 1, "name": "CC-BY-4.0"}],
    "images": [
        {"id": "S1/D04/0001", "file_name": "S1/D04/R6/PICT0020.JPG", "width": 2048, "height": 1536,
         "datetime": "2010-08-19 18:24:57", "seq_id": "S1/D04/seq1", "seq_num_frames": 3, "frame_num": 0,
         "location": "D04", "corrupt": False},
        {"id": "S1/D04/0002", "file_name": "S1/D04/R6/PICT0021.JPG", "width": 2048, "height": 1536,
         "datetime": "2010:08:19 18:24:57", "seq_id": "S1/D04/seq1", "seq_num_frames": 3, "frame_num": 1,
         "location": "D04"},
        {"id": 17, "file_name": "S1/E11/PICT0001.JPG", "width": 1920, "height": 1080, "location": 11},
    ],
    "annotations": [
        {"id": "a1", "image_id": "S1/D04/0001", "category_id": 2, "bbox": [100, 200.5, 640, 480],
         "sequence_level_annotation": False},
        {"id": "a2", "image_id": "S1/D04/0002", "category_id": 2},
        {"id": 3, "image_id": 17, "category_id": 0},
        {"id": 4, "image_id": 17, "category_id": 5},
    ],
    "categories": [{"id": 0, "name": "empty"}, {"id": 2, "name": "elephant"}, {"id": 5, "name": "human"},
                   {"id": 9, "name": "leopard"}],
}  # fmt: skip


def test_coco_round_trip_is_identity(workspace, tmp_path: Path) -> None:
    (tmp_path / "in.json").write_text(json.dumps(COCO))
    rep = import_coco(workspace, tmp_path / "in.json", utc_offset_minutes=180)
    assert (rep.images, rep.annotations, rep.locations) == (3, 4, 2)
    with workspace.db.session() as s:
        m = s.get(Media, "S1/D04/0001")
        assert m.sequence_id == "S1/D04/seq1" and m.sequence_index == 1 and m.deployment_id == "D04"
        assert m.timestamp.isoformat() == "2010-08-19T15:24:57+00:00" and not m.available
        a1 = s.get(Observation, "a1")
        assert (a1.observation_type, a1.scientific_name) == ("animal", "elephant")
        assert (a1.bbox_x, a1.bbox_width) == (100 / 2048, 640 / 2048)
        assert s.get(Observation, "3").observation_type == "blank"
    export_coco(workspace, tmp_path / "out.json")
    out = json.loads((tmp_path / "out.json").read_text())
    key = lambda d: str(d["id"])  # noqa: E731
    assert sorted(out["images"], key=key) == sorted(COCO["images"], key=key)
    assert sorted(out["annotations"], key=key) == sorted(COCO["annotations"], key=key)
    assert {k: v for k, v in out.items() if k not in ("images", "annotations")} == {
        k: v for k, v in COCO.items() if k not in ("images", "annotations")
    }


def test_camtrap_example_exports_as_coco_and_back(shared_data: Path, sqlite_settings, tmp_path: Path) -> None:
    ws = open_workspace(sqlite_settings)
    try:
        import_camtrap_dp(ws, shared_data / "camtrap-dp-example" / "example")
        counts = export_coco(ws, tmp_path / "a.json")
    finally:
        ws.close()
    # 513 media-level observations, and the 36 event-level ones on each of their 510 photos (issue 20)
    assert counts == {"images": 423, "annotations": 513 + 510}
    a = json.loads((tmp_path / "a.json").read_text())
    assert sum(1 for x in a["annotations"] if x.get("sequence_level_annotation")) == 510
    assert {x.get("classification_method") for x in a["annotations"]} == {"human", "machine"}
    herons = [x for x in a["annotations"] if x.get("bbox")]
    assert len(herons) == 0  # the example has no image sizes: no pixel boxes...
    assert [x for x in a["annotations"] if x.get("bbox_relative")]  # ...but its boxes as fractions (issue 20)
    assert {c["name"] for c in a["categories"]} >= {"Ardea", "Vulpes vulpes", "empty", "Homo sapiens"}
    assert {"id": 0, "name": "empty"} in a["categories"]  # the format's empty category (issue 20)
    ws2 = open_workspace(Settings(data_dir=tmp_path / "two"))
    try:
        import_coco(ws2, tmp_path / "a.json")
        export_coco(ws2, tmp_path / "b.json")
        with ws2.db.session() as s:
            assert s.scalar(select(Media.deployment_id).where(Media.id == "07840dcc")) == "e254a13c"
    finally:
        ws2.close()
    b = json.loads((tmp_path / "b.json").read_text())
    for part in ("images", "annotations"):  # same items; the order follows deployments, renamed by location
        b[part].sort(key=lambda d: d["id"])
        a[part].sort(key=lambda d: d["id"])
    assert b == a
