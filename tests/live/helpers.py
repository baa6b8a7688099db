"""Small real inputs shared by the live tests: camera JPEGs made on the spot, an app over a workspace."""

from __future__ import annotations

from datetime import datetime

from pardus.ingest.synthetic import camera_jpeg


def jpeg(seed: int = 0, when: datetime | None = datetime(2024, 7, 14, 23, 5, 0),
         size: tuple[int, int] = (640, 480)) -> bytes:
    return camera_jpeg(when, seed=seed, size=size, serial=None)


def unique(data: bytes, tag: str) -> bytes:
    """The same picture with a JPEG comment (COM segment) after SOI: other bytes, same photo."""
    text = tag.encode()
    return data[:2] + b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text + data[2:]
