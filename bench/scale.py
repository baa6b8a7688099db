"""Photos per second of the detect stage: the local executor against Ray with 1 and 2 workers, on
the same photos on this machine, in one run.

Each side processes its own copy of the store from scratch (results written by the driver, as in
`pardus process`). Model loading is outside the timing on both sides: the local stage loads its
models before the clock starts, and the Ray workers are warmed on one batch first. The local side
decodes in the main process (detect_workers=0) so that "1 worker" means one CPU doing the work on
both sides, and the local stage's torch and OpenCV thread pools are limited to one thread, as a
Ray worker's are (Ray gives each one CPU); the local run on all threads is printed first for
reference. Ray with 1 worker against local on 1 thread is Ray's overhead (target at most 1.15x). The last
line projects N workers from the 2-worker speed; it is a projection, not a run.

    python bench/scale.py [-n 60]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from pardus.config import Settings
from pardus.ingest.card import import_card
from pardus.pipeline.core import run_stage
from pardus.pipeline.detect import DetectionStage
from pardus.pipeline.executors import RayExecutor
from pardus.simulate import render_frame
from pardus.store import open_workspace
from pardus.store.models import Media


def _card(root: Path, n: int) -> Path:
    card = root / "card" / "DCIM" / "100MEDIA"
    card.mkdir(parents=True)
    kinds = ["blank", "animal", "leopard", "human", "vehicle", "tiger"]
    t0 = datetime(2024, 7, 1, 6, 0)
    for i in range(n):
        (card / f"IMG_{i:04d}.JPG").write_bytes(render_frame(kinds[i % len(kinds)], when=t0 + timedelta(minutes=37 * i),
                                                             seed=i))
    return card.parents[1]


def _run(tmp: Path, card: Path, name: str, executor: RayExecutor | None, batch: int) -> tuple[float, int]:
    settings = Settings(data_dir=tmp / name, detect_workers=0)
    with open_workspace(settings) as ws:
        import_card(ws, card, "SCALE")
        stage = DetectionStage(workers=0)
        if executor is None:
            stage._models()
        else:  # warm the workers (models loaded once per worker) on one batch, then start from scratch
            with ws.db.session() as s:
                first = list(s.scalars(select(Media.id).limit(batch)))
            list(executor.map(ws, stage, [first]))
        t = time.perf_counter()
        run = run_stage(ws, stage, batch_size=batch, executor=executor)
        return time.perf_counter() - t, run.done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=60, help="photos (virtual-park frames, 1280x720)")
    ap.add_argument("--batch", type=int, default=4)
    args = ap.parse_args()
    import cv2
    import ray
    import torch

    tmp = Path(tempfile.mkdtemp(prefix="pardus-scale-"))
    try:
        card = _card(tmp, args.n)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        rows = []
        s, d = _run(tmp, card, "local-all", None, args.batch)
        rows.append((f"local, {torch.get_num_threads()} threads", s, d))
        # A Ray worker is given one CPU (Ray sets OMP_NUM_THREADS=1 in it), so "equal workers" means
        # the local stage on one thread too: torch's and OpenCV's thread pools limited to one.
        torch.set_num_threads(1)
        cv2.setNumThreads(1)
        local_s, done = _run(tmp, card, "local", None, args.batch)
        rows.append(("local, 1 thread", local_s, done))
        for workers in (1, 2):
            ex = RayExecutor(workers=workers, keep=True)  # the warm-up's workers do the timed run
            s, d = _run(tmp, card, f"ray{workers}", ex, args.batch)
            ex.close()
            rows.append((f"Ray, {workers} worker{'s' if workers > 1 else ''}", s, d))
        ray.shutdown()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"detect stage (offline pair), {args.n} photos 1280x720, batch {args.batch}, this machine:")
    print(f"{'executor':<20}{'seconds':>9}{'photos/s':>10}{'time / local':>14}")
    for name, s, d in rows:
        print(f"{name:<20}{s:>9.1f}{d / s:>10.2f}{s / local_s:>13.2f}x")
    ray1, ray2 = rows[2][1], rows[3][1]
    print(f"Ray overhead at equal workers (Ray 1 / local): {ray1 / local_s:.2f}x (target <= 1.15x)")
    per_worker = args.n / ray2 / 2
    print(f"projection, not a run: N workers of this speed ~ {per_worker:.2f} x N photos/s "
          f"(a million photos on 16 workers ~ {1e6 / (per_worker * 16) / 3600:.1f} h), if the store keeps up")


if __name__ == "__main__":
    main()
