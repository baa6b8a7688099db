"""The review sheet: the query beside each top candidate, matched coat spots joined by lines.

A person decides from this picture, so it shows what the machine used: each row is the query's
animal (left) and the candidate's best-matching catalogue photo (right), both cut to the animal,
with the spatially verified keypoint pairs drawn and numbered by strength, and a header saying
who the candidate is, on which flank, and how sure the machine is. A candidate with coat votes
but no photo that lined up ("unverified") is shown beside one of its catalogue photos without
lines and says so: it is someone to compare with, not a match.

The sheet has one fixed width (:data:`SHEET_WIDTH`, readable on a laptop and in a browser at
full width) whatever the photos' sizes, and all its words sit in bands of their own, wrapped to
their column, never over a photo or over each other. :func:`layout_sheet` computes where every
block goes; :func:`draw_sheet` draws exactly that layout, so a test can check the geometry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import select

from pardus.reid.catalogue import Catalogue, ParkTaxa, observation_box
from pardus.reid.features import ChipFeatures, decode_image
from pardus.reid.index import Annotation
from pardus.reid.match import Candidate, MatchResult
from pardus.reid.photos import photo_features
from pardus.store.models import Individual, Media, Observation

SHEET_WIDTH = 1600
MARGIN = 16  # around the sheet and between the two photos of a row
PANEL_HEIGHT = 500  # each photo is fitted inside PANEL_WIDTH x PANEL_HEIGHT, aspect kept
PANEL_WIDTH = (SHEET_WIDTH - 3 * MARGIN) // 2
ROW_GAP = 14  # between rows, with a rule across
VERDICT_SIZE, HEADER_SIZE, CAPTION_SIZE = 34, 25, 21  # font pixel sizes
LINE_SPACING = 1.3
BACKGROUND = (28, 28, 28)  # BGR
PALETTE = [(0, 220, 255), (80, 255, 80), (255, 160, 40), (255, 80, 200), (80, 160, 255), (200, 255, 120)]
# text colours (RGB, as Pillow draws them)
GREEN, AMBER, WHITE, GREY = (110, 255, 110), (255, 196, 40), (245, 245, 245), (200, 200, 200)


@dataclass
class SheetPhoto:
    """One photo on the sheet: its pixels, the features drawn on it, and a caption."""

    image: np.ndarray  # BGR, the whole frame
    feats: ChipFeatures
    caption: str


@dataclass
class SheetCandidate:
    """One row's candidate: its title (code and name), the verified match whose pairs are drawn
    (None for an unverified candidate) and the catalogue photo shown (None when it cannot be)."""

    title: str
    match: Candidate | None
    photo: SheetPhoto | None
    # why a candidate without lines on this photo is shown (None: the usual UNVERIFIED words)
    note: str | None = None

    @property
    def verified(self) -> bool:
        return self.match is not None


@dataclass(frozen=True)
class Rect:
    """A box on the sheet in pixels (x, y: top-left corner)."""

    x: int
    y: int
    w: int
    h: int

    def overlaps(self, other: Rect) -> bool:
        """True when the two boxes share any pixel (touching edges do not)."""
        return (self.x < other.x + other.w and other.x < self.x + self.w
                and self.y < other.y + other.h and other.y < self.y + self.h)

    def inside(self, width: int, height: int) -> bool:
        return self.x >= 0 and self.y >= 0 and self.x + self.w <= width and self.y + self.h <= height


@dataclass(frozen=True)
class TextBlock:
    """Wrapped lines of one size and colour, drawn inside ``rect`` (which holds every line)."""

    rect: Rect
    lines: tuple[str, ...]
    size: int
    colour: tuple[int, int, int]


@dataclass(frozen=True)
class RowText:
    """What one row says: its header and the captions under its two photos (None: no photo)."""

    header: str
    header_colour: tuple[int, int, int]
    query_caption: str
    candidate_caption: str | None
    panel_height: int = PANEL_HEIGHT  # as tall as the taller of its two fitted photos, at most PANEL_HEIGHT


@dataclass
class RowLayout:
    header: TextBlock
    query_panel: Rect
    candidate_panel: Rect
    query_caption: TextBlock
    candidate_caption: TextBlock | None
    rule_y: int  # the line under the row


@dataclass
class SheetLayout:
    """Where everything on a sheet goes; :func:`draw_sheet` draws exactly this."""

    width: int
    height: int
    verdict: TextBlock
    rows: list[RowLayout] = field(default_factory=list)

    def text_blocks(self) -> list[TextBlock]:
        out = [self.verdict]
        for r in self.rows:
            out += [r.header, r.query_caption] + ([r.candidate_caption] if r.candidate_caption else [])
        return out


@lru_cache(maxsize=8)
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's own scalable font (bundled with Pillow, so every machine draws the same sheet)."""
    return ImageFont.load_default(size=size)


