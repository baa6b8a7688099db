"""MegaDetector v6 from its Edge TPU file: the graph reader, the first-layer recovery, and a real detection.

All on the real file in ../shared/models (skipped with a reason when it is absent); the model is
built once per module (about a second) and runs one 640 px photo.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import SHARED

TFLITE = SHARED / "models" / "mdv6-yolov10-c-int8-edgetpu" / "MDV6-yolov10-c_full_integer_quant_edgetpu.tflite"
LILA = SHARED / "data" / "megadetector-lila-test-set"


@pytest.fixture(scope="module")
def tflite() -> Path:
    if not TFLITE.is_file():
        pytest.skip(f"the MegaDetector v6 Edge TPU file is not at {TFLITE} (shared/ absent)")
    return TFLITE


def test_the_graph_parses_and_every_operator_up_to_the_head_is_implemented(tflite: Path) -> None:
    from pardus.models.mdv6 import HEAD_TENSOR_SHAPE
    from pardus.models.tflite_graph import FloatGraph, read_tflite

    g = read_tflite(tflite)
    assert len(g.operators) == 507 and len(g.tensors) > 1000
    x = g.tensors[g.inputs[0]]
    assert x.shape == (1, 640, 640, 3) and x.dtype == np.int8 and abs(float(x.scale[0]) - 1 / 255) < 1e-9
    assert g.tensors[g.outputs[0]].shape == (1, 300, 6)
    assert [op.custom_code for op in g.operators if op.op == "CUSTOM"] == ["edgetpu-custom-op"]
    # only the int64 index arithmetic of the NMS-free post-processing is not implemented; it is skipped
    assert set(g.unknown_ops) <= {"CAST", "FLOOR_MOD", "GATHER", "GATHER_ND", "LESS", "TILE", "TOPK_V2"}
    head = [t.index for t in g.tensors if t.shape == HEAD_TENSOR_SHAPE]
    custom = next(op for op in g.operators if op.op == "CUSTOM")
    fg = FloatGraph(g, stop=head, overrides={t: (lambda x: x) for t in custom.outputs})
    assert len(fg.order) == 463 and {op.op for op in fg.order} >= {"CONV_2D", "DEPTHWISE_CONV_2D", "SOFTMAX",
                                                                     "FULLY_CONNECTED", "RESIZE_NEAREST_NEIGHBOR"}


def test_the_first_layer_is_recovered_from_the_edge_tpu_program(tflite: Path) -> None:
    from pardus.models.mdv6 import recover_first_layer

    layer = recover_first_layer(tflite)
    assert layer.weights.shape == (16, 3, 3, 3) and layer.bias.shape == (16,)
    assert layer.weights.size + layer.bias.size == 448
    assert int(np.abs(layer.weights.astype(int)).max()) == 127, "per-tensor symmetric int8: one |w| of 127"
    assert (layer.stride, layer.pad) == (2, 1)
    assert layer.bias[:3].tolist() == [2981, 3326, -4183]


@pytest.fixture(scope="module")
def detector(tflite: Path):  # noqa: ANN201 - MegaDetectorV6, imported lazily
    from pardus.models.mdv6 import MegaDetectorV6, recover_first_layer

    return MegaDetectorV6(tflite, recover_first_layer(tflite))


def test_it_finds_the_animal_megadetector_v5a_found(detector, shared_data: Path) -> None:  # noqa: ANN001
    from PIL import Image

    name = "ena24_7904.jpg"
    md = json.loads((LILA / "megadetector_v5a_output.json").read_text())
    truth = max(next(i for i in md["images"] if Path(i["file"]).name == name)["detections"], key=lambda d: d["conf"])
    rgb = np.asarray(Image.open(LILA / "images" / name).convert("RGB"))
    boxes = detector.detect(rgb)
    assert boxes and boxes[0].category == "animal" and boxes[0].score >= 0.5
    b, (x, y, w, h) = boxes[0], truth["bbox"]
    ix = max(0.0, min(b.x + b.w, x + w) - max(b.x, x))
    iy = max(0.0, min(b.y + b.h, y + h) - max(b.y, y))
    overlap = ix * iy / (b.w * b.h + w * h - ix * iy)
    assert overlap >= 0.6, f"MDv6 box {b} vs MegaDetector v5a {truth['bbox']}"
    assert all(0 <= v <= 1 for v in (b.x, b.y, b.x + b.w, b.y + b.h))


def test_fit_mdv6_writes_the_layer_and_the_model_into_the_data_folder(
        tflite: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from pardus.cli import app
    from pardus.config import get_settings
    from pardus.models.mdv6 import FirstLayer, first_layer_path
    from pardus.models.registry import MEGADETECTOR_V6_C

    monkeypatch.setenv("PARDUS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("PARDUS_MDV6_PATH", raising=False)
    get_settings.cache_clear()

    def listed() -> str:
        out = CliRunner().invoke(app, ["models", "list"]).output
        return next(line for line in out.splitlines() if "megadetector-v6-yolov10-c" in line)

    try:
        assert "no" in listed().split("│")[4], "before fit-mdv6 `models list` says MDv6 is not here"
        result = CliRunner().invoke(app, ["models", "fit-mdv6", str(tflite)])
        assert "yes" in listed().split("│")[4], "after fit-mdv6 `models list` says MDv6 is here"
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    models = tmp_path / "data" / "models"
    model = MEGADETECTOR_V6_C.weights_path(models)
    assert model.parent == models and model.stat().st_size == tflite.stat().st_size
    layer = FirstLayer.load(first_layer_path(model))
    assert layer.weights.shape == (16, 3, 3, 3) and layer.source_sha256 == MEGADETECTOR_V6_C.sha256
    bad = CliRunner().invoke(app, ["models", "fit-mdv6", str(tmp_path / "missing.tflite")])
    assert bad.exit_code == 2
    # PARDUS_MDV6_PATH naming the original (read-only) file: the layer is found in the models folder
    from pardus.models.mdv6 import MegaDetectorV6

    monkeypatch.setenv("PARDUS_MDV6_PATH", str(tflite))
    assert MegaDetectorV6.installed(models).first_layer.source_sha256 == layer.source_sha256


def test_without_the_recovered_layer_the_detector_says_what_to_run(tflite: Path, tmp_path: Path) -> None:
    from pardus.models.mdv6 import FirstLayer, MegaDetectorV6, recover_first_layer
    from pardus.models.registry import ModelUnavailableError

    with pytest.raises(ModelUnavailableError, match="fit-mdv6"):
        MegaDetectorV6(tflite, tmp_path / "none.npz")
    with pytest.raises(ModelUnavailableError, match="fit-mdv6"):
        MegaDetectorV6.installed(tmp_path)  # nothing installed in this models folder
    other = recover_first_layer(tflite)
    stale = tmp_path / "stale.npz"
    FirstLayer(other.weights, other.bias, other.weight_scale, other.input_scale, other.stride, other.pad,
               "0" * 64).save(stale)
    with pytest.raises(ModelUnavailableError, match="another file"):
        MegaDetectorV6(tflite, stale)


@pytest.mark.slow
def test_mdv6_runs_as_the_detect_stage_on_a_real_photo_and_a_blank(
        tflite: Path, tmp_path: Path, workspace, shared_data: Path) -> None:  # noqa: ANN001
    import shutil

    from PIL import Image
    from sqlalchemy import select

    from pardus.ingest.card import import_card
    from pardus.models.mdv6 import first_layer_path, recover_first_layer
    from pardus.pipeline.core import run_stage
    from pardus.pipeline.detect import MDV6_THRESHOLDS, DetectionStage
    from pardus.store.models import Detection, Media, Observation

    models = tmp_path / "models"
    models.mkdir()
    shutil.copyfile(tflite, models / tflite.name)
    recover_first_layer(tflite).save(first_layer_path(models / tflite.name))
    card = tmp_path / "card" / "DCIM" / "100MEDIA"
    card.mkdir(parents=True)
    shutil.copyfile(LILA / "images" / "ena24_7904.jpg", card / "IMG_0000.JPG")
    Image.fromarray(np.full((480, 640, 3), 128, np.uint8)).save(card / "IMG_0001.JPG")  # flat grey: empty
    import_card(workspace, tmp_path / "card", "C1")
    stage = DetectionStage(detector="megadetector-v6-yolov10-c", models_dir=models, workers=0)
    assert stage.thresholds == MDV6_THRESHOLDS and stage.model_key == "megadetector-v6-yolov10-c@6.0-c-int8-edgetpu"
    run = run_stage(workspace, stage)
    assert (run.done, run.failed) == (2, 0), run.errors
    with workspace.db.session() as s:
        dets = s.execute(select(Media.file_name, Detection.category, Detection.score)
                         .join(Detection, Detection.media_id == Media.id)).all()
        obs = dict(s.execute(select(Media.file_name, Observation.observation_type)
                             .join(Observation, Observation.media_id == Media.id)).all())
    assert obs == {"IMG_0000.JPG": "animal", "IMG_0001.JPG": "blank"}
    assert {(n, c) for n, c, _ in dets} == {("IMG_0000.JPG", "animal")} and max(v for *_, v in dets) >= 0.5


def test_auto_picks_mdv6_once_it_is_installed_and_the_offline_pair_before(
        tflite: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from pardus.cli import app
    from pardus.config import Settings, get_settings
    from pardus.models.registry import MEGADETECTOR_V6_C, YOLOX_TINY
    from pardus.pipeline.stages import default_stages

    monkeypatch.delenv("PARDUS_MDV6_PATH", raising=False)
    monkeypatch.delenv("PARDUS_DETECTOR", raising=False)
    settings = Settings(data_dir=tmp_path / "data")
    assert settings.detector == "auto"

    def detect_key() -> str:
        return next(st.model_key for st in default_stages(settings) if st.name == "detect")

    if YOLOX_TINY.available():
        assert detect_key().startswith(YOLOX_TINY.key), "before fit-mdv6: the offline pair"
    monkeypatch.setenv("PARDUS_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    try:
        assert CliRunner().invoke(app, ["models", "fit-mdv6", str(tflite)]).exit_code == 0
    finally:
        get_settings.cache_clear()
    assert detect_key() == MEGADETECTOR_V6_C.key
    assert next(st.model_key for st in default_stages(Settings(data_dir=settings.data_dir, detector="offline"))
                if st.name == "detect").startswith(YOLOX_TINY.key), "PARDUS_DETECTOR=offline still chooses it"
