"""Features of stored photos: decoded from the blob store, scenery suppressed, cached as derived files.

Both the pipeline stage (queries) and the catalogue (confirmed photos) need the features of one
animal in one stored photo; they are made here the same way, so a photo confirmed after the stage
proposed it reuses the stage's features instead of extracting them again.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from pardus.reid.background import suppress_scenery
from pardus.reid.features import ChipFeatures, FeatureParams, decode_image, extract
from pardus.store import Workspace
from pardus.store.models import Media, Observation

Box = tuple[float, float, float, float]
# Photos of the same camera (other sequences) that the scenery test compares each photo with.
BACKGROUND_REFERENCES = 2


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
    """Other photos of the same camera from other sequences, blanks first (they show only scenery)."""
    q = select(Media).where(Media.deployment_id == media.deployment_id, Media.id != media.id,
                            Media.available.is_(True), Media.file_mediatype.like("image/%"),
                            Media.width == media.width, Media.height == media.height)
    if media.sequence_id:
        q = q.where((Media.sequence_id != media.sequence_id) | Media.sequence_id.is_(None))
    blank_ids = select(Observation.media_id).where(Observation.observation_type == "blank")
    blanks = list(s.scalars(q.where(Media.id.in_(blank_ids)).order_by(Media.timestamp).limit(n)))
    if len(blanks) >= n:
        return blanks
    others = list(s.scalars(q.where(Media.id.not_in([m.id for m in blanks])).order_by(Media.timestamp).limit(n * 4)))
    # spread over the season rather than the first few photos (one passing deer is not scenery)
    pick = [others[i] for i in np.linspace(0, len(others) - 1, min(n - len(blanks), len(others))).astype(int)] \
        if others else []
    return blanks + pick


def photo_features(ws: Workspace, s: Session, media: Media, box: Box | None, params: FeatureParams, *,
                   image: np.ndarray | None = None, references: int = BACKGROUND_REFERENCES) -> ChipFeatures:
    """Features of one animal in one stored photo, its scenery down-weighted (cached).

    ``references``: how many other photos of the camera the scenery test looks at (each costs
    one more extraction, cached, so a station's blanks are read once per box position).
    """
    key = _cache_key(params, media.sha256 or media.id, box, f"weighted{references}")
    feats = _cached(ws, key)
    if feats is not None:
        return feats
    feats = raw_features(ws, media, box, params, image=image)
    refs = []
    for ref in reference_media(s, media, references):
        try:
            # the same region of the frame: the camera has not moved, so the scenery is at the same pixels
            refs.append(raw_features(ws, ref, box, params))
        except (FileNotFoundError, ValueError):
            continue
    suppress_scenery(feats, refs)
    _store(ws, key, feats)
    return feats
