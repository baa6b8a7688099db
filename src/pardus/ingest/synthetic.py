"""Camera-like JPEG files made on the spot, for tests and benchmarks that need many cards.

They carry the EXIF fields real camera traps write (Make, Model, serial, DateTimeOriginal), so the
import path exercised is the real one; the picture is noise over a gradient, so JPEG sizes and
decode costs resemble real photos rather than flat test cards.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image

TAG_MAKE, TAG_MODEL, TAG_ORIENTATION, TAG_EXIF_IFD = 0x010F, 0x0110, 0x0112, 0x8769
TAG_DATETIME_ORIGINAL, TAG_BODY_SERIAL = 0x9003, 0xA431


def camera_jpeg(
    when: datetime | None,
    *,
    size: tuple[int, int] = (640, 480),
    make: str | None = "RECONYX",
    model: str | None = "HYPERFIRE 2\x00\x00",
    serial: str | None = "H2-TEST-0001",
    seed: int = 0,
    mode: str = "RGB",
    orientation: int | None = None,
    quality: int = 85,
) -> bytes:
    """Bytes of one camera-trap-like JPEG with the given EXIF."""
    rng = np.random.default_rng(seed)
    w, h = size
    base = np.linspace(40, 200, w, dtype=np.float32)[None, :, None] + np.zeros((h, 1, 3), np.float32)
    noise = rng.normal(0, 25, (h // 8 + 1, w // 8 + 1, 3)).astype(np.float32)
    noise = np.kron(noise, np.ones((8, 8, 1), np.float32))[:h, :w]
    arr = np.clip(base + noise + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)
    img = Image.fromarray(arr, "RGB")
    if mode != "RGB":
        img = img.convert(mode)
    exif = Image.Exif()
    if make is not None:
        exif[TAG_MAKE] = make
    if model is not None:
        exif[TAG_MODEL] = model
    if orientation is not None:
        exif[TAG_ORIENTATION] = orientation
    ifd = exif.get_ifd(TAG_EXIF_IFD)
    if when is not None:
        ifd[TAG_DATETIME_ORIGINAL] = when.strftime("%Y:%m:%d %H:%M:%S")
    if serial is not None:
        ifd[TAG_BODY_SERIAL] = serial
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, exif=exif)
    return buf.getvalue()


def write_card(
    root: Path,
    n: int,
    start: datetime,
    *,
    every: timedelta = timedelta(minutes=7),
    burst: int = 3,
    size: tuple[int, int] = (640, 480),
    folder: str = "DCIM/100RECNX",
    seed: int = 0,
) -> list[Path]:
    """A card folder of ``n`` photos in bursts, numbered like a camera does (IMG_0001.JPG ...)."""
    out = root / folder
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        when = start + every * (i // burst) + timedelta(seconds=i % burst)
        p = out / f"IMG_{i + 1:04d}.JPG"
        p.write_bytes(camera_jpeg(when, size=size, seed=seed * 1_000_003 + i))
        paths.append(p)
    return paths
