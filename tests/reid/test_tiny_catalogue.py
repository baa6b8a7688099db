"""A park's first catalogue holds one cat: its chance votes must not make every new leopard, or a
deer the species stage was unsure of, that cat (bench/reid_tiny_catalogue.py measures more)."""

from __future__ import annotations

import pytest

from pardus.reid.features import FeatureParams, extract
from pardus.reid.index import Annotation, FeatureIndex
from pardus.reid.match import MatchParams, match
from pardus.reid.simulated import render_animal

PARAMS = FeatureParams()


@pytest.fixture(scope="module")
def one_cat() -> FeatureIndex:
    idx = FeatureIndex(None, PARAMS.key)
    for k, (flank, seed) in enumerate([("left", 1), ("left", 2), ("right", 11), ("right", 12)]):
        ph = render_animal("L0", flank, seed)
        idx.add(Annotation(k, "L0", flank, camera=f"cam{seed}"), extract(ph.bgr, ph.box, PARAMS), save=False)
    idx.fold()
    return idx


def _named(idx: FeatureIndex, photos: list, mp: MatchParams) -> list[float]:
    """Probabilities of the photos the matcher named as a catalogued cat."""
    out = []
    for ph in photos:
        res = match(extract(ph.bgr, ph.box, PARAMS), idx, params=mp)
        if not res.is_new and res.candidates:
            out.append(res.candidates[0].probability)
    return out


def test_a_one_cat_catalogue_does_not_name_new_leopards_and_deer_as_its_cat(one_cat: FeatureIndex) -> None:
    known = [render_animal("L0", "left", 50 + s) for s in range(2)]
    new_cats = [render_animal(f"D{s}", "left", 60 + s) for s in range(4)]
    deer = [render_animal(f"S{s}", "left", 70 + s, species="Cervus nippon") for s in range(3)]
    assert len(_named(one_cat, known, MatchParams())) == 2  # its own photos still named, at once
    # before the distractor coats, the one cat took every chance vote (the fault this guards against)
    assert len(_named(one_cat, new_cats, MatchParams(distractors=0))) >= 3
    assert len(_named(one_cat, deer, MatchParams(distractors=0))) >= 2
    named_new = _named(one_cat, new_cats, MatchParams())
    assert len(named_new) <= 1 and all(p < 0.5 for p in named_new)
    assert _named(one_cat, deer, MatchParams()) == []