def line_height(size: int) -> int:
    return int(math.ceil(size * LINE_SPACING))


def text_width(text: str, size: int) -> float:
    return float(font(size).getlength(text))


def wrap(text: str, width: int, size: int) -> list[str]:
    """``text`` broken into lines no wider than ``width`` pixels: at spaces, and inside a word
    only when the word alone is wider (long file names and ids)."""
    lines: list[str] = []
    for para in text.splitlines() or [""]:
        current = ""
        for word in para.split(" "):
            trial = f"{current} {word}" if current else word
            if text_width(trial, size) <= width:
                current = trial
                continue
            if current:
                lines.append(current)
            current = ""
            while text_width(word, size) > width:  # a single word wider than the column
                cut = len(word)
                while cut > 1 and text_width(word[:cut], size) > width:
                    cut -= 1
                lines.append(word[:cut])
                word = word[cut:]
            current = word
        lines.append(current)
    return lines


def _block(text: str, x: int, y: int, width: int, size: int, colour: tuple[int, int, int]) -> TextBlock:
    lines = tuple(wrap(text, width, size))
    return TextBlock(Rect(x, y, width, len(lines) * line_height(size)), lines, size, colour)


def layout_sheet(verdict: str, verdict_colour: tuple[int, int, int], rows: list[RowText]) -> SheetLayout:
    """Place the verdict, then per row its header, the two photo panels and their captions.

    Each caption is wrapped to its own photo's column and the row's caption band is as tall as
    the longer of the two, so captions cannot run into each other or into the next row."""
    inner = SHEET_WIDTH - 2 * MARGIN
    verdict_block = _block(verdict, MARGIN, MARGIN, inner, VERDICT_SIZE, verdict_colour)
    y = verdict_block.rect.y + verdict_block.rect.h + ROW_GAP
    left_x, right_x = MARGIN, 2 * MARGIN + PANEL_WIDTH
    out: list[RowLayout] = []
    for row in rows:
        y += ROW_GAP  # room for the rule above
        header = _block(row.header, MARGIN, y, inner, HEADER_SIZE, row.header_colour)
        y = header.rect.y + header.rect.h + MARGIN // 2
        qpanel, cpanel = Rect(left_x, y, PANEL_WIDTH, row.panel_height), Rect(right_x, y, PANEL_WIDTH, row.panel_height)
        y += row.panel_height + MARGIN // 2
        qcap = _block(row.query_caption, left_x, y, PANEL_WIDTH, CAPTION_SIZE, GREY)
        ccap = (_block(row.candidate_caption, right_x, y, PANEL_WIDTH, CAPTION_SIZE, GREY)
                if row.candidate_caption is not None else None)
        y += max(qcap.rect.h, ccap.rect.h if ccap else 0) + ROW_GAP
        out.append(RowLayout(header, qpanel, cpanel, qcap, ccap, y))
    return SheetLayout(SHEET_WIDTH, y + MARGIN, verdict_block, out)


