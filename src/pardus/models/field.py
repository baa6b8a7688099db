"""The field's standard models, run from files the user brings: MegaDetector and SpeciesNet as ONNX.

These machines cannot fetch them (no internet), so nothing here is exercised on the real weights
in this repository's tests; the runners are tested on small ONNX graphs written in the test that
produce each model's documented output layout, so the decoding is real code on a real runtime.

- MegaDetector v5a is YOLOv5x6: input ``[1, 3, 1280, 1280]`` RGB in 0..1, letterboxed on grey
  114; output ``[1, N, 8]`` = centre x, centre y, width, height (input pixels), objectness, and
  the scores of animal, person, vehicle. MegaDetector v1000 (YOLOv9-family) exports without
  objectness as ``[1, 7, N]``. Both are read here; the layout is chosen by the output's shape.
- SpeciesNet's classifier (EfficientNetV2-M) as ONNX: input ``[1, 480, 480, 3]`` or
  ``[1, 3, 480, 480]`` RGB in 0..1, output the logits of the labels listed one per line in a
  ``labels.txt`` beside the model (``uuid;class;order;family;genus;species;common name``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pardus.models.detectors import Box
from pardus.models.device import ort_providers
from pardus.models.registry import MEGADETECTOR_V5A, ModelInfo

MD_CATEGORIES = ("animal", "person", "vehicle")


class OnnxMegaDetector:
    """MegaDetector from an ONNX file; ``detect(rgb) -> list[Box]`` like the offline detectors."""

    def __init__(self, path: Path, info: ModelInfo = MEGADETECTOR_V5A, min_score: float = 0.1,
                 iou: float = 0.45) -> None:
        import onnxruntime as ort

        self.info = info
        self.session = ort.InferenceSession(str(path), providers=ort_providers())
        inp = self.session.get_inputs()[0]
        self.input = inp.name
        size = inp.shape[-1]
        self.size = int(size) if isinstance(size, int) else 1280
        self.min_score = min_score
        self.iou = iou

    def detect(self, rgb: np.ndarray) -> list[Box]:
        import cv2

        h, w = rgb.shape[:2]
        r = min(self.size / h, self.size / w)
        nh, nw = max(1, round(h * r)), max(1, round(w * r))
        canvas = np.full((self.size, self.size, 3), 114, np.uint8)
        canvas[:nh, :nw] = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if r < 1 else cv2.INTER_LINEAR)
        x = (canvas.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
        out = np.asarray(self.session.run(None, {self.input: x})[0])[0]
        return self.decode(out, r, w, h)

    def decode(self, out: np.ndarray, r: float, w: int, h: int) -> list[Box]:
        """Rows of one image's output (either layout) → boxes normalised to the original image."""
        import cv2

        if out.shape[0] == 4 + len(MD_CATEGORIES) and out.shape[1] != out.shape[0]:
            rows = out.T  # [7, N] (v8/v9 family): no objectness
            xywh, cls = rows[:, :4], rows[:, 4:]
        else:
            xywh, cls = out[:, :4], out[:, 5:] * out[:, 4:5]  # YOLOv5: class score x objectness
        best = cls.argmax(1)
        score = cls[np.arange(len(cls)), best]
        keep = score >= self.min_score
        xywh, best, score = xywh[keep], best[keep], score[keep]
        if not len(score):
            return []
        tl = xywh[:, :2] - xywh[:, 2:] / 2
        idx = cv2.dnn.NMSBoxesBatched(np.hstack([tl, xywh[:, 2:]]).tolist(), score.tolist(), best.tolist(),
                                      self.min_score, self.iou)
        boxes = []
        for i in np.asarray(idx, int).reshape(-1):
            x1, y1 = max(0.0, tl[i, 0] / r), max(0.0, tl[i, 1] / r)
            x2, y2 = min(float(w), (tl[i, 0] + xywh[i, 2]) / r), min(float(h), (tl[i, 1] + xywh[i, 3]) / r)
            if x2 > x1 and y2 > y1:
                cat = MD_CATEGORIES[int(best[i])]
                boxes.append(Box(cat, float(score[i]), x1 / w, y1 / h, (x2 - x1) / w, (y2 - y1) / h, cat,
                                 self.info.key))
        return sorted(boxes, key=lambda b: -b.score)


def speciesnet_name(taxonomy: str) -> str | None:
    """``uuid;class;order;family;genus;species;common`` -> the most precise scientific name it gives.

    None when the string names no taxon (SpeciesNet's blank, animal, vehicle and 'no cv result').
    The one reader of SpeciesNet's labels: its ONNX runner here and the MegaDetector-format
    classifications an import reads (``pardus.interop.md_classifications``).
    """
    parts = [p.strip() for p in taxonomy.split(";")]
    if len(parts) < 7 or parts[1] == "no cv result":
        return None
    if parts[4] and parts[5]:
        return f"{parts[4].capitalize()} {parts[5].lower()}"
    named = [p for p in parts[1:5] if p]
    return named[-1].capitalize() if named else None


class OnnxSpeciesNet:
    """SpeciesNet's classifier from ONNX plus its labels file: ``classify(crops)`` → (label, p) pairs."""

    def __init__(self, path: Path, labels: Path | None = None) -> None:
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(path), providers=ort_providers())
        inp = self.session.get_inputs()[0]
        self.input = inp.name
        self.channels_last = inp.shape[-1] == 3
        dims = [d for d in inp.shape[1:] if isinstance(d, int) and d != 3]
        self.size = dims[0] if dims else 480
        labels = labels or Path(path).with_name("labels.txt")
        if not labels.is_file():
            raise FileNotFoundError(f"SpeciesNet's labels file {labels} is missing (it ships beside the model)")
        self.labels = [line.strip() for line in labels.read_text(encoding="utf-8").splitlines() if line.strip()]

    def classify(self, crops: list[np.ndarray]) -> list[tuple[str | None, float, str]]:
        """Per crop: the scientific name of the best label (None for SpeciesNet's blank, animal,
        vehicle and "no cv result", which name no taxon), its probability, and the label's common
        name (what a person would read: "blank", "animal", "leopard")."""
        import cv2

        out = []
        for c in crops:
            x = cv2.resize(c, (self.size, self.size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
            x = x[None] if self.channels_last else x.transpose(2, 0, 1)[None]
            logits = np.asarray(self.session.run(None, {self.input: x})[0])[0]
            p = np.exp(logits - logits.max())
            p /= p.sum()
            i = int(p.argmax())
            label = self.labels[i]
            out.append((speciesnet_name(label), float(p[i]), label.split(";")[-1].strip() or label))
        return out
