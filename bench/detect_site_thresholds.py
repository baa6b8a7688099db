"""Thresholds per camera site, tuned on the reviewed first half of a season, judged on the second.

The peer is what every camera-trap detector pipeline does: one animal threshold for all cameras
(Pardus's default, 0.15). Pardus tunes each site's animal threshold from the photos people
reviewed there before the season's middle (`pardus detect thresholds`, see
pardus.pipeline.site_thresholds) and applies it to the photos after. Both are judged on the second
half against the reviewers' truth: recall of photos with an animal (losing one is the worst
error), and empty photos kept out of the review queue. People and vehicles are not touched.

It reads a processed demo season (`make run` writes ./demo; or give --demo), running the demo
first when there is none (about 10 minutes on 2 cores).

    python bench/detect_site_thresholds.py [--demo demo] [--margin 0.9]
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

from sqlalchemy import func, select

from pardus.demo import demo_settings, run_demo
from pardus.pipeline.detect import DetectionStage, Thresholds
from pardus.pipeline.site_thresholds import site_tunings
from pardus.store import open_workspace
from pardus.store.models import Deployment, Detection, Media, Observation


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo", type=Path, default=Path("demo"))
    ap.add_argument("--margin", type=float, default=0.9)
    ap.add_argument("--min-reviewed", type=int, default=20)
    args = ap.parse_args()
    ws = open_workspace(demo_settings(args.demo))
    key = DetectionStage().model_key
    with ws.db.session() as s:
        processed = s.scalar(select(func.count()).select_from(Observation).where(Observation.classified_by == key))
    if not processed:
        ws.close()
        print(f"no processed season in {args.demo}: running the demo first")
        run_demo(args.demo)
        ws = open_workspace(demo_settings(args.demo))
    default = Thresholds().animal
    with ws.db.session() as s:
        t0, t1 = s.execute(select(func.min(Media.timestamp), func.max(Media.timestamp))
                           .where(Media.timestamp_issues.is_(None))).one()
        since = t0 + (t1 - t0) / 2
        later = {mid: loc for mid, loc in s.execute(
            select(Media.id, Deployment.location_id).join(Deployment, Deployment.id == Media.deployment_id)
            .where(Media.timestamp >= since, Media.timestamp_issues.is_(None)))}
        truth: dict[str, bool] = {}
        for mid, kind in s.execute(select(Observation.media_id, Observation.observation_type)
                                   .where(Observation.classification_method == "human")):
            if mid in later:
                truth[mid] = truth.get(mid, False) or kind == "animal"
        best: dict[str, float] = defaultdict(float)
        for mid, score in s.execute(select(Detection.media_id, Detection.score).where(
                Detection.category == "animal", Detection.repeat.is_(False),
                Detection.extra["stage"].as_string() == key)):
            best[mid] = max(best[mid], score)
        others = set(s.scalars(select(Detection.media_id).where(Detection.category.in_(("person", "vehicle")),
                                                               Detection.extra["stage"].as_string() == key)))
    tunings = {t.location_id: t for t in site_tunings(ws, default, margin=args.margin, min_reviewed=args.min_reviewed,
                                                        until=since, detect_key=key)}
    ws.close()

    def judge(threshold_of: dict[str, float]) -> tuple[int, int, int, int]:
        found = animals = removed = empty = 0
        for mid, is_animal in truth.items():
            t = threshold_of.get(later[mid] or "", default)
            called = best.get(mid, 0.0) >= t or mid in others
            if is_animal:
                animals += 1
                found += called
            elif mid not in others:  # photos of people and vehicles are not this bench's business
                empty += 1
                removed += not called
        return found, animals, removed, empty

    site = {loc: t.threshold for loc, t in tunings.items() if t.threshold is not None}
    print(f"season {args.demo}: tuned on reviews before {since:%Y-%m-%d %H:%M}, judged on {len(truth)} photos after")
    print(f"{'site':12}{'reviewed':>9}{'animals':>9}{'empty called animal':>21}{'faintest':>10}{'threshold':>11}")
    for loc, t in sorted(tunings.items()):
        low = f"{t.lowest_animal_score:.2f}" if t.lowest_animal_score is not None else "-"
        thr = f"{t.threshold:.2f}" if t.threshold is not None else "default"
        print(f"{loc:12}{t.reviewed:9d}{t.reviewed_non_blank:9d}{t.false_alarms:21d}{low:>10}{thr:>11}")
    g = judge({})
    p = judge(site)
    print(f"\n{'second half':34}{'animal photos found':>22}{'empty photos removed':>22}")
    print(f"{'one threshold for all (peer)':34}{f'{g[0]}/{g[1]} = {g[0] / max(g[1], 1):.3f}':>22}"
          f"{f'{g[2]}/{g[3]} = {g[2] / max(g[3], 1):.3f}':>22}")
    print(f"{'Pardus, per site from reviews':34}{f'{p[0]}/{p[1]} = {p[0] / max(p[1], 1):.3f}':>22}"
          f"{f'{p[2]}/{p[3]} = {p[2] / max(p[3], 1):.3f}':>22}")
    print(f"ratio Pardus/peer: animals found {p[0] / max(g[0], 1):.3f}x, empty removed "
          f"{p[2] / max(g[2], 1):.2f}x" if g[2] else "ratio: the peer removed no empty photo")


if __name__ == "__main__":
    main()
