"""Web pages on a full season: server time of the alert inbox, the camera map data and the season overview.

A store with 100,000 photos and 2,000 alerts (pardus.testing.rows: 40 stations in 4 plots, 10 online
cameras, 5 pipeline stages per photo, one observation per photo, detections, alert trails,
heartbeats) is served by a real `pardus serve --no-pipeline` in its own process; the bench signs in
with an API token and times each page over loopback with httpx (one keep-alive connection, requests
in turn, so the time is the server's plus a loopback round trip). The floor ("peer") is the same
rows fetched with one plain SQL SELECT through SQLAlchemy Core on a pooled connection, in this
process: what the database alone costs. The ratio Pardus / floor is what the app costs over it.

    nice -n 10 python bench/web_pages.py                          # 100,000 photos, 2,000 alerts, both backends
    python bench/web_pages.py --photos 20000 --alerts 500 --backends sqlite --requests 10

The SQLite store is cached under the temp folder, keyed by its parameters (``--fresh`` rebuilds it);
PostgreSQL gets a fresh schema in --postgres-url, filled, VACUUM ANALYZEd (as autovacuum does on
a store in use) and dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from pardus.config import Settings  # noqa: E402
from pardus.people.accounts import add_user  # noqa: E402
from pardus.store import open_workspace  # noqa: E402
from pardus.testing.postgres import drop_schema, new_schema, vacuum_analyze  # noqa: E402
from pardus.testing.rows import SeasonSize, fill_season, refresh_cameras  # noqa: E402
from pardus.web.process import ServerProcess  # noqa: E402

TARGET_P95_MS = 300.0
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CACHE_VERSION = 1  # bump when pardus.testing.rows writes different rows

# The page, and the one SELECT that fetches the same rows.
INBOX_SQL = """
SELECT a.id, a.kind, a.status, a.camera_id, a.deployment_id, a.media_id, a.created, a.updated,
       a.acknowledged_by, a.resolved_by, a.outcome, a.details, c.health, l.id, l.name, l.latitude, l.longitude,
       l.sensitive
FROM alert a
LEFT JOIN camera c ON c.id = a.camera_id
LEFT JOIN deployment d ON d.id = a.deployment_id
LEFT JOIN location l ON l.id = d.location_id
WHERE a.status <> 'resolved'
ORDER BY a.created DESC, a.id
LIMIT 200"""
MAP_SQL = """
SELECT d.id, d.camera_id, d.start, d."end", l.id, l.name, l.plot, l.latitude, l.longitude, l.sensitive,
       c.token_hash, c.expected_interval_s, c.last_seen, c.health, m.n, m.last
FROM deployment d
JOIN location l ON l.id = d.location_id
LEFT JOIN camera c ON c.id = d.camera_id
LEFT JOIN (SELECT deployment_id, count(*) AS n, max(timestamp) AS last FROM media GROUP BY deployment_id) m
       ON m.deployment_id = d.id
