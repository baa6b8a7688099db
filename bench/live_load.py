"""Live load: 450 simulated cameras upload over loopback to a real `pardus serve`.

Each camera sends bursts of 3 frames at random (Poisson) moments; at mid-run a group of cameras
bursts at the same instant (a herd crossing a line of cameras, or the morning upload of cached
frames). Some bursts show a person at night (a rendered frame the default detector finds). Run
once with the bare upload endpoint (``--no-pipeline``) and once with the pipeline on, the bench
prints uploads/s, reply latency, upload-reply -> alert-delivered latency (webhook on loopback,
p50/p95/p99), the time the queue needed to finish the full pipeline after the load, and lost
uploads (a request without a 2xx, or a 2xx whose photo is not in the store), side by side.

What load is realistic: the park collects up to a million photos a season (about six months),
which is 0.06 photos/s over all cameras on average; the default background rate below (0.3 photos/s)
is 5x that, and the synchronised burst adds 60 photos within one second on top.

    nice -n 10 python bench/live_load.py                 # 40 s per side, defaults below
    nice -n 10 python bench/live_load.py --seconds 20 --rate 0.3 --together 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.live.helpers import Receiver, unique  # noqa: E402

from pardus.config import Settings  # noqa: E402
from pardus.simulate import render_frame  # noqa: E402
from pardus.store import open_workspace  # noqa: E402
from pardus.store.models import Media  # noqa: E402
from pardus.web.process import ServerProcess  # noqa: E402

PERSON_SEED = 5  # a rendered night poacher the default detector finds (tests/live/test_queue_health.py)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def frames() -> tuple[list[bytes], bytes]:
    """A pool of ordinary frames (blank, animal, day and night) and the person frame."""
    pool = []
    for i, (content, night) in enumerate([("blank", False), ("animal", False), ("blank", True), ("animal", True)] * 2):
        pool.append(render_frame(content, night=night, seed=20 + i, when=datetime(2024, 7, 14, 23 if night else 12)))
    person = render_frame("person", night=True, seed=PERSON_SEED, when=datetime(2024, 7, 14, 23, 5))
    return pool, person


def plan(cameras: int, seconds: float, rate: float, together: int, person_share: float,
         rng: random.Random) -> list[tuple[float, int, bool]]:
    """(start time, camera, person?) of every burst; each burst is 3 frames."""
    bursts = []
    burst_rate = rate / 3.0
    t = rng.expovariate(burst_rate)
    while t < seconds:
        bursts.append((t, rng.randrange(cameras), False))
        t += rng.expovariate(burst_rate)
    mid = seconds / 2
    bursts += [(mid, cam, False) for cam in rng.sample(range(cameras), together)]
    bursts.sort()
    # Person bursts come from distinct cameras, so each is its own alert (one alert per camera and kind).
    n_person = max(3, int(len(bursts) * person_share))
    used: set[int] = set()
    out = []
    for i, (t, cam, _) in enumerate(bursts):
        person = i % max(1, len(bursts) // n_person) == 0 and cam not in used
        if person:
            used.add(cam)
        out.append((t, cam, person))
    return out


async def run_load(server: ServerProcess, tokens: list[str], schedule: list[tuple[float, int, bool]],
                   pool: list[bytes], person: bytes) -> dict:
    results: list[dict] = []
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=60) as client:
        t0 = time.monotonic()
        seq = [0] * len(tokens)
        (together_at, many), = Counter(t for t, *_ in schedule).most_common(1)  # the same-second moment
        together_at = together_at if many > 1 else -1.0

        async def burst(at: float, cam: int, is_person: bool, n: int) -> None:
            await asyncio.sleep(max(0.0, at - (time.monotonic() - t0)))
            for k in range(3):
                seq[cam] += 1
                body = unique(person if is_person else pool[(n + k) % len(pool)], f"cam{cam}-seq{seq[cam]}")
                sent = time.monotonic()
                try:
                    r = await client.post(f"/api/v1/cameras/CAM{cam:03d}/media",
                                          headers={"Authorization": f"Bearer {tokens[cam]}"},
                                          files={"file": (f"IMG_{seq[cam]:05d}.JPG", body, "image/jpeg")},
                                          data={"seq": str(seq[cam])})
                    ok, media_id = r.status_code in (200, 201), r.json().get("media_id")
                except httpx.HTTPError:
                    ok, media_id = False, None
                results.append({"ok": ok, "media_id": media_id, "person": is_person and k == 0, "cam": cam,
                                "together": at == together_at,
                                "reply_at": time.time(), "latency": time.monotonic() - sent})
                await asyncio.sleep(0.3)  # a trap's burst interval

        await asyncio.gather(*(burst(t, c, p, i) for i, (t, c, p) in enumerate(schedule)))
        elapsed = time.monotonic() - t0
    return {"results": results, "elapsed": elapsed}


def one_side(label: str, pipeline: bool, args: argparse.Namespace, schedule: list, pool: list[bytes],
             person: bytes) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix=f"pardus-live-{label}-"))
    data = tmp / "data"
    rx = Receiver()
    ws = open_workspace(Settings(data_dir=data))
    from pardus.live.cameras import add_camera

    tokens = [add_camera(ws, f"CAM{i:03d}", expected_interval_s=3600) for i in range(args.cameras)]
    ws.close()
    rules = tmp / "rules.yaml"
    rules.write_text("window_minutes: 30\nrules:\n  - {name: people, kind: person}\n  - {name: cars, kind: vehicle}\n"
                     f"channels:\n  - {{name: ops, type: webhook, url: '{rx.url}/alerts', secret: bench}}\n")
    server = ServerProcess(data, rules=rules, pipeline=pipeline).start()
    try:
        out = asyncio.run(run_load(server, tokens, schedule, pool, person))
        load_end = time.monotonic()
        drained = None
        if pipeline:
            try:
                server.wait_idle(timeout_s=args.drain_timeout)
                drained = time.monotonic() - load_end
            except TimeoutError:
                drained = float("inf")
        rx_wait = time.monotonic()
        person_ids = {r["media_id"]: r for r in out["results"] if r["person"] and r["ok"]}
        while pipeline and time.monotonic() - rx_wait < 15 and len(rx.requests) < len(person_ids):
            time.sleep(0.2)
        health = server.health()
    finally:
        server.stop()
        rx.close()
    import json

    delivered = {}
    for req in rx.requests:
        body = json.loads(req["body"])
        delivered.setdefault(body["media_id"], req["at"])
    alert_lat = [delivered[m] - r["reply_at"] for m, r in person_ids.items() if m in delivered]
    moment = [delivered[m] - r["reply_at"] for m, r in person_ids.items() if m in delivered and r["together"]]
    calm = [delivered[m] - r["reply_at"] for m, r in person_ids.items() if m in delivered and not r["together"]]
    ws = open_workspace(Settings(data_dir=data))
    with ws.db.session() as s:
        from sqlalchemy import select

        stored = set(s.scalars(select(Media.id)))
    ws.close()
    results = out["results"]
    acked = [r for r in results if r["ok"]]
    lost = sum(1 for r in results if not r["ok"]) + sum(1 for r in acked if r["media_id"] not in stored)
    return {
        "label": label, "uploads": len(results), "elapsed": out["elapsed"], "per_s": len(acked) / out["elapsed"],
        "reply_p50": pct([r["latency"] for r in results], 50), "reply_p95": pct([r["latency"] for r in results], 95),
        "reply_p99": pct([r["latency"] for r in results], 99), "lost": lost,
        "person_bursts": len(person_ids), "alerts_delivered": len(alert_lat),
        "alert_p50": pct(alert_lat, 50), "alert_p95": pct(alert_lat, 95), "alert_p99": pct(alert_lat, 99),
        "alert_max": max(alert_lat) if alert_lat else float("nan"),
        "calm_n": len(calm), "calm_p50": pct(calm, 50), "calm_max": max(calm) if calm else float("nan"),
        "moment_n": len(moment), "moment_p50": pct(moment, 50),
        "moment_max": max(moment) if moment else float("nan"),
        "drain_s": drained, "processed": health.get("processed"), "queue": health.get("queue"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cameras", type=int, default=450)
    ap.add_argument("--seconds", type=float, default=40.0, help="length of the load, per side")
    ap.add_argument("--rate", type=float, default=0.3, help="background photos per second, all cameras together")
    ap.add_argument("--together", type=int, default=20, help="cameras bursting at the same instant at mid-run")
    ap.add_argument("--person-share", type=float, default=0.3, help="share of bursts that show a person")
    ap.add_argument("--drain-timeout", type=float, default=180.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    pool, person = frames()
    schedule = plan(args.cameras, args.seconds, args.rate, args.together, args.person_share, rng)
    print(f"{args.cameras} cameras, {len(schedule)} bursts of 3 ({3 * len(schedule)} uploads) in {args.seconds:.0f} s, "
          f"{args.together} cameras at the same instant, {sum(p for *_, p in schedule)} person bursts; "
          f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    bare = one_side("bare", False, args, schedule, pool, person)
    full = one_side("pipeline", True, args, schedule, pool, person)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    rows = [("uploads sent", "uploads", "{:.0f}"), ("uploads/s (2xx)", "per_s", "{:.2f}"),
            ("reply p50 s", "reply_p50", "{:.3f}"), ("reply p95 s", "reply_p95", "{:.3f}"),
            ("reply p99 s", "reply_p99", "{:.3f}"), ("lost uploads", "lost", "{:.0f}"),
            ("person bursts", "person_bursts", "{:.0f}"), ("alerts delivered", "alerts_delivered", "{:.0f}"),
            ("upload->alert p50 s", "alert_p50", "{:.2f}"), ("upload->alert p95 s", "alert_p95", "{:.2f}"),
            ("upload->alert p99 s", "alert_p99", "{:.2f}"), ("upload->alert max s", "alert_max", "{:.2f}"),
            ("  person bursts at other times", "calm_n", "{:.0f}"), ("    their p50 s", "calm_p50", "{:.2f}"),
            ("    their max s", "calm_max", "{:.2f}"),
            ("  person bursts in the same-second moment", "moment_n", "{:.0f}"),
            ("    their p50 s", "moment_p50", "{:.2f}"), ("    their max s", "moment_max", "{:.2f}"),
            ("full pipeline done, s after load", "drain_s", "{:.1f}")]
    print(f"\n{'':42} {'bare endpoint':>14} {'with pipeline':>14} {'ratio':>7}")
    for name, key, fmt in rows:
        a, b = bare.get(key), full.get(key)
        fa = fmt.format(a) if isinstance(a, int | float) else "-"
        fb = fmt.format(b) if isinstance(b, int | float) else "-"
        ratio = f"{b / a:.2f}" if isinstance(a, int | float) and isinstance(b, int | float) and a else ""
        print(f"{name:42} {fa:>14} {fb:>14} {ratio:>7}")
    print(f"\nqueue at the end (pipeline side): {full['queue']}, processed {full['processed']}")
    ok = full["lost"] == 0 and bare["lost"] == 0 and full["alert_p95"] < 5.0
    print("target (0 lost, upload->alert p95 < 5 s):", "MET" if ok else "NOT MET")


if __name__ == "__main__":
    main()
