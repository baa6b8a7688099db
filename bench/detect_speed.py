"""Images per second of the whole detection stage against the bare models on the same photos.

The bare side decodes each photo and runs both detectors in one loop, nothing else; the stage
also reads the blob store, records boxes and observations and its state per photo, and flags
repeats, while worker processes decode the next photos. Their ratio is what the pipeline costs
(target at most 1.25x). MegaDetector v5a's published CPU speed, 0.8 images/s on one core, is
printed beside them for scale (it is a figure, not a run: its weights cannot be fetched here).

    python bench/detect_speed.py [-n 120]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from pardus.config import Settings
from pardus.ingest.card import import_card
from pardus.models.detectors import CocoPersonVehicleDetector, YoloxAnimalDetector
from pardus.pipeline.core import run_stage
from pardus.pipeline.decode import decode_bytes, decode_many
from pardus.pipeline.detect import DetectionStage
from pardus.simulate import render_frame
from pardus.store import open_workspace

MD_V5A_CPU_IMAGES_PER_S = 0.8


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=120, help="photos (virtual-park frames, 1280x720)")
    args = ap.parse_args()
    kinds = ["blank", "animal", "leopard", "human", "vehicle", "tiger"]
    with tempfile.TemporaryDirectory() as tmp:
        card = Path(tmp) / "card" / "DCIM" / "100MEDIA"
        card.mkdir(parents=True)
        t0 = datetime(2024, 7, 1, 6, 0)
        for i in range(args.n):
            when = t0 + timedelta(minutes=37 * i)
            (card / f"IMG_{i:04d}.JPG").write_bytes(render_frame(kinds[i % len(kinds)], when=when, seed=i))
        files = sorted(card.iterdir())

        animal, coco = YoloxAnimalDetector(size=960), CocoPersonVehicleDetector(min_score=0.4)
        animal.detect(np.zeros((720, 1280, 3), np.uint8))
        t = time.perf_counter()
        for f in files:
            rgb = decode_bytes(f.read_bytes(), animal.size)
            animal.detect(rgb)
            coco.detect(rgb)
        bare = time.perf_counter() - t

        ws = open_workspace(Settings(data_dir=Path(tmp) / "data"))
        import_card(ws, card.parents[1], "SPEED")
        stage = DetectionStage()
        stage._models()  # load outside the timing, as the bare side does
        # Start the decode worker processes outside the timing too (once per process, about 4 s on
        # 2 cores: a season pays it once, not per photo).
        list(decode_many([str(files[0])], stage._models()[0].size, stage.workers))
        t = time.perf_counter()
        run = run_stage(ws, stage)
        full = time.perf_counter() - t
        ws.close()
        assert run.done == args.n, run.errors
    n = args.n
    print(f"{n} photos 1280x720, detection at 960 px + COCO SSD")
    print(f"{'':38}{'seconds':>9}{'images/s':>10}")
    print(f"{'bare models (decode + both detectors)':38}{bare:9.1f}{n / bare:10.2f}")
    print(f"{'Pardus detection stage (store, state)':38}{full:9.1f}{n / full:10.2f}")
    print(f"{'MegaDetector v5a, published, 1 core':38}{'':9}{MD_V5A_CPU_IMAGES_PER_S:10.2f}")
    ratio = full / bare
    print(f"stage / bare = {ratio:.2f}x (target <= 1.25x: {'MET' if ratio <= 1.25 else 'NOT MET'}); "
          f"stage vs MDv5a's published rate: {n / full / MD_V5A_CPU_IMAGES_PER_S:.1f}x")


if __name__ == "__main__":
    main()
