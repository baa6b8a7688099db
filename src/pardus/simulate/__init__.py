"""pardus.simulate: the virtual park, synthetic camera-trap seasons with known truth.

Three ways in, from light to heavy:

* ``simulate_captures`` - SECR capture data only (no images), for coverage studies;
* ``render_frame`` - one realistic JPEG of given content, for tests that need a frame now;
* ``simulate_season`` - a whole season on disk: cards, deployments.csv and truth/.
"""

from pardus.simulate.captures import CaptureData, CaptureModelError, Mask, half_normal, simulate_captures
from pardus.simulate.render import CameraInfo, FrameSpec, Subject, render, render_frame
from pardus.simulate.season import SeasonError, SeasonParams, SeasonSummary, simulate_season

__all__ = [
    "CameraInfo",
    "CaptureData",
    "CaptureModelError",
    "FrameSpec",
    "Mask",
    "SeasonError",
    "SeasonParams",
    "SeasonSummary",
    "Subject",
    "half_normal",
    "render",
    "render_frame",
    "simulate_captures",
    "simulate_season",
]