WHERE l.latitude IS NOT NULL AND l.longitude IS NOT NULL
ORDER BY d.start, d.id"""
# One observation per photo in this store, so count(*) gives the page's distinct-photo counts.
OVERVIEW_SQL = """
SELECT m.deployment_id, 'photos', count(*) FROM media m GROUP BY m.deployment_id
UNION ALL
SELECT m.deployment_id, 'flags', count(m.timestamp_issues) + count(m.file_issues) FROM media m GROUP BY m.deployment_id
UNION ALL
SELECT s.deployment_id, s.stage || ':' || s.status, count(*) FROM stage_state s
GROUP BY s.deployment_id, s.stage, s.status
UNION ALL
SELECT o.deployment_id, 'kind:' || o.observation_type, count(DISTINCT o.media_id) FROM observation o
WHERE o.media_id IS NOT NULL GROUP BY o.deployment_id, o.observation_type
UNION ALL
SELECT o.deployment_id, 'reviewed', count(DISTINCT o.media_id) FROM observation o
WHERE o.classification_method = 'human' AND o.media_id IS NOT NULL GROUP BY o.deployment_id"""


@dataclass
class Page:
    name: str
    path: str
    sql: str
    check: Callable[[httpx.Response], str | None]  # None: the answer looks right; else what is wrong


def _inbox_check(r: httpx.Response) -> str | None:
    n = r.text.count('class="alert sev-')
    return None if n == 200 else f"{n} alerts listed, expected 200"


def _map_check(r: httpx.Response) -> str | None:
    st = r.json()["stations"]
    offline = sum(s["state"] == "offline" for s in st)
    return None if len(st) >= 40 and offline >= 1 else f"{len(st)} stations, {offline} offline"


def _overview_check(r: httpx.Response) -> str | None:
    return None if r.text.count("<tr><th>D0") >= 40 else "fewer than 40 deployment rows"


PAGES = [
    Page("inbox rows  /alerts/rows?state=open", "/alerts/rows?state=open", INBOX_SQL, _inbox_check),
    Page("inbox page  /alerts", "/alerts", INBOX_SQL, _inbox_check),
    Page("map data    /api/v1/map/stations", "/api/v1/map/stations", MAP_SQL, _map_check),
    Page("overview    /overview", "/overview", OVERVIEW_SQL, _overview_check),
]


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def _size(a: argparse.Namespace) -> SeasonSize:
    return SeasonSize(photos=a.photos, alerts=a.alerts, seed=a.seed)


def _fill(settings: Settings, size: SeasonSize) -> float:
    t = time.perf_counter()
    with open_workspace(settings) as ws, ws.db.engine.begin() as conn:
        fill_season(conn, size)
    return time.perf_counter() - t


def sqlite_store(a: argparse.Namespace) -> tuple[Settings, Path | None]:
    """The cached SQLite store for these parameters (built on first use)."""
    size = _size(a)
    key = f"v{CACHE_VERSION}-p{size.photos}-a{size.alerts}-s{size.seed}"
    root = Path(tempfile.gettempdir()) / "pardus-bench-web" / key
    settings = Settings(data_dir=root / "data")
    if a.fresh or not (root / "complete").exists():
        shutil.rmtree(root, ignore_errors=True)
        dt = _fill(settings, size)
        (root / "complete").write_text("filled\n")
        print(f"sqlite: filled {root} in {dt:.1f} s", flush=True)
    else:
        print(f"sqlite: using the cached store {root}", flush=True)
        with open_workspace(settings) as ws, ws.db.engine.begin() as conn:
            refresh_cameras(conn, size)
    return settings, None


def postgres_store(a: argparse.Namespace, tmp: Path) -> tuple[Settings, str]:

    schema, url = new_schema(a.postgres_url, "pardus_bench_web")
    settings = Settings(data_dir=tmp / "pg-data", database_url=url)
    dt = _fill(settings, _size(a))
    vacuum_analyze(url)
    print(f"postgresql: filled schema {schema} in {dt:.1f} s (then VACUUM ANALYZE, as autovacuum would)", flush=True)
    return settings, schema


def time_pages(settings: Settings, a: argparse.Namespace, log_dir: Path) -> dict[str, list[float]]:
    """Each page over loopback from a real `pardus serve --no-pipeline`, in turn; seconds per request."""
    with open_workspace(settings) as ws:
        token = add_user(ws, "bench", "ranger")
    srv = ServerProcess(settings.data_dir, pipeline=False, database_url=settings.database_url,
                        log=log_dir / f"serve-{os.getpid()}.log").start()
    times: dict[str, list[float]] = {p.name: [] for p in PAGES}
    try:
        with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as client:
            for _ in range(a.warmup):
                for p in PAGES:
                    r = client.get(p.path)
                    r.raise_for_status()
                    problem = p.check(r)
                    if problem:
                        raise SystemExit(f"{p.path}: {problem}")
            for _ in range(a.requests):
                for p in PAGES:
                    t = time.perf_counter()
                    r = client.get(p.path)
                    _ = r.content
                    times[p.name].append(time.perf_counter() - t)
                    r.raise_for_status()
    finally:
        srv.stop()
    return times


def time_floor(settings: Settings, a: argparse.Namespace) -> dict[str, list[float]]:
    """The same rows with one plain SELECT each, on a pooled connection of this process."""
    from sqlalchemy import create_engine

    eng = create_engine(settings.resolved_database_url)
    times: dict[str, list[float]] = {p.name: [] for p in PAGES}
    try:
        for _ in range(a.warmup):
            for p in PAGES:
                with eng.connect() as conn:
                    conn.exec_driver_sql(p.sql).fetchall()
        for _ in range(a.requests):
            for p in PAGES:
                t = time.perf_counter()
                with eng.connect() as conn:
                    rows: list[Any] = conn.exec_driver_sql(p.sql).fetchall()
                times[p.name].append(time.perf_counter() - t)
                assert rows
    finally:
        eng.dispose()
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=100_000)
    ap.add_argument("--alerts", type=int, default=2_000)
    ap.add_argument("--requests", type=int, default=30, help="timed requests per page and backend")
    ap.add_argument("--warmup", type=int, default=3, help="untimed requests per page first")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--postgres-url", default=PG_URL)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--fresh", action="store_true", help="rebuild the cached SQLite store")
    a = ap.parse_args()
    backends = [b.strip() for b in a.backends.split(",") if b.strip()]
    if not set(backends) <= {"sqlite", "postgresql"}:
        raise SystemExit(f"--backends takes sqlite and/or postgresql, not {a.backends!r}")
    if a.alerts < 600:
        print("note: with fewer than ~600 alerts the inbox has fewer than 200 open ones to list")
    print(f"{a.photos:,} photos, {a.alerts:,} alerts, {a.requests} timed requests per page "
          f"({a.warmup} warm-up); load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    results: dict[str, tuple[dict[str, list[float]], dict[str, list[float]]]] = {}
    with tempfile.TemporaryDirectory(prefix="pardus-bench-web-") as tmp:
        for backend in backends:
            schema = None
            if backend == "sqlite":
                settings, _ = sqlite_store(a)
            else:
                settings, schema = postgres_store(a, Path(tmp))
            try:
                floor = time_floor(settings, a)
                pages = time_pages(settings, a, Path(tmp))
            finally:
                if schema:
                    drop_schema(a.postgres_url, schema)
            results[backend] = (floor, pages)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print("\nms per request; floor: one plain SELECT of the same rows (no HTTP, no Python objects, no HTML); "
          "Pardus: real server over loopback")
    head = f"{'':38} {'backend':>10} {'floor p50':>10} {'floor p95':>10} {'Pardus p50':>11} {'Pardus p95':>11} " \
           f"{'ratio p50':>10} {'ratio p95':>10}  target p95 < {TARGET_P95_MS:.0f} ms"
    print(head)
    ok_all = True
    for p in PAGES:
        for backend in backends:
            floor, pages = results[backend]
            f50, f95 = 1000 * pct(floor[p.name], 50), 1000 * pct(floor[p.name], 95)
            p50, p95 = 1000 * pct(pages[p.name], 50), 1000 * pct(pages[p.name], 95)
            ok = p95 < TARGET_P95_MS
            ok_all &= ok
            print(f"{p.name:38} {backend:>10} {f50:>10.1f} {f95:>10.1f} {p50:>11.1f} {p95:>11.1f} "
                  f"{p50 / f50:>10.1f} {p95 / f95:>10.1f}  {'PASS' if ok else 'FAIL'}")
    print("(a FAIL with a ratio near 1 means the SELECT itself is too slow on this schema: an index or column "
          "matter; a high ratio means the app's own work: queries per row, objects, HTML)")
    print(f"\ntarget (every page p95 under {TARGET_P95_MS:.0f} ms on every backend): {'MET' if ok_all else 'NOT MET'}")


if __name__ == "__main__":
    main()