def chip_image(image: np.ndarray, feats: ChipFeatures) -> np.ndarray:
    """The chip the features were computed on, rebuilt from the frame (keypoints are in its pixels)."""
    ch, cw = feats.chip_shape
    x0, y0 = int(round(feats.offset[0])), int(round(feats.offset[1]))
    x1 = min(image.shape[1], int(round(x0 + cw * feats.scale)))
    y1 = min(image.shape[0], int(round(y0 + ch * feats.scale)))
    crop = image[max(0, y0):y1, max(0, x0):x1]
    if crop.size == 0:  # features of another size of this photo: show the place empty, not fail
        return np.zeros((ch, cw, 3), np.uint8)
    if crop.ndim == 2:
        crop = cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)
    return cv2.resize(crop, (cw, ch), interpolation=cv2.INTER_AREA)


def _place(canvas: np.ndarray, photo: SheetPhoto, panel: Rect) -> tuple[float, int, int]:
    """Draw the photo's chip fitted inside ``panel`` (centred, aspect kept); returns the scale and
    the chip's top-left corner on the sheet, which map keypoints to sheet pixels."""
    chip = chip_image(photo.image, photo.feats)
    f = min(panel.w / chip.shape[1], panel.h / chip.shape[0])
    w, h = max(1, int(chip.shape[1] * f)), max(1, int(chip.shape[0] * f))
    x, y = panel.x + (panel.w - w) // 2, panel.y + (panel.h - h) // 2
    canvas[y:y + h, x:x + w] = cv2.resize(chip, (w, h), interpolation=cv2.INTER_AREA)
    return f, x, y


def verdict_text(result: MatchResult, candidates: list[SheetCandidate]) -> tuple[str, tuple[int, int, int]]:
    """The sheet's first line: what the machine proposes. "Probably X" is said only of a verified
    candidate; an unverified one is named as the closest, never as the probable animal."""
    if result.is_new:
        return f"Probably a NEW individual (chance it is new: {100 * result.new_probability:.0f}%)", AMBER
    best = next((c for c in candidates if c.verified), None)
    if best is not None and best.match is not None:
        return f"Probably {best.title} ({100 * best.match.probability:.0f}% sure)", GREEN
    if candidates:
        return f"No verified match; closest: {candidates[0].title} (unverified)", AMBER
    return "No catalogue individual to compare with this animal.", AMBER


def _fitted_height(photo: SheetPhoto | None) -> int:
    """How tall the photo's chip is once fitted in a panel (wide animals need less height)."""
    if photo is None:
        return 0
    ch, cw = photo.feats.chip_shape
    return int(min(PANEL_HEIGHT, PANEL_WIDTH * ch / max(1, cw))) if ch and cw else PANEL_HEIGHT


def sheet_texts(query: SheetPhoto, candidates: list[SheetCandidate]) -> list[RowText]:
    """Each row's header and captions, and how tall its photos are."""
    rows = []
    for rank, c in enumerate(candidates, start=1):
        if c.match is not None:
            pm = c.match.photos[0] if c.match.photos else None
            n_pairs = 0 if pm is None else len(pm.query_idx)
            header = (f"#{rank} {c.title} · {c.match.flank} flank · score {c.match.score:.1f} · "
                      f"{100 * c.match.probability:.0f}% sure · {n_pairs} matching spots")
            colour = GREEN if rank == 1 else WHITE
        elif c.note is not None:
            header = f"#{rank} {c.title} · {c.note}"
            colour = GREEN if rank == 1 else WHITE
        else:
            header = (f"#{rank} {c.title} · UNVERIFIED: its coat got votes but no photo of it lined up with "
                      "this one (no score, no matching spots); shown to compare")
            colour = AMBER
        caption = None
        if c.photo is not None:
            caption = c.photo.caption if c.verified else f"a catalogue photo (not matched): {c.photo.caption}"
        elif c.verified:
            caption = "its catalogue photo cannot be shown (the original is not in the store)"
        height = max(_fitted_height(query), _fitted_height(c.photo), 1)
        rows.append(RowText(header, colour, query.caption, caption, height))
    if not rows:
        rows.append(RowText("No catalogue photo matches this animal.", AMBER, query.caption, None,
                            max(1, _fitted_height(query))))
    return rows


