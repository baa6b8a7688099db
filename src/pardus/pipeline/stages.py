"""The stages `pardus process` runs, in order. Each room adds its stage here when it exists."""

from __future__ import annotations

import os

from pardus.config import Settings, get_settings
from pardus.pipeline.core import Stage
from pardus.pipeline.daynight import DayNightStage


def detect_choice(settings: Settings) -> str:
    """The detector the detect stage runs. "auto": MegaDetector v6 once `pardus models fit-mdv6`
    installed it in the data folder (it finds far more animals than the offline pair:
    docs/detection.md), else the offline pair; any other setting as it is."""
    if settings.detector != "auto":
        return settings.detector
    from pardus.models.mdv6 import ready

    return "megadetector-v6-yolov10-c" if ready(settings.data_dir / "models") else "offline"


def current_detector_key(settings: Settings | None = None) -> str | None:
    """The model key of the detect stage ``pardus process`` runs now (None without a detector): the
    boxes species and re-identification work on."""
    from pardus.models.registry import COCO_SSD, YOLOX_TINY

    settings = settings or get_settings()
    choice = detect_choice(settings)
    if choice == "offline" and not (YOLOX_TINY.available() and COCO_SSD.available()):
        return None
    from pardus.pipeline.detect import DetectionStage

    return DetectionStage(tiles=settings.detect_tiles, detector=choice, workers=0,
                          models_dir=settings.data_dir / "models").model_key


def default_stages(settings: Settings | None = None) -> list[Stage]:
    """Stages that run with what is installed on this machine, in pipeline order. ``settings`` names
    the data folder, where the heads a park trained live (the species and fire stages use them)."""
    from pardus.models.registry import COCO_SSD, DINOV2_VITS14, MOBILENET_V2_IMAGENET, SPECIESNET, YOLOX_TINY

    settings = settings or get_settings()
    stages: list[Stage] = [DayNightStage()]
    # A field detector the user chose must be there (its absence is an error that says how to get it).
    choice = detect_choice(settings)
    detector = choice != "offline" or (YOLOX_TINY.available() and COCO_SSD.available())
    if detector:
        from pardus.pipeline.detect import DetectionStage

        stage = DetectionStage(tiles=settings.detect_tiles, detector=choice,
                               workers=settings.detect_workers, models_dir=settings.data_dir / "models")
        if choice != "offline":
            stage._models()  # fail here, before any work, if the file is missing or not ONNX
        stages.append(stage)
    boxes_from = stages[-1].model_key if detector else None
    if MOBILENET_V2_IMAGENET.available() and DINOV2_VITS14.available():
        from pardus.pipeline.classify import SpeciesStage

        stages.append(SpeciesStage(head_dir=settings.data_dir / "models", whole_frame=not detector,
                                   boxes_from=boxes_from))
    if SPECIESNET.env_path and os.environ.get(SPECIESNET.env_path):
        from pardus.pipeline.classify import SpeciesStage

        # A second species opinion the user asked for by naming the file; its results sit beside the others.
        stages.append(SpeciesStage(speciesnet=SPECIESNET.weights_path(), whole_frame=not detector,
                                   boxes_from=boxes_from))
    if DINOV2_VITS14.available() and (settings.data_dir / "models" / "fire-head.json").is_file():
        from pardus.pipeline.hazard import FireSmokeStage

        stages.append(FireSmokeStage(head_dir=settings.data_dir / "models"))
    if detector:
        from pardus.reid.stage import ReidStage

        # re-identifies the animal boxes, after species (it skips other species)
        stages.append(ReidStage(boxes_from=boxes_from))
    return stages
