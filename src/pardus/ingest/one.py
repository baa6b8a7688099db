"""One file in: the single path a memory card's file and a live camera's upload both take.

``media_row`` turns what was learned about a file (hash, EXIF, probe) into its ``Media`` row; the
card import builds its rows with it in batches, and ``ingest_file`` uses it for one upload at a
time: hash -> durable blob -> row committed, idempotent by sha256 and by (camera, camera sequence
number). A resend after a lost reply finds the stored row and creates nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import PurePosixPath

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pardus.ingest.deployments import open_live_deployment
from pardus.ingest.exif import CameraMetadata, read_camera_metadata
from pardus.ingest.probe import (
    IMAGE_SUFFIXES,
    MEDIA_TYPES,
    NotMediaError,
    Probe,
    describe_bytes,
    probe_image,
    probe_video,
)
from pardus.ingest.timefix import to_utc
from pardus.store import Workspace
from pardus.store.blobs import sha256_bytes
from pardus.store.models import Deployment, Media, new_id, utcnow

# The store's column sizes for what a file says about itself (media.exif_make ... file_name). EXIF text
# is written by the camera, or by whoever made the file: a longer value is clipped, never a failed row.
MAX_EXIF_TEXT = 128
MAX_EXIF_TIME = 64
MAX_FILE_NAME = 255
MAX_FILE_PATH = 1024


def _clip(text: str | None, limit: int) -> str | None:
    return text if text is None or len(text) <= limit else text[: limit - 1] + "…"


class IngestError(ValueError):
    """The file cannot be stored as a photo or video; ``status`` is the HTTP code an API answers."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def media_row(
    *,
    deployment_id: str,
    rel_path: str,
    sha: str,
    size: int,
    meta: CameraMetadata,
    probe: Probe,
    utc_offset_minutes: int,
    clock_offset_s: float,
    fallback_time: datetime | None,
    fallback_source: str = "file-time",
    thumbnail_key: str | None = None,
) -> Media:
    """The Media row of one stored file; the camera's own time wins over any fallback."""
    camera_time = meta.camera_time or probe.video_time
    source = "exif" if meta.camera_time else ("video-metadata" if probe.video_time else fallback_source)
    if camera_time is None:
        camera_time = fallback_time
    suffix = PurePosixPath(rel_path).suffix.lower()
    return Media(
        id=new_id(),
        deployment_id=deployment_id,
        sha256=sha,
        file_path=rel_path,
        file_name=PurePosixPath(rel_path).name,
        file_mediatype=MEDIA_TYPES.get(suffix, "application/octet-stream"),
        file_size=size,
        width=probe.width,
        height=probe.height,
        duration_s=probe.duration_s,
        orientation=meta.orientation,
        exif_make=_clip(meta.make, MAX_EXIF_TEXT),
        exif_model=_clip(meta.model, MAX_EXIF_TEXT),
        exif_serial=_clip(meta.serial, MAX_EXIF_TEXT),
        exif_datetime_raw=_clip(meta.datetime_raw, MAX_EXIF_TIME),
        camera_time=camera_time,
        timestamp_source=source if camera_time else "none",
        timestamp=to_utc(camera_time, utc_offset_minutes, clock_offset_s) if camera_time else None,
        thumbnail_key=thumbnail_key,
        file_issues=probe.issue,
    )


def sniff_kind(data: bytes, filename: str | None, content_type: str | None) -> tuple[str, str]:
    """('image'|'video', suffix) from the bytes themselves; the name and type only break ties.

    Trusting a client's Content-Type would let a PNG or an HTML page in as a "JPEG"; the first
    bytes cannot lie that way.
    """
    suffix = PurePosixPath(filename or "").suffix.lower()
    if data.startswith(b"\xff\xd8\xff"):
        return "image", suffix if suffix in IMAGE_SUFFIXES else ".jpg"
    head = data[:16]
    if head[4:8] == b"ftyp":
        return "video", suffix if suffix in {".mp4", ".m4v", ".mov"} else ".mp4"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "video", ".avi"
    if head.startswith(bytes.fromhex("3026b2758e66cf11")):
        return "video", suffix if suffix in {".asf", ".wmv"} else ".asf"
    what = content_type or "unknown type"
    raise IngestError(
        415,
        f"not a photo or video: the file holds {describe_bytes(data)} ({what}); send a JPEG or an MP4/AVI video",
    )


@dataclass
class Ingested:
    """The stored file's row id; ``created`` False means it was there already (a resend)."""

    media_id: str
    sha256: str
    created: bool
    deployment_id: str
    note: str | None = None


