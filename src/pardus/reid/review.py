"""The review sheet: the query beside each top candidate, matched coat spots joined by lines.

A person decides from this picture, so it shows what the machine used: each row is the query's
animal (left) and the candidate's best-matching catalogue photo (right), both cut to the animal,
with the spatially verified keypoint pairs drawn and numbered by strength, and a header saying
who the candidate is, on which flank, and how sure the machine is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from sqlalchemy import select

from pardus.reid.catalogue import Catalogue, ParkTaxa, observation_box
from pardus.reid.features import ChipFeatures, decode_image
from pardus.reid.match import MatchResult
from pardus.reid.photos import photo_features
from pardus.store.models import Individual, Media, Observation

ROW_HEIGHT = 360
HEADER = 34
PALETTE = [(0, 220, 255), (80, 255, 80), (255, 160, 40), (255, 80, 200), (80, 160, 255), (200, 255, 120)]


@dataclass
class SheetPhoto:
    """One photo on the sheet: its pixels, the features drawn on it, and a caption."""

    image: np.ndarray  # BGR, the whole frame
    feats: ChipFeatures
    caption: str


def chip_image(image: np.ndarray, feats: ChipFeatures) -> np.ndarray:
    """The chip the features were computed on, rebuilt from the frame (keypoints are in its pixels)."""
    ch, cw = feats.chip_shape
    x0, y0 = int(round(feats.offset[0])), int(round(feats.offset[1]))
    x1 = min(image.shape[1], int(round(x0 + cw * feats.scale)))
    y1 = min(image.shape[0], int(round(y0 + ch * feats.scale)))
    crop = image[y0:y1, x0:x1]
    if crop.ndim == 2:
        crop = cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)
    return cv2.resize(crop, (cw, ch), interpolation=cv2.INTER_AREA)


def _fit(img: np.ndarray, height: int) -> tuple[np.ndarray, float]:
    f = height / img.shape[0]
    return cv2.resize(img, (max(1, round(img.shape[1] * f)), height), interpolation=cv2.INTER_AREA), f


def _text(img: np.ndarray, text: str, x: int, y: int, scale: float = 0.6, colour: tuple[int, int, int] = (255,) * 3
          ) -> None:
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 4, cv2.LINE_AA)
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)


def render_sheet(query: SheetPhoto, result: MatchResult, candidates: list[tuple[str, SheetPhoto | None]],
                 out: Path, *, max_lines: int = 60) -> Path:
    """Write the review sheet to ``out`` (JPEG or PNG by suffix); one row per candidate.

    ``candidates`` pairs each of ``result``'s candidates (same order) with a title and the catalogue
    photo that matched best (None when it cannot be shown, e.g. its original is missing).
    """
    qchip, qf = _fit(chip_image(query.image, query.feats), ROW_HEIGHT)
    rows = []
    if not candidates:
        row = np.zeros((ROW_HEIGHT + HEADER, qchip.shape[1] * 2 + 10, 3), np.uint8)
        row[HEADER:, : qchip.shape[1]] = qchip
        _text(row, "No catalogue photo matches this animal.", 8, 24, 0.65, (0, 200, 255))
        rows.append(row)
    for rank, ((title, photo), cand) in enumerate(zip(candidates, result.candidates, strict=False), start=1):
        if photo is None:
            dchip = np.zeros_like(qchip)
            df = 1.0
        else:
            dchip, df = _fit(chip_image(photo.image, photo.feats), ROW_HEIGHT)
        gap = 10
        row = np.zeros((ROW_HEIGHT + HEADER, qchip.shape[1] + gap + dchip.shape[1], 3), np.uint8)
        row[HEADER:, : qchip.shape[1]] = qchip
        row[HEADER:, qchip.shape[1] + gap:] = dchip
        pm = cand.photos[0] if cand.photos else None
        n_pairs = 0 if pm is None else len(pm.query_idx)
        if pm is not None and photo is not None:
            order = np.argsort(-pm.votes)[:max_lines]
            for k, j in enumerate(order):
                colour = PALETTE[k % len(PALETTE)]
                qx, qy = query.feats.kpts[pm.query_idx[j], :2] * qf
                dx, dy = photo.feats.kpts[pm.db_idx[j], :2] * df
                p1 = (int(qx), int(qy) + HEADER)
                p2 = (int(dx) + qchip.shape[1] + gap, int(dy) + HEADER)
                r1 = max(3, int(3 * math.sqrt(abs(query.feats.kpts[pm.query_idx[j], 2] * query.feats.kpts[
                    pm.query_idx[j], 4])) * qf))
                cv2.circle(row, p1, r1, colour, 1, cv2.LINE_AA)
                cv2.circle(row, p2, r1, colour, 1, cv2.LINE_AA)
                cv2.line(row, p1, p2, colour, 1, cv2.LINE_AA)
        head = (f"#{rank} {title}  flank {cand.flank}  score {cand.score:.1f}  "
                f"sure {100 * cand.probability:.0f}%  {n_pairs} matching spots")
        _text(row, head, 8, 23, 0.6, (80, 255, 80) if rank == 1 and not result.is_new else (255, 255, 255))
        _text(row, query.caption, 6, ROW_HEIGHT + HEADER - 8, 0.45)
        if photo is not None:
            _text(row, photo.caption, qchip.shape[1] + gap + 6, ROW_HEIGHT + HEADER - 8, 0.45)
        rows.append(row)
    width = max(r.shape[1] for r in rows)
    verdict = (f"Probably a NEW individual (chance it is new: {100 * result.new_probability:.0f}%)"
               if result.is_new else f"Probably {candidates[0][0]}" if candidates else "")
    top = np.zeros((40, width, 3), np.uint8)
    _text(top, verdict, 8, 28, 0.75, (0, 200, 255) if result.is_new else (80, 255, 80))
    sheet = np.vstack([top] + [np.pad(r, ((0, 6), (0, width - r.shape[1]), (0, 0))) for r in rows])
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), sheet):
        raise OSError(f"could not write the review sheet to {out}")
    return out


def review_proposal(cat: Catalogue, proposal_id: str, out: Path, *, top: int = 3) -> tuple[Path, MatchResult]:
    """Match a proposal's animal again (features are cached) and draw its review sheet."""
    from pardus.reid.stage import load_calibration, match_in_scope, proposal_scope

    ws = cat.ws
    with ws.db.session() as s:
        prop = cat.proposal(s, proposal_id)
        media = s.get(Media, prop.media_id)
        assert media is not None
        box = observation_box(prop)
        image = decode_image(ws.blobs.get_bytes(media.sha256 or ""))
        feats = photo_features(ws, s, media, box, cat.params, image=image, references=cat.references)
        # the same catalogue the stage compared it with (its species, in the park's names)
        scope = proposal_scope(ParkTaxa.load(s), (prop.extra or {}).get("reid", {}))
        res = match_in_scope(feats, cat.index, scope, calibration=load_calibration(ws))
        stored = (prop.extra or {}).get("reid", {})
        if stored.get("new_withheld") or stored.get("new_in_encounter"):
            res.is_new = False  # not a cat for sure, too little coat, or its encounter's "new" is elsewhere
        res.candidates = res.candidates[:top]
        names = {i.id: i for i in s.scalars(select(Individual).where(
            Individual.id.in_([c.individual for c in res.candidates])))}
        shown: list[tuple[str, SheetPhoto | None]] = []
        for c in res.candidates:
            ind = names.get(c.individual)
            title = f"{ind.code} {ind.name or ''}".strip() if ind else c.individual
            photo = None
            if c.photos:
                ann = cat.index.annotation(c.photos[0].annotation_id)
                obs = s.get(Observation, ann.observation_id) if ann.observation_id else None
                cmedia = s.get(Media, obs.media_id) if obs is not None and obs.media_id else None
                if cmedia is not None and cmedia.sha256 and ws.blobs.exists(cmedia.sha256):
                    cimg = decode_image(ws.blobs.get_bytes(cmedia.sha256))
                    photo = SheetPhoto(cimg, cat.index.features(ann.id), _caption(cmedia))
            shown.append((title, photo))
        query = SheetPhoto(image, feats, "this photo: " + _caption(media))
    return render_sheet(query, res, shown, out), res


def _caption(media: Media) -> str:
    when = media.timestamp.strftime("%Y-%m-%d %H:%M") if media.timestamp else "time unknown"
    return f"{media.deployment_id}  {when}  {media.file_name or ''}"
