"""Real MegaDetector v5a output in, the same file out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pardus.ingest.card import import_card
from pardus.ingest.deployments import DeploymentSpec, upsert_deployment
from pardus.interop.megadetector_json import MegaDetectorError, export_megadetector, import_megadetector
from pardus.store.models import Detection, Media, StageState


@pytest.fixture(scope="session")
def lila(shared_data: Path) -> Path:
    return shared_data / "megadetector-lila-test-set"


def test_lila_output_imports_every_detection_and_exports_an_equal_file(workspace, lila: Path, tmp_path: Path) -> None:
    import_card(workspace, lila / "images", "LILA")
    src = lila / "megadetector_v5a_output.json"
    rep = import_megadetector(workspace, src)
    original = json.loads(src.read_text())
    assert rep.unmatched == [] and rep.images == 21
    assert rep.detections == sum(len(i["detections"]) for i in original["images"]) == 59
    assert rep.model_name == "megadetector_v5_camonly_mosaic_xlarge_dist_5a_last" and rep.model_version == "v5a"
    with workspace.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Detection)) == 59
        assert s.scalar(select(func.count()).select_from(StageState).where(StageState.status == "done")) == 21
        d = s.scalars(select(Detection).join(Media).where(Media.file_name.like("%IMAG0084.JPG")).order_by(
            Detection.score.desc())).first()  # fmt: skip
        assert (d.category, d.score, d.x, d.y, d.w, d.h) == ("animal", 0.9402, 0.3699, 0.3979, 0.1971, 0.211)
    export_megadetector(workspace, tmp_path / "same.json", format_version="1.1")
    assert json.loads((tmp_path / "same.json").read_text()) == original
    # The current format (1.4) carries the same images, boxes, categories and confidences.
    export_megadetector(workspace, tmp_path / "new.json")
    new = json.loads((tmp_path / "new.json").read_text())
    assert new["info"]["format_version"] == "1.4" and new["detection_categories"] == original["detection_categories"]
    assert new["info"]["detector_metadata"]["megadetector_version"] == "v5a"
    strip = [{k: v for k, v in i.items() if k != "max_detection_conf"} for i in original["images"]]
    assert new["images"] == strip
    # Importing again replaces rather than doubles.
    import_megadetector(workspace, src)
    with workspace.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Detection)) == 59


def test_video_frames_failures_and_classifications_round_trip(workspace, tmp_path: Path) -> None:
    with workspace.db.session() as s:
        upsert_deployment(s, DeploymentSpec(id="C020"))
    results = {
        "info": {"format_version": "1.4", "detector": "md_v5a.0.0.pt", "classifier": "speciesnet",
                 "detector_metadata": {"megadetector_version": "v5a.0.0", "typical_detection_threshold": 0.2}},
        "detection_categories": {"1": "animal", "2": "person", "3": "vehicle"},
        "classification_categories": {"0": "amur leopard", "1": "sika deer"},
        "images": [
            {"file": "100RECNX/IMG_0001.JPG", "detections": [
                {"category": "1", "conf": 0.97, "bbox": [0.1, 0.2, 0.3, 0.4], "classifications": [["0", 0.91]]}]},
            {"file": "100RECNX/IMG_0002.JPG", "detections": []},
            {"file": "100RECNX/VID_0003.MP4", "frame_rate": 30, "frames_processed": [0, 30, 60], "detections": [
                {"category": "2", "conf": 0.88, "bbox": [0.5, 0.5, 0.1, 0.3], "frame_number": 30},
                {"category": "1", "conf": 0.42, "bbox": [0.0, 0.1, 0.2, 0.2], "frame_number": 60}]},
            {"file": "100RECNX/IMG_0004.JPG", "failure": "Failure image access", "detections": None},
        ],
    }  # fmt: skip
    (tmp_path / "in.json").write_text(json.dumps(results))
    with pytest.raises(MegaDetectorError, match="no deployment"):
        import_megadetector(workspace, tmp_path / "in.json", deployment_id="nope")
    rep = import_megadetector(workspace, tmp_path / "in.json", deployment_id="C020")
    assert (rep.images, rep.detections, rep.failed, rep.placeholders) == (4, 3, 1, 4)
    with workspace.db.session() as s:
        frame = s.scalars(select(Detection).where(Detection.category == "person")).one()
        assert frame.frame_time_s == 1.0 and frame.model_version == "v5a.0.0"
        assert all(not m.available for m in s.scalars(select(Media)))
    export_megadetector(workspace, tmp_path / "out.json")
    assert json.loads((tmp_path / "out.json").read_text()) == results


def test_unmatched_files_are_refused_not_invented(workspace, lila: Path, tmp_path: Path) -> None:
    # Issue 20: 0 of 21 matched used to end "done"; it is refused, nothing written, with what to do.
    with pytest.raises(MegaDetectorError, match="21 of 21 file.*--image-root"):
        import_megadetector(workspace, lila / "megadetector_v5a_output.json")
    with pytest.raises(MegaDetectorError, match="21 of 21"):
        import_megadetector(workspace, lila / "megadetector_v5a_output.json", skip_unmatched=True)
    with workspace.db.session() as s:
        assert s.scalar(select(func.count()).select_from(StageState)) == 0
    with pytest.raises(MegaDetectorError, match="cannot read .*labels.csv as JSON"):
        import_megadetector(workspace, lila / "labels.csv")
    (tmp_path / "coco.json").write_text('{"images": 3}')
    with pytest.raises(MegaDetectorError, match="not a MegaDetector results file"):
        import_megadetector(workspace, tmp_path / "coco.json")
