"""The offline detectors: camera-trap animals (YOLOX-tiny) and people and vehicles (COCO SSD).

Both take an RGB ``uint8`` array and return :class:`Box` es with coordinates normalised to the
image (top-left x, y, width, height, as MegaDetector and Camtrap DP write them).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from pardus.models.registry import COCO_SSD, YOLOX_TINY, ModelInfo

# COCO ids of the TensorFlow zoo label map that mean "a vehicle" to a ranger.
COCO_PERSON = 1
COCO_VEHICLES = {2: "bicycle", 3: "car", 4: "motorcycle", 6: "bus", 8: "truck"}
TILE_ONLY = "animal (tile only)"  # Box.label of an animal only a full-resolution tile saw


@dataclass(frozen=True)
class Box:
    category: str  # animal | person | vehicle
    score: float
    x: float
    y: float
    w: float
    h: float
    label: str = ""  # the model's own class name, e.g. "truck"
    model: str = ""  # ModelInfo.key


def tile_windows(w: int, h: int, grid: int, overlap: float) -> list[tuple[int, int, int, int]]:
    """``grid`` x ``grid`` pixel windows (x0, y0, x1, y1) covering a w x h frame, neighbours sharing
    ``overlap`` of a tile, so an animal cut by one tile's edge lies whole in the next."""
    tw, th = w / (grid - (grid - 1) * overlap), h / (grid - (grid - 1) * overlap)
    out = []
    for gy in range(grid):
        for gx in range(grid):
            x0, y0 = round(gx * tw * (1 - overlap)), round(gy * th * (1 - overlap))
            out.append((x0, y0, w if gx == grid - 1 else min(w, round(x0 + tw)),
                        h if gy == grid - 1 else min(h, round(y0 + th))))
    return out


class YoloxAnimalDetector:
    """zamba's YOLOX-tiny. Run at 960 px by default: small and distant animals score higher than at
    its training size of 640, and it misses fewer of MegaDetector v5a's animal photos on the LILA
    test set (see bench/detect_eval.py)."""

    info: ModelInfo = YOLOX_TINY

    def __init__(self, size: int = 960, min_score: float = 0.05, iou: float = 0.45, threads: int | None = None) -> None:
        import torch

        from pardus.models.device import torch_device
        from pardus.models.yolox import YOLOX, grid_size

        self.size = grid_size(size)
        self.min_score = min_score
        self.iou = iou
        ckpt = torch.load(self.info.weights_path(), map_location="cpu", weights_only=False)
        self.net = YOLOX(num_classes=len(self.info.classes))
        self.net.load_state_dict(ckpt.get("model", ckpt), strict=True)
        self.device = torch_device()
        self.net.eval().to(self.device)
        if threads:
            torch.set_num_threads(threads)
        self._lock = threading.Lock()

    def prepare(self, rgb: np.ndarray) -> tuple[np.ndarray, float, tuple[int, int]]:
        """Letterbox on grey (114, as YOLOX pads), keeping the aspect ratio; CPU work outside the lock."""
        import cv2

        h, w = rgb.shape[:2]
        r = min(self.size / h, self.size / w)
        nh, nw = max(1, round(h * r)), max(1, round(w * r))
        canvas = np.full((self.size, self.size, 3), 114, np.float32)
        canvas[:nh, :nw] = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if r < 1 else cv2.INTER_LINEAR)
        return np.ascontiguousarray(canvas.transpose(2, 0, 1)), r, (w, h)

    def detect_prepared(self, batch: list[tuple[np.ndarray, float, tuple[int, int]]]) -> list[list[Box]]:
        import torch

        from pardus.models.yolox import decode

        if not batch:
            return []
        x = torch.from_numpy(np.stack([b[0] for b in batch])).to(self.device)
        with self._lock, torch.inference_mode():
            out = self.net(x).cpu().numpy()
        result = []
        for rows, (_, r, (w, h)) in zip(out, batch, strict=True):
            boxes, scores, _ = decode(rows, self.min_score, self.iou)
            items = []
            for (x1, y1, x2, y2), s in zip(boxes / r, scores, strict=True):
                x1, y1 = max(0.0, float(x1)), max(0.0, float(y1))
                x2, y2 = min(float(w), float(x2)), min(float(h), float(y2))
                if x2 > x1 and y2 > y1:
                    items.append(Box("animal", float(s), x1 / w, y1 / h, (x2 - x1) / w, (y2 - y1) / h,
                                     "animal", self.info.key))
            result.append(items)
        return result

    def detect(self, rgb: np.ndarray) -> list[Box]:
        return self.detect_prepared([self.prepare(rgb)])[0]

    def detect_tiled(self, rgb: np.ndarray, grid: int = 2, overlap: float = 0.2,
                     whole: list[Box] | None = None, boost: bool = False) -> list[Box]:
        """The whole frame plus ``grid`` x ``grid`` overlapping tiles, each at the detector's size.

        A 1920x1080 frame shrunk to 960 px halves a distant animal; each tile keeps about 1.7x more of
        its pixels. Tiles only add what the whole frame did not see: a tile box that overlaps a
        whole-frame box (of any score) is dropped, so magnified leaves and rocks the whole frame
        scored faintly do not come back as confident "animals" (``boost=True`` keeps them and lets
        non-maximum suppression pick the higher score; bench/detect_tiles.py measures both). Added
        boxes are labelled ``TILE_ONLY``, so the thresholds may ask more of them. Frames no larger than
        the detector's input gain nothing and get the plain pass. It costs ``1 + grid**2`` forward
        passes (``grid**2`` when the caller already has the whole frame's boxes, ``whole``).
        """
        h, w = rgb.shape[:2]
        whole = self.detect(rgb) if whole is None else whole
        if max(h, w) <= self.size or grid < 2:
            return whole
        return self.merge_tiles(whole, self.tile_boxes(rgb, grid, overlap), boost=boost)

    def tile_boxes(self, rgb: np.ndarray, grid: int = 2, overlap: float = 0.2) -> list[Box]:
        """Boxes found on each tile, in the whole frame's coordinates (not merged)."""
        h, w = rgb.shape[:2]
        out = []
        for x0, y0, x1, y1 in tile_windows(w, h, grid, overlap):
            for b in self.detect(np.ascontiguousarray(rgb[y0:y1, x0:x1])):
                out.append(Box(b.category, b.score, (x0 + b.x * (x1 - x0)) / w, (y0 + b.y * (y1 - y0)) / h,
                               b.w * (x1 - x0) / w, b.h * (y1 - y0) / h, b.label, b.model))
        return out

    def merge_tiles(self, whole: list[Box], tiles: list[Box], boost: bool = False) -> list[Box]:
        """Whole-frame boxes plus the tile boxes (see ``detect_tiled``), de-duplicated by NMS."""
        import cv2

        boxes = list(whole)
        for tb in tiles:
            seen = any(iou(tb, o) >= 0.3 or inside(tb, o) >= 0.6 or inside(o, tb) >= 0.6 for o in whole)
            if not seen:
                boxes.append(Box(tb.category, tb.score, tb.x, tb.y, tb.w, tb.h, TILE_ONLY, tb.model))
            elif boost:
                boxes.append(tb)
        if not boxes:
            return boxes
        keep = cv2.dnn.NMSBoxes([[b.x, b.y, b.w, b.h] for b in boxes], [b.score for b in boxes],
                                self.min_score, self.iou)
        return sorted((boxes[int(i)] for i in np.asarray(keep).reshape(-1)), key=lambda b: -b.score)


