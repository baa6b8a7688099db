"""CPU cost of one photo: MegaDetector v6-c (640 px) beside zamba's YOLOX-tiny (960 and 640 px).

Measured as process CPU time with one torch thread (``time.process_time``), which other work on
a shared machine barely changes, unlike wall-clock time. Photos: the first 6 LILA test photos.

    python bench/mdv6_speed.py [--shared ../shared] [--mdv6 PATH_TO_TFLITE]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from detect_eval import MDV6_FILE, load
from pardus.models.detectors import YoloxAnimalDetector
from pardus.models.mdv6 import MegaDetectorV6, recover_first_layer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    ap.add_argument("--mdv6", type=Path, default=None)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    path = args.mdv6 or args.shared / MDV6_FILE
    if not path.is_file():
        sys.exit(f"no MegaDetector v6 file at {path}")
    photos = [load(p) for p in sorted((args.shared / "data" / "megadetector-lila-test-set" / "images").iterdir())[:6]]
    detectors = {"MDv6-c 640 px": MegaDetectorV6(path, recover_first_layer(path)),
                 "YOLOX-tiny 960 px": YoloxAnimalDetector(size=960),
                 "YOLOX-tiny 640 px": YoloxAnimalDetector(size=640)}
    for name, det in detectors.items():
        det.detect(photos[0])  # warm-up
        cpu = []
        for rgb in photos:
            t = time.process_time()
            det.detect(rgb)
            cpu.append(time.process_time() - t)
        print(f"{name:18} CPU seconds per photo (1 thread): median {np.median(cpu):.3f}, "
              f"max {max(cpu):.3f}")


if __name__ == "__main__":
    main()
