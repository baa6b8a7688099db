"""How a small catalogue changes "probably new": rendered leopards, one cat catalogued beside eight.

A park starts its catalogue with one or two cats. An individual's score is the coat votes it
collects, so with one individual catalogued every chance vote goes to it; this bench measures what
that does to the open-set decision. Virtual-park leopards (``pardus.reid.simulated``), 4 catalogue
photos per cat (both flanks, two cameras), queries on the left flank at other moments:

- the catalogued cat L0 again (should be named, probability near 1);
- leopards never catalogued (should be "new");
- sika deer (should be "new", or get no candidate).

Printed per catalogue size: how many of each were named as a catalogued cat, and the probabilities
Pardus gave. The comparison is the same matcher with a larger catalogue; no peer has an open-set
decision to put beside it (plain SIFT only ranks). Pardus searches every query against eight
rendered distractor leopards as well (``pardus.reid.distractors``; their neighbours take chance
votes and are never proposed); the rows "without distractors" are the matcher before them
(``MatchParams(distractors=0)``).

    python bench/reid_tiny_catalogue.py [--sizes 1 8] [-n 6]
"""

from __future__ import annotations

import argparse

from pardus.reid.features import FeatureParams, extract
from pardus.reid.index import Annotation, FeatureIndex
from pardus.reid.match import MatchParams, match
from pardus.reid.simulated import SimulatedPhoto, render_animal


def catalogue(n_cats: int, params: FeatureParams) -> FeatureIndex:
    idx = FeatureIndex(None, params.key)
    k = 0
    for c in range(n_cats):
        for flank in ("left", "right"):
            for seed in (1, 2):
                ph = render_animal(f"L{c}", flank, seed + (0 if flank == "left" else 10) + 100 * c)
                idx.add(Annotation(k, f"L{c}", flank, camera=f"cam{seed}"), extract(ph.bgr, ph.box, params),
                        save=False)
                k += 1
    idx.fold()
    return idx


def answers(idx: FeatureIndex, photos: list[SimulatedPhoto], params: FeatureParams,
            match_params: MatchParams) -> list[tuple[str, float]]:
    """(named individual or "new", probability of the best candidate) per photo."""
    out = []
    for ph in photos:
        res = match(extract(ph.bgr, ph.box, params), idx, params=match_params)
        best = res.candidates[0] if res.candidates else None
        out.append(("new" if res.is_new or best is None else best.individual, best.probability if best else 0.0))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 8])
    ap.add_argument("-n", type=int, default=6, help="queries of each kind")
    args = ap.parse_args()
    params = FeatureParams()
    queries = {
        "L0 again (known)": [render_animal("L0", "left", 50 + s) for s in range(args.n)],
        "leopards never catalogued": [render_animal(f"D{s}", "left", 60 + s) for s in range(args.n)],
        "sika deer": [render_animal(f"S{s}", "left", 70 + s, species="Cervus nippon") for s in range(args.n)],
    }
    print(f"{'cats catalogued':>26}  {'queries':<27}{'named a cat':>12}  probabilities of the best candidate")
    for size in args.sizes:
        idx = catalogue(size, params)
        for label, mp in ((f"{size}, without distractors", MatchParams(distractors=0)), (f"{size}", MatchParams())):
            for what, photos in queries.items():
                got = answers(idx, photos, params, mp)
                named = sum(1 for who, _ in got if who != "new")
                probs = " ".join(f"{p:.2f}" for _, p in got)
                print(f"{label:>26}  {what:<27}{named:>6} of {len(got):<3}  {probs}")

if __name__ == "__main__":
    main()
