"""Fit the one number the Edge TPU program of MegaDetector v6 does not carry: the first layer's weight scale.

`pardus.models.mdv6` reads the first layer's int8 weights and int32 biases out of the compiled Edge
TPU program; the per-tensor float scale ``s_w`` of those weights is not in it. This script picks
it by a 1-D search on a fit set that no evaluation uses: the 10 heron frames of the Camtrap DP
example (``camtrap-dp-example/example/media``) with their human-drawn boxes (observations.csv).
For each candidate scale it runs the whole network and scores, per labelled box, the best
detection score among boxes overlapping it (IoU >= 0.5); the mean over boxes is maximised.
It also prints, as an independent check, the range of the first conv's output over the fit photos
next to the calibrated quantization range stored in the file for that tensor.

    python bench/mdv6_fit.py PATH_TO_TFLITE [--shared ../shared]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from pardus.models.mdv6 import MegaDetectorV6, recover_first_layer

GRID = (0.14, 0.15, 0.16, 0.165, 0.17, 0.175, 0.18, 0.185, 0.19, 0.2, 0.22)


def heron_frames(shared: Path) -> list[tuple[np.ndarray, list[tuple[float, float, float, float]]]]:
    """The Camtrap DP example's local frames with the boxes its observations give them."""
    root = shared / "data" / "camtrap-dp-example" / "example"
    media = {r["fileName"]: r["mediaID"] for r in csv.DictReader((root / "media.csv").open(newline=""))}
    boxes: dict[str, list[tuple[float, float, float, float]]] = {}
    for o in csv.DictReader((root / "observations.csv").open(newline="")):
        if o["bboxX"] and o["mediaID"]:
            boxes.setdefault(o["mediaID"], []).append(
                (float(o["bboxX"]), float(o["bboxY"]), float(o["bboxWidth"]), float(o["bboxHeight"])))
    out = []
    for p in sorted((root / "media").glob("*.JPG")):
        mid = media.get(p.name.split("-", 1)[1]) or media.get(p.name)
        if mid in boxes:
            with Image.open(p) as im:
                out.append((np.asarray(ImageOps.exif_transpose(im).convert("RGB")), boxes[mid]))
    return out


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    return inter / max(a[2] * a[3] + b[2] * b[3] - inter, 1e-12)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tflite", type=Path)
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    args = ap.parse_args()
    import torch

    frames = heron_frames(args.shared)
    if not frames:
        sys.exit("no Camtrap DP example frames with boxes found: give --shared")
    layer = recover_first_layer(args.tflite, 1.0)
    det = MegaDetectorV6(args.tflite, layer, min_score=0.01)
    t0 = time.perf_counter()
    results = []
    print(f"{len(frames)} fit photos, {sum(len(b) for _, b in frames)} labelled boxes")
    print(f"{'s_w':>6}  {'mean matched score':>18}  {'min':>5}")
    for s in GRID:
        w, b = layer.float_params()
        det.weight, det.bias = torch.from_numpy(w * s), torch.from_numpy(b * s)
        matched = []
        for rgb, gts in frames:
            found = det.detect(rgb)
            for g in gts:
                matched.append(max([d.score for d in found if iou((d.x, d.y, d.w, d.h), g) >= 0.5] or [0.0]))
        results.append((float(np.mean(matched)), s))
        print(f"{s:6.3f}  {np.mean(matched):18.3f}  {min(matched):5.3f}", flush=True)
    best = max(results)[1]
    print(f"\nbest weight scale on the fit set: {best}")
    # Independent check: the first conv's output range over these photos against the file's calibration.
    w, b = layer.float_params()
    acc_min, acc_max = np.inf, -np.inf
    for rgb, _ in frames:
        x, *_ = det.prepare(rgb)
        xc = torch.from_numpy(x).permute(2, 0, 1)[None]
        y = torch.nn.functional.conv2d(torch.nn.functional.pad(xc, (1, 1, 1, 1)), torch.from_numpy(w),
                                       torch.from_numpy(b), 2)
        acc_min, acc_max = min(acc_min, float(y.min())), max(acc_max, float(y.max()))
    from pardus.models.tflite_graph import read_tflite

    g = read_tflite(args.tflite)
    out = next(g.tensors[op.outputs[0]] for op in g.operators if op.op == "CUSTOM")
    lo = (-128 - int(out.zero_point[0])) * float(out.scale[0])
    hi = (127 - int(out.zero_point[0])) * float(out.scale[0])
    print(f"first conv output over the fit photos at s_w={best}: {acc_min * best:.1f} .. {acc_max * best:.1f}; "
          f"calibrated range in the file: {lo:.1f} .. {hi:.1f}")
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