def iou(a: Box, b: Box) -> float:
    inter = _overlap(a, b)
    union = a.w * a.h + b.w * b.h - inter
    return inter / union if union > 0 else 0.0


def inside(a: Box, b: Box) -> float:
    """Share of box ``a`` inside box ``b``."""
    return _overlap(a, b) / max(a.w * a.h, 1e-12)


def _overlap(a: Box, b: Box) -> float:
    x1, y1 = max(a.x, b.x), max(a.y, b.y)
    x2, y2 = min(a.x + a.w, b.x + b.w), min(a.y + a.h, b.y + b.h)
    return max(0.0, x2 - x1) * max(0.0, y2 - y1)


class CocoPersonVehicleDetector:
    """SSD-MobileNet-v2 (COCO) through OpenCV DNN, keeping only people and vehicles: it misses most
    camouflaged wildlife, but people and cars are what COCO knows best."""

    info: ModelInfo = COCO_SSD

    def __init__(self, min_score: float = 0.2) -> None:
        import cv2

        pb = self.info.weights_path()
        pbtxt = pb.with_name("ssd_mobilenet_v2_coco_2018_03_29.pbtxt")
        self.net = cv2.dnn.readNetFromTensorflow(str(pb), str(pbtxt))
        self.min_score = min_score
        self._lock = threading.Lock()

    def detect(self, rgb: np.ndarray) -> list[Box]:
        import cv2

        blob = cv2.dnn.blobFromImage(rgb, size=(300, 300), swapRB=False, crop=False)
        with self._lock:
            self.net.setInput(blob)
            out = self.net.forward()[0, 0]
        boxes = []
        for _, cls, score, x1, y1, x2, y2 in out:
            cls = int(cls)
            if score < self.min_score or (cls != COCO_PERSON and cls not in COCO_VEHICLES):
                continue
            x1, y1 = float(np.clip(x1, 0, 1)), float(np.clip(y1, 0, 1))
            x2, y2 = float(np.clip(x2, 0, 1)), float(np.clip(y2, 0, 1))
            if x2 <= x1 or y2 <= y1:
                continue
            cat, label = ("person", "person") if cls == COCO_PERSON else ("vehicle", COCO_VEHICLES[cls])
            boxes.append(Box(cat, float(score), x1, y1, x2 - x1, y2 - y1, label, self.info.key))
        return boxes
