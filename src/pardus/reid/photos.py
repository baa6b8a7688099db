"""Features of stored photos: decoded from the blob store, scenery suppressed, cached as derived files.

Both the pipeline stage (queries) and the catalogue (confirmed photos) need the features of one
animal in one stored photo; they are made here the same way, so a photo confirmed after the stage
proposed it reuses the stage's features instead of extracting them again.

The camera's scenery is learnt from up to ``BACKGROUND_REFERENCES`` of its other photos (other
sequences; blanks first, then other species and other individuals, never a photo confirmed as
this photo's own animal), compared block by block with the chip's region
(:func:`pardus.reid.foreground.suppress_camera_scenery`). Each reference is decoded once and kept
small as a derived file, so looking at a dozen costs little more than looking at two; the old test
re-extracted features of two references per box and fired on under 5% of features (issue 18).
"""

from __future__ import annotations

import hashlib
import io

import cv2
import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from pardus.reid.features import ChipFeatures, FeatureParams, decode_image, extract
from pardus.reid.foreground import scenery_grey, suppress_camera_scenery
from pardus.store import Workspace
from pardus.store.models import Media, Observation

Box = tuple[float, float, float, float]
# Photos of the same camera (other sequences) that the scenery test compares each photo with.
BACKGROUND_REFERENCES = 12
SCENERY_VERSION = "ncc1"


def _cache_key(params: FeatureParams, sha256: str, box: Box | None, tag: str) -> str:
    text = f"reid|{tag}|{params.key}|{sha256}|{None if box is None else tuple(round(v, 5) for v in box)}"
    return hashlib.sha256(text.encode()).hexdigest()


def _cached(ws: Workspace, key: str) -> ChipFeatures | None:
    if not ws.derived.exists(key):
        return None
    try:
        with np.load(io.BytesIO(ws.derived.get_bytes(key))) as z:
            return ChipFeatures.from_arrays(dict(z))
    except (OSError, ValueError, KeyError):
        return None  # a damaged derived file is made again


def _store(ws: Workspace, key: str, feats: ChipFeatures) -> None:
    buf = io.BytesIO()
    np.savez(buf, **feats.to_arrays())
    ws.derived.put_bytes(buf.getvalue(), key)


def raw_features(ws: Workspace, media: Media, box: Box | None, params: FeatureParams, *,
                 image: np.ndarray | None = None) -> ChipFeatures:
    """The features of ``box`` in a stored photo, before the scenery test (cached)."""
    if not media.sha256 or not ws.blobs.exists(media.sha256):
        raise FileNotFoundError(f"the original of photo {media.file_path} is missing from the blob store")
    key = _cache_key(params, media.sha256, box, "raw")
    feats = _cached(ws, key)
    if feats is None:
        if image is None:
            image = decode_image(ws.blobs.get_bytes(media.sha256))
        feats = extract(image, box, params)
        _store(ws, key, feats)
    return feats


def reference_media(s: Session, media: Media, n: int = BACKGROUND_REFERENCES) -> list[Media]:
    """Other photos of the same camera from other sequences that do not show this photo's animal.

    Blanks first (they show only scenery), then the rest spread over the season (one passing deer
    is not scenery, a season of photos is). A photo confirmed as one of the individuals confirmed
    on ``media`` is left out: its coat would teach the test that the coat is scenery.
    """
    q = select(Media).where(Media.deployment_id == media.deployment_id, Media.id != media.id,
                            Media.available.is_(True), Media.file_mediatype.like("image/%"),
                            Media.width == media.width, Media.height == media.height)
    if media.sequence_id:
        q = q.where((Media.sequence_id != media.sequence_id) | Media.sequence_id.is_(None))
    own = select(Observation.individual_id).where(Observation.media_id == media.id,
                                                  Observation.individual_id.is_not(None))
    same_animal = select(Observation.media_id).where(Observation.individual_id.in_(own))
    q = q.where(Media.id.not_in(same_animal))
    blank_ids = select(Observation.media_id).where(Observation.observation_type == "blank")
    blanks = list(s.scalars(q.where(Media.id.in_(blank_ids)).order_by(Media.timestamp).limit(n)))
    if len(blanks) >= n:
        return blanks
    others = list(s.scalars(q.where(Media.id.not_in([m.id for m in blanks])).order_by(Media.timestamp)
                            .limit(n * 8)))
    pick = [others[i] for i in np.unique(np.linspace(0, len(others) - 1, min(n - len(blanks), len(others)))
                                         .astype(int))] if others else []
    return blanks + pick


def reference_grey(ws: Workspace, media: Media) -> np.ndarray | None:
    """A reference photo as the scenery test reads it (small grey frame), decoded once and cached."""
    if not media.sha256 or not ws.blobs.exists(media.sha256):
        return None
    key = hashlib.sha256(f"reid|scenery-grey|{media.sha256}".encode()).hexdigest()
    if ws.derived.exists(key):
        grey = cv2.imdecode(np.frombuffer(ws.derived.get_bytes(key), np.uint8), cv2.IMREAD_GRAYSCALE)
        if grey is not None:
            return grey
    try:
        grey = scenery_grey(decode_image(ws.blobs.get_bytes(media.sha256)))
    except ValueError:
        return None
    ok, png = cv2.imencode(".png", grey)
    if ok:
        ws.derived.put_bytes(png.tobytes(), key)
    return grey


def photo_features(ws: Workspace, s: Session, media: Media, box: Box | None, params: FeatureParams, *,
                   image: np.ndarray | None = None, references: int = BACKGROUND_REFERENCES) -> ChipFeatures:
    """Features of one animal in one stored photo, on-animal weighted, the camera's scenery removed (cached).

    ``references``: how many other photos of the camera the scenery test looks at (each is
    decoded once per photo, ever, and kept as a small grey derived file).
    """
    key = _cache_key(params, media.sha256 or media.id, box, f"weighted-{SCENERY_VERSION}-{references}")
    feats = _cached(ws, key)
    if feats is not None:
        return feats
    feats = raw_features(ws, media, box, params, image=image)
    feats.camera = media.deployment_id
    refs = [g for g in (reference_grey(ws, ref) for ref in reference_media(s, media, references)) if g is not None]
    if refs and len(feats):
        if image is None:
            image = decode_image(ws.blobs.get_bytes(media.sha256 or ""))
        suppress_camera_scenery(feats, scenery_grey(image), refs)
    _store(ws, key, feats)
    return feats
