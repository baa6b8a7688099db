"""Issue 20 (COCO): a box on a photo whose size Pardus does not know leaves as bbox_relative, not dropped."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from pardus.config import Settings
from pardus.interop.coco_ct import export_coco, relative_bbox
from pardus.interop.coco_import import import_coco
from pardus.store import open_workspace
from pardus.store.models import Observation

COCO = {
    "images": [{"id": "i1", "file_name": "C1/IMG_0001.JPG", "location": "C1", "datetime": "2024-06-01 21:00:00"}],
    "annotations": [{"id": "a1", "image_id": "i1", "category_id": 1, "bbox_relative": [0.1, 0.2, 0.3, 0.4]}],
    "categories": [{"id": 0, "name": "empty"}, {"id": 1, "name": "Panthera pardus orientalis"}],
}


def test_relative_boxes_survive_when_the_image_size_is_unknown(workspace, tmp_path: Path) -> None:
    (tmp_path / "in.json").write_text(json.dumps(COCO))
    import_coco(workspace, tmp_path / "in.json")
    with workspace.db.session() as s:
        o = s.scalars(select(Observation)).one()
        assert (o.bbox_x, o.bbox_y, o.bbox_width, o.bbox_height) == (0.1, 0.2, 0.3, 0.4)
    export_coco(workspace, tmp_path / "out.json")
    ann = json.loads((tmp_path / "out.json").read_text())["annotations"][0]
    assert ann["bbox_relative"] == [0.1, 0.2, 0.3, 0.4] and "bbox" not in ann
    fresh = open_workspace(Settings(data_dir=tmp_path / "fresh"))
    try:
        import_coco(fresh, tmp_path / "out.json")
        with fresh.db.session() as s:
            o = s.scalars(select(Observation)).one()
            assert (o.bbox_x, o.bbox_y, o.bbox_width, o.bbox_height) == (0.1, 0.2, 0.3, 0.4)
    finally:
        fresh.close()


def test_relative_bbox_refuses_what_is_not_a_box() -> None:
    assert relative_bbox([0.1, 0.2, 0.3, 0.4]) == (0.1, 0.2, 0.3, 0.4)
    for bad in (None, [1, 2, 3], ["a", 0, 0.1, 0.1], [0.5, 0.5, 0.9, 0.1], [0, 0, 0, 0.1], [float("nan")] * 4):
        assert relative_bbox(bad) is None
