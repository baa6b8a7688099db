"""Opening a file to learn what it is: size, orientation, a thumbnail, and whether it is broken.

The decode here is the one proof that a photo is whole, so it is never skipped; it runs in
JPEG draft mode (DCT scaling), which still reads every byte of the file but builds only a small
picture, so checking costs less than a full decode.
"""

from __future__ import annotations

import io
import os
import struct
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = {".jpg", ".jpeg"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".asf", ".wmv", ".m4v"}
MEDIA_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".avi": "video/x-msvideo",
    ".mov": "video/quicktime",
    ".asf": "video/x-ms-asf",
    ".wmv": "video/x-ms-asf",
}
SWAPPING_ORIENTATIONS = {5, 6, 7, 8}


class NotMediaError(ValueError):
    """The file is not a photo or video Pardus can read; the message says what it looks like."""


@dataclass
class Probe:
    width: int | None
    height: int | None
    thumbnail: bytes | None
    issue: str | None = None
    duration_s: float | None = None
    video_time: datetime | None = None
    mode: str | None = None


def describe_bytes(data: bytes) -> str:
    """A short, human description of what a non-media file starts with."""
    head = data[:16]
    if head.startswith(b"\x89PNG"):
        return "a PNG image"
    if head.lstrip().lower().startswith((b"<!doctype", b"<html")):
        return "an HTML page"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive"
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return f"text ({data[:24].decode('ascii', 'replace')!r}...)"
    return f"unknown binary data starting {head[:4].hex()}"


def _thumbnail(img: Image.Image, size: int, orientation: int | None = None) -> bytes:
    if orientation not in (None, 1):
        # Only rotate when the camera said so: exif_transpose always copies the picture.
        img = ImageOps.exif_transpose(img)
    if img.mode not in ("RGB", "L"):
        img = img.convert("RGB")
    img.thumbnail((size, size))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=80)
    return buf.getvalue()


# No camera trap writes more than about 40 megapixels; a header declaring more than this is damaged
# or an image bomb, and decoding it could take gigabytes. Refused before any pixel is decoded.
MAX_PHOTO_PIXELS = 100_000_000


def probe_image(data: bytes, thumb_size: int = 320) -> Probe:
    """Decode a JPEG once (draft mode) for its size and thumbnail; report truncation, keep going."""
    if not data.startswith(b"\xff\xd8"):
        raise NotMediaError(f"not a JPEG photo: the file holds {describe_bytes(data)}")
    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:  # its text names a Python object, not the file: not for people
        raise NotMediaError("not a readable JPEG: it starts like one, but its header is damaged") from exc
    except Image.DecompressionBombError as exc:  # Pillow's own limit, twice its warning size
        raise NotMediaError(f"the photo's header declares far more than {MAX_PHOTO_PIXELS // 1_000_000} megapixels "
                            "(no camera trap writes that many); damaged or hostile, not decoded") from exc
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:  # Pillow's words for a cut header
        raise NotMediaError(f"not a readable JPEG: its header is cut short or damaged ({exc})") from exc
    width, height = img.size
    if width * height > MAX_PHOTO_PIXELS:
        raise NotMediaError(f"the photo's header declares {width} x {height} pixels "
                            f"({width * height / 1e6:.0f} megapixels, more than any camera trap's "
                            f"{MAX_PHOTO_PIXELS // 1_000_000}); damaged or hostile, not decoded")
    try:
        exif_orientation = img.getexif().get(0x0112)
    except Exception:  # noqa: BLE001 - Pillow raises many kinds on a damaged EXIF block; the picture is still whole
        exif_orientation = None
    if exif_orientation in SWAPPING_ORIENTATIONS:
        width, height = height, width
    mode = img.mode
    draft_mode = "RGB" if mode in ("RGB", "YCbCr") else mode
    # Ask the decoder for the smallest DCT scale whose longest side still covers the thumbnail.
    scale = thumb_size / max(img.size)
    draft_size = (max(1, int(img.size[0] * scale)), max(1, int(img.size[1] * scale)))
    img.draft(draft_mode, draft_size)
    issue = None
    try:
        img.load()
    except (OSError, SyntaxError) as exc:
        issue = f"damaged JPEG ({exc}); the readable part was kept, the original bytes are stored unchanged"
        img = Image.open(io.BytesIO(data))
        img.draft(draft_mode, draft_size)
        ImageFile.LOAD_TRUNCATED_IMAGES = True
        try:
            img.load()
        except (OSError, SyntaxError):
            return Probe(width, height, None, issue=issue, mode=mode)
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = False
    return Probe(width, height, _thumbnail(img, thumb_size, exif_orientation), issue=issue, mode=mode)


def probe_video(path_or_bytes: Path | bytes, thumb_size: int = 320) -> Probe:
    """Open a video with PyAV for its size, length and first frame as thumbnail."""
    import av

    tmp: str | None = None
    if isinstance(path_or_bytes, bytes):
        fd, tmp = tempfile.mkstemp(suffix=".video")
        with os.fdopen(fd, "wb") as f:
            f.write(path_or_bytes)
        source = tmp
    else:
        source = str(path_or_bytes)
    try:
        try:
            container = av.open(source)
        except av.error.FFmpegError as exc:
            raise NotMediaError(f"not a readable video ({exc})") from exc
        with container:
            if not container.streams.video:
                raise NotMediaError("the file has no video stream")
            stream = container.streams.video[0]
            duration = None
            if container.duration:
                duration = container.duration / 1_000_000
            elif stream.duration and stream.time_base:
                duration = float(stream.duration * stream.time_base)
            created = container.metadata.get("creation_time") or stream.metadata.get("creation_time")
            video_time = _parse_video_time(created)
            thumb = None
            issue = None
            try:
                frame = next(container.decode(stream))
                thumb = _thumbnail(frame.to_image(), thumb_size)
                width, height = frame.width, frame.height
            except (StopIteration, av.error.FFmpegError) as exc:
                issue = f"damaged video: no frame could be decoded ({exc})"
                width, height = stream.codec_context.width or None, stream.codec_context.height or None
            return Probe(width, height, thumb, issue=issue, duration_s=duration, video_time=video_time)
    finally:
        if tmp:
            os.unlink(tmp)


def _parse_video_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    # Camera traps write their local clock into creation_time, labelled UTC or not: keep it naive.
    return dt.replace(tzinfo=None)
