"""Reading what the camera wrote: time, make, model and serial, as cameras really write them.

Camera-trap EXIF is messy: Reconyx pads Make/Model with NUL bytes, some Serengeti cameras write
only NULs, Cuddeback writes the model into Make and the brand into Model, and many files have no
EXIF at all. Everything here is tolerant and never raises on bad metadata.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import datetime

import exifread

# Brands that camera traps write into Make (or, swapped, into Model).
KNOWN_MAKERS = (
    "reconyx",
    "cuddeback",
    "bushnell",
    "browning",
    "spypoint",
    "stealth cam",
    "moultrie",
    "bolymedia",
    "boly",
    "panthera",
    "uovision",
    "ltl acorn",
    "scoutguard",
    "hco",
    "keepguard",
    "wildgame",
    "primos",
    "covert",
    "tactacam",
    "muddy",
    "burrel",
    "zeiss",
    "wilcam",
    "ereagle",
    "apeman",
    "campark",
    "victure",
    "suntek",
    "canon",
    "nikon",
)

TIME_TAGS = ("EXIF DateTimeOriginal", "EXIF DateTimeDigitized", "Image DateTime")
SERIAL_TAGS = (
    "EXIF BodySerialNumber",
    "Image CameraSerialNumber",
    "EXIF SerialNumber",
    "MakerNote SerialNumber",
)
_DT_RE = re.compile(r"(\d{4})[:\-/.](\d{1,2})[:\-/.](\d{1,2})[ T]+(\d{1,2}):(\d{1,2}):(\d{1,2})")


@dataclass(frozen=True)
class CameraMetadata:
    """What the file says about its camera and time; ``camera_time`` is naive camera-local time."""

    make: str | None = None
    model: str | None = None
    serial: str | None = None
    datetime_raw: str | None = None
    camera_time: datetime | None = None
    orientation: int | None = None
    swapped_make_model: bool = False


def clean_text(value: object) -> str | None:
    """Strip NUL padding and blanks; a field made only of padding means 'not written'."""
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    text = text.replace("\x00", "").strip()
    return text or None


def parse_exif_datetime(raw: str | None) -> datetime | None:
    """Parse '2021:04:11 20:43:09' (and the variants cameras write); None if not a real date."""
    if not raw:
        return None
    m = _DT_RE.search(raw)
    if not m:
        return None
    try:
        return datetime(*(int(g) for g in m.groups()))
    except ValueError:
        return None


def _is_maker(text: str | None) -> bool:
    return bool(text) and any(text.lower().startswith(m) for m in KNOWN_MAKERS)  # type: ignore[union-attr]


def read_camera_metadata(data: bytes) -> CameraMetadata:
    """Read EXIF from JPEG bytes; returns empty metadata rather than failing on a broken header."""
    try:
        tags = exifread.process_file(io.BytesIO(data), details=False, extract_thumbnail=False)
    except Exception:  # exifread raises many kinds on corrupt headers; the import must go on
        return CameraMetadata()
    make = clean_text(tags.get("Image Make"))
    model = clean_text(tags.get("Image Model"))
    swapped = False
    if _is_maker(model) and not _is_maker(make):
        make, model, swapped = model, make, True
    serial = None
    for tag in SERIAL_TAGS:
        serial = clean_text(tags.get(tag))
        if serial:
            break
    raw = None
    camera_time = None
    for tag in TIME_TAGS:
        raw = clean_text(tags.get(tag))
        camera_time = parse_exif_datetime(raw)
        if camera_time:
            break
    orientation = None
    orient_tag = tags.get("Image Orientation")
    if orient_tag is not None:
        try:
            orientation = int(orient_tag.values[0])
        except (AttributeError, IndexError, TypeError, ValueError):
            orientation = None
    return CameraMetadata(
        make=make,
        model=model,
        serial=serial,
        datetime_raw=raw if camera_time else clean_text(tags.get("EXIF DateTimeOriginal")),
        camera_time=camera_time,
        orientation=orientation,
        swapped_make_model=swapped,
    )


def without_gps(jpeg: bytes) -> bytes:
    """The same JPEG with the GPS block of its EXIF removed and nothing else changed: the segments are
    rewritten, the picture is not re-encoded. For copies that leave the store (a published photo must
    not carry the exact place of an endangered animal); originals are never touched. Bytes that are
    not a JPEG with EXIF GPS come back as they were."""
    from PIL import Image

    if not jpeg.startswith(b"\xff\xd8"):
        return jpeg
    i = 2
    while i + 4 <= len(jpeg) and jpeg[i] == 0xFF:
        marker = jpeg[i + 1]
        if marker == 0xDA:  # start of scan: the metadata is behind us
            break
        length = int.from_bytes(jpeg[i + 2:i + 4], "big")
        segment = jpeg[i + 4:i + 2 + length]
        if marker == 0xE1 and segment.startswith(b"Exif\x00\x00"):
            exif = Image.Exif()
            exif.load(segment)
            if 0x8825 not in exif:
                return jpeg
            exif.get_ifd(0x8769)  # load the camera's own block so it is written back whole
            del exif[0x8825]
            new = exif.tobytes()
            if len(new) + 2 > 0xFFFF:
                return jpeg
            return jpeg[:i + 2] + (len(new) + 2).to_bytes(2, "big") + new + jpeg[i + 2 + length:]
        i += 2 + length
    return jpeg