def encounter_verdict(stored: dict[str, Any]) -> tuple[str, tuple[int, int, int]] | None:
    """The first line for a proposal decided with other photos of its encounter (None: decided
    alone, and the photo's own verdict is the whole story)."""
    n = int((stored.get("encounter") or {}).get("photos") or 1)
    if n <= 1:
        return None
    if stored.get("is_new") or stored.get("new_in_encounter"):
        return (f"Probably a NEW individual (this encounter's {n} photos together; chance it is new: "
                f"{100 * float(stored.get('new_probability') or 0.0):.0f}%)", AMBER)
    best = next((c for c in stored.get("candidates") or [] if c.get("verified", True)
                 and c.get("probability") is not None), None)
    if best is not None:
        return (f"Probably {best.get('code')} ({100 * best['probability']:.0f}% sure, this encounter's {n} "
                "photos together)", GREEN)
    return None


def draw_sheet(query: SheetPhoto, result: MatchResult, candidates: list[SheetCandidate], *,
               max_lines: int = 60, verdict: tuple[str, tuple[int, int, int]] | None = None
               ) -> tuple[np.ndarray, SheetLayout]:
    """The sheet as a BGR image, and the layout it was drawn from (``verdict``: the first line
    when it is not this photo's own, e.g. its encounter's)."""
    verdict, colour = verdict or verdict_text(result, candidates)
    layout = layout_sheet(verdict, colour, sheet_texts(query, candidates))
    canvas = np.full((layout.height, layout.width, 3), BACKGROUND, np.uint8)
    for k, row in enumerate(layout.rows):
        cv2.line(canvas, (MARGIN, row.header.rect.y - ROW_GAP // 2), (layout.width - MARGIN,
                 row.header.rect.y - ROW_GAP // 2), (90, 90, 90), 1)
        qf, qx, qy = _place(canvas, query, row.query_panel)
        if k >= len(candidates):
            continue
        cand = candidates[k]
        if cand.photo is None:
            continue
        df, dx, dy = _place(canvas, cand.photo, row.candidate_panel)
        pm = cand.match.photos[0] if cand.match is not None and cand.match.photos else None
        if pm is None:
            continue
        for j, i in enumerate(np.argsort(-pm.votes)[:max_lines]):
            line_colour = PALETTE[j % len(PALETTE)]
            kq = query.feats.kpts[pm.query_idx[i]]
            kd = cand.photo.feats.kpts[pm.db_idx[i]]
            p1 = (int(qx + kq[0] * qf), int(qy + kq[1] * qf))
            p2 = (int(dx + kd[0] * df), int(dy + kd[1] * df))
            r = max(4, int(3 * math.sqrt(abs(kq[2] * kq[4])) * qf))
            cv2.circle(canvas, p1, r, line_colour, 2, cv2.LINE_AA)
            cv2.circle(canvas, p2, max(4, int(3 * math.sqrt(abs(kd[2] * kd[4])) * df)), line_colour, 2, cv2.LINE_AA)
            cv2.line(canvas, p1, p2, line_colour, 1, cv2.LINE_AA)
    pil = Image.fromarray(canvas[:, :, ::-1])
    pen = ImageDraw.Draw(pil)
    for block in layout.text_blocks():
        for n, line in enumerate(block.lines):
            pen.text((block.rect.x, block.rect.y + n * line_height(block.size)), line, font=font(block.size),
                     fill=block.colour)
    return np.ascontiguousarray(np.asarray(pil)[:, :, ::-1]), layout


def render_sheet(query: SheetPhoto, result: MatchResult, candidates: list[SheetCandidate], out: Path, *,
                 max_lines: int = 60, verdict: tuple[str, tuple[int, int, int]] | None = None) -> Path:
    """Write the review sheet to ``out`` (JPEG or PNG by suffix); one row per candidate."""
    sheet, _ = draw_sheet(query, result, candidates, max_lines=max_lines, verdict=verdict)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), sheet, [cv2.IMWRITE_JPEG_QUALITY, 88]):
        raise OSError(f"could not write the review sheet to {out}")
    return out


