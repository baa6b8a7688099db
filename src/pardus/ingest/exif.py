"""Reading what the camera wrote: time, make, model and serial, as cameras really write them.

Camera-trap EXIF is messy: Reconyx pads Make/Model with NUL bytes, some Serengeti cameras write
only NULs, Cuddeback writes the model into Make and the brand into Model, and many files have no
EXIF at all. Everything here is tolerant and never raises on bad metadata.
"""

from __future__ import annotations

import io
import re
import struct
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


# The GPS block is found the way the most lenient reader finds it, not only where a tidy file keeps
# it: exifread walks a header whose segment markers are damaged, accepts "Exif" followed by any
# two bytes, and reads a TIFF block as little-endian when it starts with "I", big-endian otherwise,
# without checking the 42. So every "Exif" in the file is taken as such a block and scrubbed in
# place (a copy that leaks the den is worse than a copy that is odd).
_EXIF = b"Exif"
_GPS_IFD, _EXIF_IFD, _INTEROP_IFD = 0x8825, 0x8769, 0xA005
_TIFF_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8}
_MAX_IFDS = 16  # per block: IFD0, its thumbnail IFD, the camera's block, interop; more is a loop or a bomb
_MAX_ENTRIES = 200_000  # IFD entries looked at in one file (a camera's header has a few hundred)
# XMP packets (APP1) can carry the place too (exif:GPSLatitude="43,7.40N"), written by photo
# managers and tagging tools; each GPS property is blanked with spaces, which keeps the XML valid.
_XMP_HEADERS = (b"http://ns.adobe.com/xap/1.0/\x00", b"http://ns.adobe.com/xmp/extension/\x00")
_XMP_GPS = re.compile(rb"""<([\w.-]+:GPS[\w.-]*)\b[^>]*?/>|<([\w.-]+:GPS[\w.-]*)\b.*?</\2\s*>"""
                      rb"""|[\w.-]+:GPS[\w.-]*\s*=\s*(?:"[^"]*"|'[^']*')""", re.DOTALL)


class _TooMuch(Exception):
    """A header built to make the scrubbing slow: the copy loses its EXIF instead."""


