"""Field models the user brings as ONNX running as stages: MegaDetector (PARDUS_DETECTOR) and SpeciesNet.

The real weights cannot be fetched on these machines, so the ONNX graph here is small and written
in the test: it reports one person box whose score is the frame's mean brightness, so a bright
photo has a person and a dark one is blank. The stage, the runner, ONNX Runtime and the store are
the real ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from pardus.config import Settings
from pardus.ingest.card import import_card
from pardus.models.registry import ModelUnavailableError
from pardus.pipeline.core import run_stage
from pardus.pipeline.detect import DetectionStage
from pardus.pipeline.stages import default_stages
from pardus.store import Workspace
from pardus.store.models import Detection, Media, Observation


def _brightness_megadetector(path: Path, size: int = 64) -> None:
    """YOLOv5 layout [1, 1, 8]: a centred box, objectness 1, class scores (0, mean pixel, 0)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    c = size / 2
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], keepdims=0),
        helper.make_node("Reshape", ["m", "shape"], ["m3"]),
        helper.make_node("Concat", ["head", "zero", "m3", "zero"], ["rows"], axis=2),
    ]
    init = [
        numpy_helper.from_array(np.array([1, 1, 1], np.int64), "shape"),
        numpy_helper.from_array(np.array([[[c, c, size / 2, size / 2, 1.0]]], np.float32), "head"),
        numpy_helper.from_array(np.zeros((1, 1, 1), np.float32), "zero"),
    ]
    graph = helper.make_graph(nodes, "md-brightness",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
                              [helper.make_tensor_value_info("rows", TensorProto.FLOAT, [1, 1, 8])], init)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_megadetector_onnx_runs_as_the_detect_stage(tmp_path: Path, workspace: Workspace,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "md_v5a.onnx"
    _brightness_megadetector(model)
    monkeypatch.setenv("PARDUS_MEGADETECTOR_V5A", str(model))
    card = tmp_path / "card" / "DCIM" / "100MEDIA"
    card.mkdir(parents=True)
    for i, value in enumerate((240, 10)):
        Image.fromarray(np.full((120, 160, 3), value, np.uint8)).save(card / f"IMG_{i:04d}.JPG")
    import_card(workspace, tmp_path / "card", "C1")
    stage = DetectionStage(detector="megadetector-v5a")
    assert stage.model_key == "megadetector-v5a@5.0a"
    run = run_stage(workspace, stage)
    assert (run.done, run.failed) == (2, 0), run.errors
    with workspace.db.session() as s:
        dets = s.execute(select(Media.file_name, Detection.category, Detection.model_name, Detection.score)
                         .join(Detection, Detection.media_id == Media.id)).all()
        obs = dict(s.execute(select(Media.file_name, Observation.observation_type)
                             .join(Observation, Observation.media_id == Media.id)).all())
    assert [(n, c, m) for n, c, m, _ in dets] == [("IMG_0000.JPG", "person", "megadetector-v5a")]
    # 160x120 letterboxed into 64x64: 48 rows of the photo (240) over 16 rows of YOLO's grey pad (114).
    assert dets[0][3] == pytest.approx((48 * 240 + 16 * 114) / 64 / 255, abs=0.005)
    assert obs == {"IMG_0000.JPG": "human", "IMG_0001.JPG": "blank"}
    # The offline detector's results are another model key: running it later would keep these.
    assert DetectionStage().model_key != stage.model_key


def test_a_chosen_field_detector_that_is_missing_says_how_to_get_it(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PARDUS_MEGADETECTOR_V5A", raising=False)
    settings = Settings(data_dir=tmp_path / "data", detector="megadetector-v5a")
    with pytest.raises(ModelUnavailableError, match="PARDUS_MEGADETECTOR_V5A"):
        default_stages(settings)
    (tmp_path / "data" / "models").mkdir(parents=True)
    (tmp_path / "data" / "models" / "md_v5a.0.0.pt").write_bytes(b"a PyTorch checkpoint")
    with pytest.raises(ModelUnavailableError, match="not an ONNX file"):
        default_stages(settings)
    with pytest.raises(ValueError, match="unknown detector"):
        DetectionStage(detector="yolo-from-the-internet")


def test_process_names_the_missing_detector(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from pardus.cli import app

    monkeypatch.setenv("PARDUS_DETECTOR", "megadetector-v1000-redwood")
    monkeypatch.delenv("PARDUS_MEGADETECTOR_V1000", raising=False)
    out = CliRunner().invoke(app, ["process"])
    assert out.exit_code == 1
    assert "PARDUS_MEGADETECTOR_V1000" in out.output and "PARDUS_DETECTOR=offline" in out.output


def test_speciesnet_onnx_adds_its_own_species_stage(tmp_path: Path, workspace: Workspace,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """SpeciesNet's output layout (logits over labels.txt) from a small graph whose logits follow the
    photo's colour: a red photo is a leopard, a blue one a tiger, a dark one blank (no name)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    # logits = (8 R, 8 B, 2.4) of the mean pixel in 0..1: red -> leopard, blue -> tiger, dark -> blank.
    weights = np.array([[8.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 8.0, 0.0]], np.float32)  # rows R, G, B
    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], axes=[1, 2], keepdims=0),
             helper.make_node("MatMul", ["m", "w"], ["l0"]),
             helper.make_node("Add", ["l0", "b"], ["logits"])]
    init = [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(np.array([0, 0, 2.4], np.float32), "b")]
    graph = helper.make_graph(nodes, "speciesnet-colour",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32, 32, 3])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])], init)
    model = tmp_path / "speciesnet" / "model.onnx"
    model.parent.mkdir()
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(model))
    (model.parent / "labels.txt").write_text("u1;mammalia;carnivora;felidae;panthera;pardus;leopard\n"
                                             "u2;mammalia;carnivora;felidae;panthera;tigris;tiger\n"
                                             "u3;;;;;;blank\n")
    monkeypatch.setenv("PARDUS_SPECIESNET", str(model))
    stages = default_stages(Settings(data_dir=tmp_path / "data"))
    [snet] = [st for st in stages if st.model_key == "speciesnet@4.0"]
    card = tmp_path / "card" / "DCIM" / "100MEDIA"
    card.mkdir(parents=True)
    Image.fromarray(np.full((60, 80, 3), (250, 20, 20), np.uint8)).save(card / "IMG_0001.JPG")
    Image.fromarray(np.full((60, 80, 3), (30, 30, 30), np.uint8)).save(card / "IMG_0002.JPG")
    Image.fromarray(np.full((60, 80, 3), (60, 60, 200), np.uint8)).save(card / "IMG_0003.JPG")
    import_card(workspace, tmp_path / "card", "C1")
    snet.whole_frame = True  # no detector run in this test: classify whole photos
    run = run_stage(workspace, snet)
    assert (run.done, run.failed) == (3, 0), run.errors
    with workspace.db.session() as s:
        got = dict(s.execute(select(Media.file_name, Observation.scientific_name)
                             .join(Observation, Observation.media_id == Media.id)
                             .where(Observation.classified_by == "speciesnet@4.0")).all())
        best = s.scalars(select(Observation.extra).join(Media, Media.id == Observation.media_id)
                         .where(Media.file_name == "IMG_0002.JPG")).first()
    assert got == {"IMG_0001.JPG": "Panthera pardus", "IMG_0002.JPG": None, "IMG_0003.JPG": "Panthera tigris"}
    assert best is not None and best["best"] == "blank"