def _annotation_to_show(annotations: list[Annotation], individual: str, flank: str | None) -> Annotation | None:
    """An unverified candidate's catalogue photo to compare with: on the query's flank when it has
    one, the one with the most features (the largest view of the coat)."""
    mine = [a for a in annotations if a.individual == individual and a.active]
    if not mine:
        return None
    return max(mine, key=lambda a: (flank is not None and a.flank == flank, a.count))


def review_proposal(cat: Catalogue, proposal_id: str, out: Path, *, top: int = 3) -> tuple[Path, MatchResult]:
    """Match a proposal's animal again (features are cached) and draw its review sheet: the
    verified candidates first, then unverified ones (coat votes, no photo lined up) up to ``top``.

    A proposal decided with other photos of its encounter is drawn in the encounter's order (what
    the desk lists) under the encounter's verdict; each row draws this photo's own matching spots
    when this photo lined that candidate up, and otherwise says the encounter's other photos did.
    """
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
        verdict = encounter_verdict(stored)
        mine = {c.individual: c for c in res.candidates}
        if verdict is not None:
            order = [(str(c["individual_id"]), c) for c in (stored.get("candidates") or [])[:top]]
        else:
            res.candidates = res.candidates[:top]
            verified = {c.individual for c in res.candidates}
            unverified = [i for i in res.unverified if i not in verified][: max(0, top - len(res.candidates))]
            order = [(i, None) for i in [c.individual for c in res.candidates] + unverified]
        names = {i.id: i for i in s.scalars(select(Individual).where(Individual.id.in_([i for i, _ in order])))}

        def photo_of(ann: Annotation | None) -> SheetPhoto | None:
            obs = s.get(Observation, ann.observation_id) if ann is not None and ann.observation_id else None
            cmedia = s.get(Media, obs.media_id) if obs is not None and obs.media_id else None
            if ann is None or cmedia is None or not cmedia.sha256 or not ws.blobs.exists(cmedia.sha256):
                return None
            return SheetPhoto(decode_image(ws.blobs.get_bytes(cmedia.sha256)), cat.index.features(ann.id),
                              _caption(cmedia))

        def title(ind_id: str) -> str:
            ind = names.get(ind_id)
            return f"{ind.code} {ind.name or ''}".strip() if ind else ind_id

        shown = []
        for ind_id, entry in order:
            c = mine.get(ind_id)
            if c is not None:
                shown.append(SheetCandidate(title(ind_id), c, photo_of(cat.index.annotation(c.photos[0].annotation_id))
                                            if c.photos else None))
                continue
            note = None
            if entry is not None and entry.get("verified", True) and entry.get("probability") is not None:
                n = int((stored.get("encounter") or {}).get("photos") or 1)
                note = (f"lined up on {entry.get('support', 0)} of this encounter's {n} photos, not on this one · "
                        f"{100 * entry['probability']:.0f}% sure together")
            shown.append(SheetCandidate(title(ind_id), None,
                                        photo_of(_annotation_to_show(cat.index.annotations, ind_id, res.flank)), note))
        query = SheetPhoto(image, feats, "this photo: " + _caption(media))
    return render_sheet(query, res, shown, out, verdict=verdict), res


def _caption(media: Media) -> str:
    when = media.timestamp.strftime("%Y-%m-%d %H:%M") if media.timestamp else "time unknown"
    return f"{media.deployment_id} · {when} · {media.file_name or ''}".rstrip(" ·")