def _existing(s: Session, sha: str, camera_id: str, camera_seq: int | None) -> tuple[Media | None, str | None]:
    by_sha = s.scalars(select(Media).where(Media.sha256 == sha)).first()
    if by_sha is not None:
        return by_sha, None
    if camera_seq is None:
        return None, None
    by_seq = s.scalars(
        select(Media)
        .join(Deployment, Deployment.id == Media.deployment_id)
        .where(Deployment.camera_id == camera_id, Media.camera_seq == camera_seq)
    ).first()
    if by_seq is not None:
        return None, f"sequence number {camera_seq} was already used by another file (camera restarted?)"
    return None, None


def ingest_file(
    ws: Workspace,
    data: bytes,
    *,
    camera_id: str,
    filename: str | None = None,
    content_type: str | None = None,
    camera_seq: int | None = None,
    source: str = "upload",
    on_created: Callable[[Session, Media], None] | None = None,
) -> Ingested:
    """Store one file from a live camera durably; returns only after blob and row are on disk.

    The blob is written (fsynced) before the row commits, so a crash leaves at worst a blob
    without a row, which the resend completes. ``on_created(session, media)`` runs inside the
    row's transaction (the processing queue adds its entry there, so an upload is never stored
    without being queued).
    """
    if not data:
        raise IngestError(400, "empty file (0 bytes): nothing was uploaded")
    kind, suffix = sniff_kind(data, filename, content_type)
    sha = sha256_bytes(data)
    with ws.db.session() as s:
        found, note = _existing(s, sha, camera_id, camera_seq)
        if found is not None:
            return Ingested(found.id, sha, False, found.deployment_id)
    try:
        if kind == "image":
            meta = read_camera_metadata(data)
            probe = probe_image(data, ws.settings.thumbnail_size)
        else:
            meta = CameraMetadata()
            probe = probe_video(data, ws.settings.thumbnail_size)
    except NotMediaError as exc:
        raise IngestError(415, f"{exc}; nothing was stored") from exc
    ws.blobs.put_bytes(data, sha)
    thumb = ws.derived.put_bytes(probe.thumbnail, f"{sha}.thumb.jpg") if probe.thumbnail else None
    now = utcnow()
    name = PurePosixPath(filename or "").name or f"{sha[:12]}{suffix}"
    if PurePosixPath(name).suffix.lower() != suffix:
        name = f"{PurePosixPath(name).stem}{suffix}"
    if len(name) > MAX_FILE_NAME:  # a camera's name is a label; the bytes and their hash are the photo
        name = f"{PurePosixPath(name).stem[: MAX_FILE_NAME - len(suffix)]}{suffix}"
    # Opened (if need be) and committed on its own, race-safe: a camera's first photos arriving
    # together all land in the one deployment instead of failing on its primary key.
    dep_id = open_live_deployment(ws.db, camera_id, now)
    try:
        with ws.db.session() as s:
            dep = s.get(Deployment, dep_id)
            assert dep is not None, "deployments are never deleted"
            media = media_row(
                deployment_id=dep.id,
                rel_path=f"{source}/{now:%Y/%m/%d}/{name}",
                sha=sha,
                size=len(data),
                meta=meta,
                probe=probe,
                utc_offset_minutes=dep.utc_offset_minutes,
                clock_offset_s=dep.clock_offset_s,
                # No time of its own: the arrival, as the camera's clock would have written it.
                fallback_time=now.replace(tzinfo=None)
                + timedelta(minutes=dep.utc_offset_minutes, seconds=-dep.clock_offset_s),
                fallback_source="received",
                thumbnail_key=thumb,
            )
            media.camera_seq = camera_seq if note is None else None
            media.extra = {"source": source, "received": now.isoformat(), "camera_id": camera_id}
            if note is not None:
                media.extra["camera_seq_reused"] = camera_seq
                media.file_issues = "; ".join(filter(None, [media.file_issues, note]))
            s.add(media)
            s.flush()
            if on_created is not None:
                on_created(s, media)
            result = Ingested(media.id, sha, True, dep.id, note)
    except IntegrityError:
        # The same bytes arrived twice at once (a camera retrying quickly): the other one won.
        with ws.db.session() as s:
            found = s.scalars(select(Media).where(Media.sha256 == sha)).first()
        if found is None:
            raise  # not the photo's own uniqueness: a real error, logged by the caller
        return Ingested(found.id, sha, False, found.deployment_id)
    return result

