"""The review sheet (`pardus reid review`, the identities page's match picture) on rendered
leopards: one fixed width whatever the photos, the verdict and every header fully on the sheet,
captions wrapped inside their own column and never over each other or a photo, and a candidate
no photo verified shown as unverified (never "Probably ...").

The geometry is read from :func:`layout_sheet`, the layout :func:`draw_sheet` draws, and the
drawn image is checked to have exactly its size.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations
from pathlib import Path

import cv2
import numpy as np
import pytest

from pardus.reid.features import ChipFeatures
from pardus.reid.index import Annotation, FeatureIndex
from pardus.reid.match import MatchResult, match
from pardus.reid.review import (
    SHEET_WIDTH,
    SheetCandidate,
    SheetLayout,
    SheetPhoto,
    draw_sheet,
    render_sheet,
    text_width,
)
from pardus.reid.simulated import SimulatedPhoto

Sim = list[tuple[SimulatedPhoto, ChipFeatures]]
LONG_NAME = "02__Station19__Camera2__2012-6-21__1-34-44(5)" * 4 + ".JPG"  # a card path with no spaces


def _matched(sim: Sim) -> tuple[SheetPhoto, MatchResult, list[SheetCandidate]]:
    """A's left flank queried against one photo per leopard and flank (the others' as catalogue)."""
    idx = FeatureIndex.open(None, sim[0][1].params_key)
    for i in (0, 2, 4, 6, 8, 10):
        photo, feats = sim[i]
        idx.add(Annotation(i, photo.individual, photo.flank, photo.species), feats, save=False)
    qphoto, qfeats = sim[1]
    res = match(qfeats, idx)
    assert res.candidates and res.candidates[0].individual == "SIM_A"  # the coat wins here
    cands = []
    for c in res.candidates[:3]:
        ann = c.photos[0].annotation_id
        shown = SheetPhoto(sim[ann][0].bgr, idx.features(ann), f"LOL-S01 · 2024-07-01 · {LONG_NAME}")
        cands.append(SheetCandidate(f"LEO_00{ann} Berry", c, shown))
    query = SheetPhoto(qphoto.bgr, qfeats, "this photo: LOL-S02 · 2024-07-01 11:05 · " + LONG_NAME)
    return query, res, cands


def _check_geometry(sheet: np.ndarray, layout: SheetLayout) -> None:
    assert sheet.shape == (layout.height, SHEET_WIDTH, 3) and layout.width == SHEET_WIDTH
    blocks = layout.text_blocks()
    panels = [p for r in layout.rows for p in (r.query_panel, r.candidate_panel)]
    for b in blocks:
        assert b.rect.inside(layout.width, layout.height), b  # nothing cut off, the header included
        assert all(text_width(line, b.size) <= b.rect.w for line in b.lines), b.lines  # wrapped to its column
        assert not any(b.rect.overlaps(p) for p in panels), b  # words never over a photo
    for a, b in combinations(blocks, 2):
        assert not a.rect.overlaps(b.rect), (a.lines, b.lines)
    for a, b in combinations(panels, 2):
        assert not a.overlaps(b)


def test_sheet_is_fixed_width_with_wrapped_captions_that_never_overlap(sim_leopards: Sim, tmp_path: Path) -> None:
    query, res, cands = _matched(sim_leopards)
    sheet, layout = draw_sheet(query, res, cands)
    _check_geometry(sheet, layout)
    assert len(layout.rows) == len(cands)
    assert layout.verdict.lines[0].startswith("Probably LEO_00")
    assert len(layout.rows[0].query_caption.lines) > 1  # the long card path wrapped, not run on
    row = layout.rows[0]
    assert row.query_caption.rect.y == row.candidate_caption.rect.y  # side by side, in two columns
    # the photos are drawn: the panels are not the empty background
    assert sheet[row.query_panel.y:row.query_panel.y + row.query_panel.h,
                 row.query_panel.x:row.query_panel.x + row.query_panel.w].std() > 10
    out = render_sheet(query, res, cands, tmp_path / "sheet.jpg")
    written = cv2.imread(str(out))
    assert written.shape == sheet.shape

    # a tiny chip and a wide one give the same width
    small = SheetPhoto(query.image, replace(query.feats, chip_shape=(30, 40)), "small")
    sheet2, layout2 = draw_sheet(small, res, [])
    _check_geometry(sheet2, layout2)
    assert layout2.rows[0].header.lines == ("No catalogue photo matches this animal.",)


def test_unverified_candidates_are_shown_as_such(sim_leopards: Sim) -> None:
    query, res, cands = _matched(sim_leopards)
    unverified_res = MatchResult([], res.n_features, None, False, 0.2, unverified=["SIM_B"])
    other = SheetCandidate("LEO_002", None, SheetPhoto(sim_leopards[4][0].bgr, sim_leopards[4][1], "LOL-S05"))
    sheet, layout = draw_sheet(query, unverified_res, [other])
    _check_geometry(sheet, layout)
    verdict = " ".join(layout.verdict.lines)
    assert verdict == "No verified match; closest: LEO_002 (unverified)" and "Probably" not in verdict
    header = " ".join(layout.rows[0].header.lines)
    assert "UNVERIFIED" in header and "% sure" not in header
    assert "not matched" in " ".join(layout.rows[0].candidate_caption.lines)

    # verified first, then unverified: the verdict names the verified one
    sheet, layout = draw_sheet(query, res, [cands[0], other])
    _check_geometry(sheet, layout)
    assert layout.verdict.lines[0].startswith("Probably ") and "UNVERIFIED" in " ".join(layout.rows[1].header.lines)


@pytest.mark.parametrize("n", [0, 1, 5])
def test_many_or_no_candidates_keep_the_layout(sim_leopards: Sim, n: int) -> None:
    query, res, cands = _matched(sim_leopards)
    many = (cands * 5)[:n]
    sheet, layout = draw_sheet(query, res if n else MatchResult([], 0, None, True, 0.9), many)
    _check_geometry(sheet, layout)
    assert len(layout.rows) == max(1, n)
