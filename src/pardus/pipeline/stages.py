"""The stages `pardus process` runs, in order. Each room adds its stage here when it exists."""

from __future__ import annotations

from pardus.pipeline.core import Stage
from pardus.pipeline.daynight import DayNightStage


def default_stages() -> list[Stage]:
    """Stages that run with what is installed on this machine, in pipeline order."""
    from pardus.models.registry import COCO_SSD, YOLOX_TINY

    stages: list[Stage] = [DayNightStage()]
    if YOLOX_TINY.available() and COCO_SSD.available():
        from pardus.pipeline.detect import DetectionStage

        stages.append(DetectionStage())
        from pardus.reid.stage import ReidStage

        stages.append(ReidStage())  # re-identifies the detection stage's animal boxes
    return stages
