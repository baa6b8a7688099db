"""How fast a memory card imports, against the floor of touching each file once.

The floor is what any importer must do at least: read every byte, hash it (sha256) and decode the
JPEG once (to know it is whole). It is measured twice: with a full-resolution decode, and with
the reduced (DCT-scaled, "draft") decode Pardus uses, which still entropy-decodes every byte.
Pardus does all of that plus EXIF, a thumbnail, a durable blob copy (fsync) and database rows.

    python bench/import_card.py                # 2,000 photos of 1920x1080
    python bench/import_card.py -n 300 --database-url postgresql+psycopg://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import hashlib
import io
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from PIL import Image

from pardus.config import Settings
from pardus.ingest.card import import_card
from pardus.ingest.synthetic import write_card
from pardus.store import open_workspace


def floor(paths: list[Path], draft: bool) -> float:
    t0 = time.perf_counter()
    for p in paths:
        data = p.read_bytes()
        hashlib.sha256(data).hexdigest()
        img = Image.open(io.BytesIO(data))
        if draft:  # the same DCT scale Pardus asks for: longest side just covers a 320 px thumbnail
            scale = 320 / max(img.size)
            img.draft("RGB", (int(img.size[0] * scale), int(img.size[1] * scale)))
        img.load()
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=2000, help="photos on the card (default 2000)")
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--database-url", default=None, help="default: SQLite in a temporary data folder")
    ap.add_argument("--workdir", type=Path, default=None, help="keep the generated card here (reused)")
    args = ap.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="pardus-bench-"))
    card = work / f"card-{args.n}-{args.width}x{args.height}"
    if not (card / "DONE").exists():
        print(f"generating {args.n} photos of {args.width}x{args.height} in {card} ...", flush=True)
        shutil.rmtree(card, ignore_errors=True)
        write_card(card, args.n, datetime(2024, 6, 1, 20, 0), size=(args.width, args.height))
        (card / "DONE").write_text("ok")
    paths = sorted(p for p in card.rglob("*.JPG"))
    mb = sum(p.stat().st_size for p in paths) / 1e6
    print(f"card: {len(paths)} photos, {mb:.0f} MB")

    floor(paths[:50], draft=True)  # warm the page cache so both sides read from memory
    t_full = floor(paths, draft=False)
    t_draft = floor(paths, draft=True)

    data_dir = work / "data"
    shutil.rmtree(data_dir, ignore_errors=True)
    ws = open_workspace(Settings(data_dir=data_dir, database_url=args.database_url))
    t0 = time.perf_counter()
    rep = import_card(ws, card, "BENCH")
    t_pardus = time.perf_counter() - t0
    ws.close()
    assert rep.counts.get("imported") == len(paths), rep.counts

    n = len(paths)
    print()
    print(f"{'':38}{'seconds':>10}{'files/s':>10}{'Pardus / this':>16}")
    for name, t in (
        ("floor: read + sha256 + full decode", t_full),
        ("floor: read + sha256 + draft decode", t_draft),
        ("Pardus import-card", t_pardus),
    ):
        print(f"{name:38}{t:10.2f}{n / t:10.1f}{t_pardus / t:16.2f}")
    ratio = t_pardus / t_full
    print()
    print(f"Pardus is {ratio:.2f}x the full-decode floor (target <= 1.5x): {'MET' if ratio <= 1.5 else 'NOT MET'}")
    print(f"Pardus is {t_pardus / t_draft:.2f}x the draft-decode floor (the same decode Pardus does)")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