class _Scrubber:
    """Takes the GPS out of every TIFF block of one file, in place, within a work budget."""

    def __init__(self, buf: bytearray) -> None:
        self.buf, self.budget = buf, _MAX_ENTRIES

    def block(self, tiff: int) -> bool:
        """Remove every GPS pointer from the TIFF block at ``tiff`` (IFD0, the IFDs chained after
        it, the camera's and the interop block) and zero the GPS block each pointed to. Nothing
        else moves, so a damaged block is cleaned as well as a tidy one. True when one was found."""
        buf = self.buf
        if tiff + 8 > len(buf):
            return False
        self.end = "<" if buf[tiff] == ord("I") else ">"
        first = self.u32(tiff + 4)
        todo, seen, removed = ([first] if first else []), set(), False
        while todo and len(seen) < _MAX_IFDS:
            ifd = tiff + todo.pop()
            n = self.u16(ifd)
            if ifd in seen or n is None:
                continue
            seen.add(ifd)
            fit = min(n, (len(buf) - ifd - 2) // 12)  # a cut file holds only some of the entries
            self.budget -= fit
            if self.budget < 0:
                raise _TooMuch
            cut = ifd + 2 + 12 * fit
            if fit < n and self.u16(cut) == _GPS_IFD:  # readers take what is left of a cut entry too
                buf[cut:cut + 12] = bytes(len(buf[cut:cut + 12]))
                removed = True
            gps = self.entries(ifd, fit, _GPS_IFD)
            if gps:
                n = self.drop_entries(tiff, ifd, n, fit, gps)
                removed = True
            for tag in (_EXIF_IFD, _INTEROP_IFD):
                todo += [v for e in self.entries(ifd, n, tag)[:_MAX_IFDS] if (v := self.u32(e + 8))]
            following = self.u32(ifd + 2 + 12 * n)
            if following:
                todo.append(following)
            del todo[_MAX_IFDS:]
        return removed

    def drop_entries(self, tiff: int, ifd: int, n: int, fit: int, gps: list[int]) -> int:
        """Take the GPS entries out of ``ifd`` in one pass (the others and the next-IFD pointer move
        up, the freed bytes are zeroed) after zeroing the blocks they point to; returns the new count.
        A real file has one; a header with thousands has its pointers dropped, only 16 blocks zeroed."""
        buf, first = self.buf, ifd + 2
        table = bytes(buf[first:min(first + 12 * n + 4, len(buf))])  # the entries and the next pointer
        for entry in gps[:_MAX_IFDS]:
            value = self.u32(entry + 8)
            if value is not None:
                self.zero_ifd(tiff, tiff + value)
        dropped = {(e - first) // 12 for e in gps}
        kept = b"".join(table[12 * i:12 * i + 12] for i in range(fit) if i not in dropped)
        rest = table[12 * fit:]  # entries cut off by the end of the file, and the next pointer
        new = kept + rest
        buf[first:first + len(table)] = new + bytes(len(table) - len(new))
        struct.pack_into(self.end + "H", buf, ifd, n - len(dropped))
        return n - len(dropped)

    def u16(self, at: int) -> int | None:
        return struct.unpack(self.end + "H", self.buf[at:at + 2])[0] if 0 <= at <= len(self.buf) - 2 else None

    def u32(self, at: int) -> int | None:
        return struct.unpack(self.end + "I", self.buf[at:at + 4])[0] if 0 <= at <= len(self.buf) - 4 else None

    def entries(self, ifd: int, n: int, tag: int) -> list[int]:
        """Offsets of the entries of ``ifd`` with ``tag``, found by ``bytes.find`` (fast on 65,535)."""
        first, stop, pattern = ifd + 2, ifd + 2 + 12 * n, struct.pack(self.end + "H", tag)
        found, k = [], self.buf.find(pattern, first, stop)
        while k >= 0:
            if (k - first) % 12 == 0:
                found.append(k)
            k = self.buf.find(pattern, k + 1, stop)
        return found

    def zero_ifd(self, tiff: int, ifd: int) -> None:
        """Zero a GPS IFD: its entries, the values they point to (the coordinates), its count and
        next pointer, as far as they lie inside the file."""
        buf, n = self.buf, self.u16(ifd)
        if n is None:
            return
        for i in range(min(n, 512)):  # GPS has 32 tags; more is hostile, and its pointer goes anyway
            entry = ifd + 2 + 12 * i
            kind, count, value = self.u16(entry + 2), self.u32(entry + 4), self.u32(entry + 8)
            size = min(_TIFF_SIZES.get(kind or 0, 1) * (count or 0), 4096)
            if size > 4 and value is not None:
                at = tiff + value
                buf[at:at + size] = bytes(len(buf[at:at + size]))
        stop = ifd + 2 + 12 * n + 4
        buf[ifd:stop] = bytes(len(buf[ifd:stop]))


def without_gps(jpeg: bytes) -> bytes:
    """The same JPEG without the place it was taken, for copies that leave the store (a published
    photo must not carry the exact place of an endangered animal); originals are never touched.

    The EXIF GPS block is removed in place (its pointer taken out, its entries and coordinates
    zeroed) in every EXIF block of the file, and GPS properties in XMP packets are blanked; every
    other byte stays where it was, so the picture, the camera's data and the file's structure are
    kept. A header built to make this slow loses its EXIF markers instead (no reader finds the
    block then). Bytes that are not a JPEG, and JPEGs with no place in them, come back as they
    were. Never raises: it serves photos to viewers and fills exports, where a damaged header must
    not stop the rest."""
    if not jpeg.startswith(b"\xff\xd8"):
        return jpeg
    buf = bytearray(jpeg)
    changed, scrub = False, _Scrubber(buf)
    try:
        at = buf.find(_EXIF)
        while at >= 0:
            changed |= scrub.block(at + 6)  # "Exif", two bytes readers do not check, the TIFF block
            at = buf.find(_EXIF, at + 1)
    except _TooMuch:
        buf[:] = jpeg.replace(_EXIF, b"Exi\x00")
        changed = True
    for header in _XMP_HEADERS:
        at = buf.find(header)
        while at >= 0:
            region = slice(at, min(len(buf), at + 0xFFFF))
            packet = bytes(buf[region])
            blanked = _XMP_GPS.sub(lambda m: b" " * len(m.group(0)), packet)
            if blanked != packet:
                buf[region] = blanked
                changed = True
            at = buf.find(header, at + 1)
    return bytes(buf) if changed else jpeg
