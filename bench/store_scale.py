"""A million photos in PostgreSQL: what `pardus status`, the plot-year report and the review
queue cost at 1,000,000 media and 3,000,000 observations, against the issue's targets.

The store is generated straight into a throw-away schema with bulk inserts (``pardus.testing.rows``:
multi-row INSERTs of 10,000 rows, no image files; a season of 40 stations in 4 plots, bursts of 3,
one observation per photo plus two more machine calls from other models, detections, stage states,
alerts), then VACUUM ANALYZE as autovacuum would. Each step is then timed on it, beside its floor:
the bare SELECT count of the same table, so the ratio is what Pardus adds. The report is the whole
`pardus report` (collect, analyse with its 1,000-resample activity bootstrap, trend, plots and
files). The queue is timed three ways: built from nothing, refreshed with nothing changed, and
refreshed for one camera (what `pardus process` does after a card). The Camtrap DP export at
a million observations is `bench/export.py` (1.10x plain CSV of the same rows), the review desk's next
sequence at a million photos `bench/review_speed.py`; this bench adds status, report and the queue
refresh on the same big store.

    python bench/store_scale.py [--photos 1000000] [--database-url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from pardus.config import Settings
from pardus.store import open_workspace
from pardus.testing.postgres import drop_schema, new_schema, vacuum_analyze
from pardus.testing.rows import SeasonSize, fill_season

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TARGETS = {"status": 5.0, "report": 60.0, "queue page p95": 0.2}


def _time(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return (statistics.quantiles(times, n=20)[-1] if repeat >= 20 else max(times)), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=1_000_000)
    ap.add_argument("--database-url", default=PG)
    ap.add_argument("--profile", action="store_true", help="also print where the report's time goes")
    args = ap.parse_args()
    from pardus.review.queue import QueueFilter, page, refresh
    from pardus.stats.report import ReportOptions, build_report
    from pardus.store.models import Media, Observation, ReviewItem
    from pardus.store.status import deployment_status, totals

    schema, url = new_schema(args.database_url, "store_scale")
    rows: list[tuple[str, float, float | None, str]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            ws = open_workspace(Settings(data_dir=Path(tmp), database_url=url))
            t = time.perf_counter()
            with ws.db.engine.begin() as conn:
                counts = fill_season(conn, SeasonSize(photos=args.photos, more_calls=2))
            vacuum_analyze(url)
            fill_s = time.perf_counter() - t
            with ws.db.session() as s:
                n_media = s.scalar(select(func.count()).select_from(Media))
                n_obs = s.scalar(select(func.count()).select_from(Observation))
            print(f"store: {n_media:,} media, {n_obs:,} observations, {counts['detection']:,} detections, "
                  f"{counts['stage_state']:,} stage states; generated in {fill_s:.0f} s (bulk INSERTs, stated)")

            def status() -> Any:
                with ws.db.session() as s:
                    return deployment_status(s), totals(s)

            def floor_count() -> Any:
                with ws.db.session() as s:
                    return s.scalar(select(func.count()).select_from(Observation))

            sec, _ = _time(status)
            floor, _ = _time(floor_count)
            rows.append(("status", sec, floor, "bare count(*) of observations"))

            def report() -> Any:  # what `pardus report --plot plot-D --year 2024` does, files and all
                return build_report(ws, "plot-D", 2024, Path(tmp) / "report", ReportOptions(), trend=True)

            sec, (rep, _) = _time(report)
            rows.append(("report", sec, None, f"pardus report, plot-D 2024: {len(rep.data.records):,} animal "
                         "records, HTML + JSON + CSV"))
            if args.profile:  # where the report's time goes
                import cProfile
                import pstats

                prof = cProfile.Profile()
                prof.runcall(report)
                pstats.Stats(prof).sort_stats("cumulative").print_stats(25)

            def fill_queue() -> int:
                with ws.db.session() as s:
                    return refresh(s)

            sec, n_items = _time(fill_queue)
            rows.append(("queue build", sec, None, f"{n_items:,} sequences written (the first process of a season)"))
            sec, _ = _time(fill_queue)
            rows.append(("queue refresh", sec, None, "every camera again, nothing changed (pardus review refresh)"))

            def one_camera() -> int:
                with ws.db.session() as s:
                    return refresh(s, deployments=["D003"])

            sec, n_one = _time(one_camera)
            rows.append(("queue, 1 camera", sec, None, f"{n_one:,} sequences: after `pardus process` of one card"))
            with ws.db.session() as s:
                ids = list(s.scalars(select(ReviewItem.sequence_id).order_by(func.random()).limit(40)))

            times = []
            for anchor in ids:
                t = time.perf_counter()
                with ws.db.session() as s:
                    page(s, QueueFilter(), after=anchor, limit=1)
                times.append(time.perf_counter() - t)
            rows.append(("queue page p95", statistics.quantiles(times, n=20)[-1], None, "next sequence after a "
                         "random one, 40 draws"))
            ws.close()
    finally:
        drop_schema(args.database_url, schema)
    print(f"{'step':<16}{'seconds':>10}{'floor s':>10}{'ratio':>8}{'target':>9}  what")
    for name, sec, floor, what in rows:
        ratio = f"{sec / floor:.1f}x" if floor else "-"
        target = f"< {TARGETS[name]:g}" if name in TARGETS else "-"
        ok = "" if name not in TARGETS else (" ok" if sec < TARGETS[name] else " MISSED")
        print(f"{name:<16}{sec:>10.3f}{(f'{floor:.3f}' if floor else '-'):>10}{ratio:>8}{target:>9}  {what}{ok}")


if __name__ == "__main__":
    main()
