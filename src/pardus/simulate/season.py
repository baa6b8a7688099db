"""A whole virtual season: camera grid, animals, events, cards on disk, and the truth beside them.

Order of work: the design (stations, cameras, when each worked) → the SECR capture data of the
marked species, drawn by ``simulate_captures`` from the true usage → every other visit (prey,
people, vehicles, fire, vegetation triggers) → bursts on each card in time order → rendering in
a process pool → the mess (clock reset, truncated file, duplicate card) → ``truth/``.

Each concern draws from its own random stream (``seed`` + a fixed stream number), so changing,
say, the prey rates never changes which leopards were caught; every burst carries its own seed,
so the pixels do not depend on which worker drew them or in what order.
"""

from __future__ import annotations

import csv
import json
import math
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np

from pardus.simulate.captures import CaptureData, simulate_captures
from pardus.simulate.geo import VLADIVOSTOK, PlotFrame, moon_phase, sun_elevation_deg
from pardus.simulate.render import CameraInfo, FrameSpec, ObjectTruth, Subject, render, stable_seed
from pardus.simulate.shapes import BADGER, BEAR, BOAR, HUMAN, LEOPARD, RACCOON_DOG, ROE, SIKA, TIGER

ProgressCallback = Callable[[int, int], None]
DAY = timedelta(days=1)
RESET_EPOCH = datetime(2000, 1, 1)

# Streams: one per concern, so parameters of one never shift the draws of another.
S_DESIGN, S_LEOPARD, S_TIGER, S_NEW, S_VISITS, S_PREY, S_EVENTS, S_BLANK, S_MESS, S_RENDER = range(10)


class SeasonError(ValueError):
    """A season that cannot be simulated as asked; the message says which value to change."""


def _hourly(peaks: dict[int, float], floor: float) -> np.ndarray:
    w = np.full(24, floor)
    for h, v in peaks.items():
        w[h % 24] = max(w[h % 24], v)
    return w / w.sum()


# Activity by local hour (crepuscular and nocturnal cats, diurnal bear, ...), from the shape of
# published camera-trap activity curves for these species in the Russian Far East.
ACTIVITY = {
    LEOPARD: _hourly({18: 3, 19: 4, 20: 4, 21: 3, 22: 3, 23: 3, 0: 3, 1: 3, 2: 3, 3: 3, 4: 4, 5: 4, 6: 3}, 0.6),
    TIGER: _hourly({17: 3, 18: 4, 19: 4, 20: 3, 21: 3, 22: 2, 23: 2, 0: 2, 1: 2, 2: 2, 3: 2, 4: 3, 5: 4, 6: 3}, 1.0),
    SIKA: _hourly({4: 3, 5: 5, 6: 5, 7: 3, 17: 3, 18: 5, 19: 5, 20: 3}, 1.0),
    ROE: _hourly({4: 3, 5: 5, 6: 4, 18: 4, 19: 5, 20: 4, 21: 2}, 1.0),
    BOAR: _hourly({19: 3, 20: 3, 21: 3, 22: 3, 23: 3, 0: 2, 1: 2, 2: 2, 3: 2, 17: 2, 18: 2}, 1.2),
    BADGER: _hourly({20: 4, 21: 5, 22: 5, 23: 5, 0: 5, 1: 4, 2: 4, 3: 3}, 0.2),
    RACCOON_DOG: _hourly({19: 3, 20: 5, 21: 5, 22: 5, 23: 4, 0: 4, 1: 4, 2: 3, 3: 3, 4: 2}, 0.3),
    BEAR: _hourly({h: 4 for h in range(6, 20)}, 0.4),
    "ranger": _hourly({h: 5 for h in range(9, 18)}, 0.0),
    "night": _hourly({21: 2, 22: 4, 23: 5, 0: 5, 1: 5, 2: 4, 3: 3}, 0.0),
    "blank": _hourly({h: 5 for h in range(9, 18)}, 0.5),
    "fire": _hourly({h: 5 for h in range(11, 18)}, 0.0),
}
MONTH_TEMP = (-12, -8, -1, 6, 12, 16, 20, 22, 17, 10, 1, -8)
HIBERNATING = {BEAR: (12, 1, 2, 3), BADGER: (12, 1, 2), RACCOON_DOG: (1, 2)}
GROUP = {SIKA: (1, 4), ROE: (1, 3), BOAR: (1, 6), BADGER: (1, 1), RACCOON_DOG: (1, 2), BEAR: (1, 1)}
CAMERA_MODELS = (
    # make (as written, NUL padded), model, strip style, serial prefix, JPEG quality
    ("RECONYX\x00\x00\x00\x00\x00\x00\x00\x00\x00", "HC600 HYPERFIRE\x00\x00\x00\x00\x00\x00\x00\x00\x00",
     "reconyx", "H600H", 90),
    ("RECONYX\x00\x00\x00\x00\x00\x00\x00\x00\x00", "PC900 PROFESSIONAL\x00\x00\x00\x00\x00\x00", "reconyx",
     "P900H", 90),
    ("Bushnell", "119876", "bushnell", "BN", 85),
    ("BROWNING", "BTC-8E-HP4", "browning", "BTC8E", 86),
)


@dataclass
class SeasonParams:
    """Everything a season can be told; any field can be given to ``simulate_season`` by name."""

    start: date = date(2024, 6, 1)
    spacing_m: float = 2000.0
    jitter_m: float = 250.0
    leopard_density_per_km2: float = 0.012
    leopard_lambda0: float = 0.06
    leopard_sigma_m: float = 2500.0
    tiger_density_per_km2: float = 0.006
    tiger_lambda0: float = 0.04
    tiger_sigma_m: float = 4000.0
    buffer_sigmas: float = 4.0
    cubs: int = 2
    new_leopard_arrival: float = 0.75
    prey_rates: dict[str, float] = field(default_factory=lambda: {
        SIKA: 0.15, ROE: 0.10, BOAR: 0.07, BADGER: 0.035, RACCOON_DOG: 0.04, BEAR: 0.025})
    blank_rate: float = 0.08
    ranger_rate: float = 0.008
    poacher_rate: float = 0.0015
    vehicle_rate: float = 0.001
    failed_fraction: float = 0.075
    burst: int = 3
    frame_size: tuple[int, int] = (1280, 720)
    workers: int = 2
    plot: PlotFrame = field(default_factory=PlotFrame)


@dataclass
class Camera:
    index: int
    deployment_id: str
    station: str
    info: CameraInfo
    heading: int
    scene_seed: int
    setup: datetime  # UTC
    retrieval: datetime  # UTC
    working_until: datetime  # UTC; < retrieval when the camera failed
    failed: bool = False
    reset_at: datetime | None = None  # UTC instant the clock jumped to 2000-01-01


@dataclass
class Station:
    id: str
    x: float
    y: float
    lat: float
    lon: float
    cameras: list[Camera] = field(default_factory=list)


@dataclass
class Animal:
    id: str
    species: str
    sex: str
    x: float
    y: float
    coat_seed: int
    age_class: str = "adult"
    mother_id: str | None = None
    arrival_day: int = 0
    in_density: bool = True
    captures: int = 0


@dataclass
class Burst:
    camera: Camera
    utc: datetime
    subjects: tuple[Subject, ...]
    event_kind: str | None = None
    windy: bool = False
    files: list[str] = field(default_factory=list)
    seed: int = 0
    sequence: str = ""


@dataclass
class SeasonSummary:
    """What was written and where; counts are of original card files (the copy not included)."""

    out: Path
    seed: int
    cameras: int
    stations: int
    days: int
    images: int
    bursts: int
    seconds: float
    images_per_second: float
    content: dict[str, int]
    alerts: dict[str, int]
    leopards_in_mask: int
    leopards_photographed: int
    tigers_in_mask: int
    tigers_photographed: int
    deployments_csv: Path
    cards: Path
    truth: Path
    mess: dict[str, str]


def _params(overrides: dict[str, object]) -> SeasonParams:
    names = {f.name for f in fields(SeasonParams)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise SeasonError(f"unknown season parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    p = SeasonParams(**overrides)  # type: ignore[arg-type]
    if isinstance(p.start, str):
        p.start = date.fromisoformat(p.start)
    return p


# --- design -------------------------------------------------------------------------------

def _design(cameras: int, days: int, seed: int, p: SeasonParams) -> list[Station]:
    rng = np.random.default_rng([seed, S_DESIGN])
    n_paired = cameras // 3 if cameras >= 2 else 0
    n_st = cameras - n_paired
    cols = math.ceil(math.sqrt(n_st * 1.25))
    rows = math.ceil(n_st / cols)
    cells = [(r, c) for r in range(rows) for c in range(cols)][:n_st]
    paired = set(rng.choice(n_st, size=n_paired, replace=False).tolist()) if n_paired else set()
    start_local = datetime.combine(p.start, datetime.min.time())
    stations = []
    serial = 0
    for i, (r, c) in enumerate(cells):
        x = (c - (cols - 1) / 2) * p.spacing_m + rng.normal(0, p.jitter_m)
        y = (r - (rows - 1) / 2) * p.spacing_m + rng.normal(0, p.jitter_m)
        lat, lon = p.plot.to_latlon(x, y)
        st = Station(f"S{i + 1:02d}", round(x, 1), round(y, 1), round(lat, 6), round(lon, 6))
        setup = start_local + timedelta(seconds=int(rng.uniform(9, 16) * 3600)) - VLADIVOSTOK
        retrieval = start_local + days * DAY + timedelta(seconds=int(rng.uniform(9, 16) * 3600)) - VLADIVOSTOK
        heading = int(rng.integers(0, 360))
        for j, letter in enumerate("AB"[: 2 if i in paired else 1]):
            make, model, style, prefix, q = CAMERA_MODELS[int(rng.choice(len(CAMERA_MODELS), p=[.45, .2, .2, .15]))]
            serial += 1
            sn = f"{prefix}{int(rng.integers(10, 99))}{serial:05d}"
            dep = f"LOL{p.start.year % 100:02d}-{st.id}{letter}"
            cam = Camera(
                index=len([c for s in stations for c in s.cameras]) + j,
                deployment_id=dep, station=st.id,
                info=CameraInfo(make, model, sn, f"{st.id}{letter}", style, q),
                heading=(heading + 180 * j) % 360,
                scene_seed=stable_seed(f"{seed}:{dep}"),
                setup=setup + timedelta(seconds=int(rng.uniform(0, 1200)) * j),
                retrieval=retrieval + timedelta(seconds=int(rng.uniform(0, 1200)) * j),
                working_until=retrieval,
            )
            st.cameras.append(cam)
        stations.append(st)
    all_cams = [c for s in stations for c in s.cameras]
    n_fail = min(len(all_cams) - 1, max(1, round(p.failed_fraction * len(all_cams)))) if len(all_cams) > 1 else 0
    for ci in rng.choice(len(all_cams), size=n_fail, replace=False):
        cam = all_cams[int(ci)]
        cam.failed = True
        cam.working_until = cam.setup + timedelta(seconds=int(rng.uniform(0.15, 0.6) * days * 86400))
    return stations


def _intervals(st: Station) -> list[tuple[datetime, datetime]]:
    return [(c.setup, c.working_until) for c in st.cameras]


def _usage(stations: list[Station], days: int, p: SeasonParams) -> np.ndarray:
    """Fraction of each local day on which at least one camera of the station worked."""
    t0 = datetime.combine(p.start, datetime.min.time()) - VLADIVOSTOK
    u = np.zeros((len(stations), days))
    for k, st in enumerate(stations):
        for s in range(days):
            a, b = t0 + s * DAY, t0 + (s + 1) * DAY
            pieces = sorted((max(a, x), min(b, y)) for x, y in _intervals(st) if min(b, y) > max(a, x))
            covered = timedelta(0)
            cur_a, cur_b = None, None
            for x, y in pieces:
                if cur_b is None or x > cur_b:
                    if cur_b is not None:
                        covered += cur_b - cur_a  # type: ignore[operator]
                    cur_a, cur_b = x, y
                else:
                    cur_b = max(cur_b, y)
            if cur_b is not None:
                covered += cur_b - cur_a  # type: ignore[operator]
            u[k, s] = round(covered / DAY, 6)
    return u


def _working(cam: Camera, t: datetime) -> bool:
    return cam.setup + timedelta(minutes=2) <= t < cam.working_until - timedelta(minutes=1)


def _time_in_day(rng: np.random.Generator, day0_utc: datetime, profile: np.ndarray,
                 cams: list[Camera]) -> datetime | None:
    """A time on that local day drawn from the activity profile, at which some camera worked."""
    for _ in range(60):
        h = int(rng.choice(24, p=profile))
        t = day0_utc + timedelta(hours=h, seconds=float(rng.uniform(0, 3600)))
        if any(_working(c, t) for c in cams):
            return t.replace(microsecond=0)
    lo = max(min(c.setup for c in cams) + timedelta(minutes=3), day0_utc)
    hi = min(max(c.working_until for c in cams) - timedelta(minutes=2), day0_utc + DAY)
    if hi <= lo:
        return None
    return (lo + (hi - lo) * float(rng.random())).replace(microsecond=0)


# --- animals ------------------------------------------------------------------------------

def _population(species: str, prefix: str, data: CaptureData, rng: np.random.Generator, seed: int) -> list[Animal]:
    animals = []
    for i, (x, y) in enumerate(data.centres):
        aid = f"{prefix}{i + 1:03d}"
        animals.append(Animal(aid, species, "F" if rng.random() < 0.5 else "M", round(float(x), 1),
                              round(float(y), 1), stable_seed(f"{seed}:{aid}")))
    totals = data.counts_all.sum(axis=(1, 2))
    for a, n in zip(animals, totals, strict=True):
        a.captures = int(n)
    return animals


@dataclass
class Visit:
    species: str
    group: list[Animal]
    station: int
    utc: datetime
    event_kind: str | None = None


def _marked_visits(data: CaptureData, animals: list[Animal], stations: list[Station], p: SeasonParams,
                   rng: np.random.Generator, rows: list[tuple[str, str, int, str, int]]) -> list[Visit]:
    t0 = datetime.combine(p.start, datetime.min.time()) - VLADIVOSTOK
    visits = []
    for i, s, k, n in data.rows():
        a = animals[i]
        rows.append((a.id, a.species, s + 1, stations[k].id, n))
        for _ in range(n):
            t = _time_in_day(rng, t0 + s * DAY, ACTIVITY[a.species], stations[k].cameras)
            if t is not None:
                visits.append(Visit(a.species, [a], k, t))
    return visits


def _leopards_and_tigers(stations: list[Station], usage: np.ndarray, days: int, seed: int, p: SeasonParams):
    traps = np.array([(s.x, s.y) for s in stations])
    rows: list[tuple[str, str, int, str, int]] = []
    out: dict[str, dict] = {}
    visits: list[Visit] = []
    animals: list[Animal] = []
    vis_rng = np.random.default_rng([seed, S_VISITS])
    for species, prefix, stream, d, lam, sig in (
        (LEOPARD, "PO_", S_LEOPARD, p.leopard_density_per_km2, p.leopard_lambda0, p.leopard_sigma_m),
        (TIGER, "PT_", S_TIGER, p.tiger_density_per_km2, p.tiger_lambda0, p.tiger_sigma_m),
    ):
        rng = np.random.default_rng([seed, stream])
        data = simulate_captures(traps, density_per_km2=d, sigma_m=sig, occasions=days, lambda0=lam,
                                 detector="count", buffer_m=p.buffer_sigmas * sig, usage=usage, seed=rng)
        pop = _population(species, prefix, data, rng, seed)
        animals += pop
        visits += _marked_visits(data, pop, stations, p, vis_rng, rows)
        out[species] = {"data": data, "animals": pop}
    # A mother with cubs: the leopard female photographed most; the cubs walk with her, so their
    # capture histories are hers (they are dependent young, outside the density model).
    leo = out[LEOPARD]["animals"]
    females = [a for a in leo if a.sex == "F"]
    if females and p.cubs > 0:
        mother = max(females, key=lambda a: (a.captures, -leo.index(a)))
        mother.age_class = "adult"
        rng = np.random.default_rng([seed, S_LEOPARD, 99])
        cubs = []
        for j in range(p.cubs):
            cid = f"{mother.id}c{j + 1}"
            cubs.append(Animal(cid, LEOPARD, "F" if rng.random() < 0.5 else "M", mother.x, mother.y,
                               stable_seed(f"{seed}:{cid}"), "juvenile", mother.id, 0, False, mother.captures))
        animals += cubs
        for v in visits:
            if v.group[0] is mother:
                v.group = [mother, *cubs]
        for row in [r for r in rows if r[0] == mother.id]:
            rows += [(c.id, LEOPARD, row[2], row[3], row[4]) for c in cubs]
    # A leopard nobody has seen before, settling late in the season near a (paired) station.
    arrival = int(p.new_leopard_arrival * days)
    if 0 < arrival < days:
        rng = np.random.default_rng([seed, S_NEW])
        paired = [k for k, s in enumerate(stations) if len(s.cameras) > 1] or list(range(len(stations)))
        k = int(rng.choice(paired))
        centre = np.array([[stations[k].x + rng.normal(0, 250), stations[k].y + rng.normal(0, 250)]])
        late_usage = usage.copy()
        late_usage[:, :arrival] = 0
        for _ in range(200):
            data = simulate_captures(traps, density_per_km2=0, sigma_m=p.leopard_sigma_m, occasions=days,
                                     lambda0=max(p.leopard_lambda0, 0.15), detector="count", usage=late_usage,
                                     centres=centre, seed=rng)
            if data.counts_all.sum() > 0:
                break
        aid = f"PO_{len(leo) + 1:03d}"
        newcomer = Animal(aid, LEOPARD, "M", round(float(centre[0, 0]), 1), round(float(centre[0, 1]), 1),
                          stable_seed(f"{seed}:{aid}"), "subadult", None, arrival, False, int(data.counts_all.sum()))
        animals.append(newcomer)
        new_visits = _marked_visits(data, [newcomer], stations, p, vis_rng, rows)
        if new_visits:
            first = min(new_visits, key=lambda v: v.utc)
            first.event_kind = "new-leopard"
        visits += new_visits
    return animals, visits, rows, out


# --- everything else that triggers a camera ---------------------------------------------

def _other_visits(stations: list[Station], usage: np.ndarray, days: int, seed: int, p: SeasonParams) -> list[Visit]:
    t0 = datetime.combine(p.start, datetime.min.time()) - VLADIVOSTOK
    rng = np.random.default_rng([seed, S_PREY])
    visits = []
    mult = {sp: rng.gamma(2.0, 0.5, len(stations)) for sp in p.prey_rates}
    for s in range(days):
        month = (p.start + timedelta(days=s)).month
        for k, st in enumerate(stations):
            if usage[k, s] <= 0:
                continue
            for sp, rate in p.prey_rates.items():
                if month in HIBERNATING.get(sp, ()):
                    continue
                for _ in range(rng.poisson(rate * mult[sp][k] * usage[k, s])):
                    t = _time_in_day(rng, t0 + s * DAY, ACTIVITY[sp], st.cameras)
                    if t is None:
                        continue
                    lo, hi = GROUP[sp]
                    n = int(rng.integers(lo, hi + 1))
                    group = [Animal("", sp, "M" if rng.random() < 0.4 else "F", 0, 0, 0) for _ in range(n)]
                    visits.append(Visit(sp, group, k, t))
    # people and vehicles
    rng = np.random.default_rng([seed, S_EVENTS])
    n_sd = len(stations) * days
    for kind, rate, profile, alert in (("ranger", p.ranger_rate, "ranger", None),
                                       ("poacher", p.poacher_rate, "night", "person-at-night"),
                                       ("vehicle", p.vehicle_rate, "night", "vehicle-at-night")):
        n = rng.poisson(rate * n_sd)
        if alert:
            n = max(1, n)
        for _ in range(n):
            for _try in range(50):
                k, s = int(rng.integers(len(stations))), int(rng.integers(1, days))
                t = _time_in_day(rng, t0 + s * DAY, ACTIVITY[profile], stations[k].cameras)
                if t is not None and any(_working(c, t) for c in stations[k].cameras) and (
                        alert is None or sun_elevation_deg(t, stations[k].lat, stations[k].lon) < -8):
                    break
            else:
                continue
            if kind == "vehicle":
                group = [Animal("", "vehicle", "", 0, 0, 0)]
            else:
                group = [Animal("", HUMAN, kind, 0, 0, 0) for _ in range(int(rng.integers(1, 3)))]
            visits.append(Visit(kind, group, k, t, alert))
    return visits


def _fire_bursts(stations: list[Station], days: int, seed: int, p: SeasonParams) -> list[Burst]:
    """A wildfire seen by one camera (smoke, then flames), and a smoke-only event elsewhere."""
    rng = np.random.default_rng([seed, S_EVENTS, 7])
    t0 = datetime.combine(p.start, datetime.min.time()) - VLADIVOSTOK
    cams = [c for s in stations for c in s.cameras]
    bursts = []
    plan = [("fire", [("smoke",), ("smoke",), ("fire", "smoke"), ("fire", "smoke")], 300)]
    if days >= 6 and len(cams) > 1:
        plan.append(("smoke", [("smoke",), ("smoke",)], 600))
    used: set[int] = set()
    for _kind, steps, gap in plan:
        for _try in range(100):
            ci = int(rng.integers(len(cams)))
            cam = cams[ci]
            s = int(rng.integers(1, days))
            t = _time_in_day(rng, t0 + s * DAY, ACTIVITY["fire"], [cam])
            if t is not None and ci not in used and _working(cam, t + gap * len(steps) * timedelta(seconds=1)):
                break
        else:
            continue
        used.add(ci)
        for j, kinds in enumerate(steps):
            subj = tuple(Subject(k) for k in kinds)
            bursts.append(Burst(cam, t + timedelta(seconds=gap * j), subj, "fire" if "fire" in kinds else "smoke"))
    return bursts


def _visit_bursts(visits: list[Visit], stations: list[Station], rng: np.random.Generator) -> list[Burst]:
    bursts = []
    for v in visits:
        st = stations[v.station]
        cams = [c for c in st.cameras if _working(c, v.utc)]
        first_flank = "left" if rng.random() < 0.5 else "right"
        for j, cam in enumerate(cams):
            flank = first_flank if cam.info.name.endswith("A") else ("right" if first_flank == "left" else "left")
            subjects = []
            for a in v.group:
                if v.species in (LEOPARD, TIGER):
                    subjects.append(Subject("animal", a.species, a.id, a.coat_seed, flank,
                                            0.55 if a.age_class == "juvenile" else 1.0))
                elif v.species in ("ranger", "poacher"):
                    subjects.append(Subject("human", HUMAN, None, None, flank, role=v.species))
                elif v.species == "vehicle":
                    subjects.append(Subject("vehicle", None, None, None, flank))
                else:
                    subjects.append(Subject("animal", a.species, None, None, flank, male=a.sex == "M"))
            t = v.utc + timedelta(seconds=float(rng.uniform(0, 3)) * j)
            bursts.append(Burst(cam, t.replace(microsecond=0), tuple(subjects), v.event_kind))
    return bursts


def _service_bursts(stations: list[Station], days: int, seed: int, p: SeasonParams) -> list[Burst]:
    """Walk tests at set-up and retrieval, and wind-blown vegetation (blanks)."""
    rng = np.random.default_rng([seed, S_BLANK])
    t0 = datetime.combine(p.start, datetime.min.time()) - VLADIVOSTOK
    bursts = []
    for st in stations:
        for cam in st.cameras:
            ranger = (Subject("human", HUMAN, None, None, "left", role="ranger"),)
            bursts.append(Burst(cam, cam.setup + timedelta(seconds=40), ranger))
            if not cam.failed:
                bursts.append(Burst(cam, cam.retrieval - timedelta(minutes=3), ranger))
            windiness = rng.gamma(1.5, 1 / 1.5)
            for s in range(days):
                for _ in range(rng.poisson(p.blank_rate * windiness)):
                    t = _time_in_day(rng, t0 + s * DAY, ACTIVITY["blank"], [cam])
                    if t is not None and _working(cam, t):
                        bursts.append(Burst(cam, t, (), None, windy=True))
    return bursts


# --- cards --------------------------------------------------------------------------------

def _camera_time(cam: Camera, utc: datetime) -> datetime:
    local = utc + VLADIVOSTOK
    if cam.reset_at is not None and utc >= cam.reset_at:
        return RESET_EPOCH + (utc - cam.reset_at)
    return local


def _phase(d: date) -> str:
    return "summer" if d.month in (5, 6, 7, 8) else ("autumn" if d.month in (9, 10) else "winter")


def _temperature(utc: datetime, rng: np.random.Generator) -> float:
    local = utc + VLADIVOSTOK
    m = MONTH_TEMP[local.month - 1]
    return m + 5 * math.cos((local.hour - 14) / 24 * 2 * math.pi) + rng.normal(0, 1.5)


def _frame_specs(b: Burst, st: Station, p: SeasonParams, rng: np.random.Generator) -> list[FrameSpec]:
    elev = sun_elevation_deg(b.utc, st.lat, st.lon)
    night = elev < -3
    temp = _temperature(b.utc, rng)
    moon = moon_phase(b.utc)
    specs = []
    for j in range(p.burst):
        t = b.utc + timedelta(seconds=j)
        specs.append(FrameSpec(
            subjects=b.subjects, camera=b.camera.info, camera_time=_camera_time(b.camera, t), night=night,
            sun_elevation=elev, temperature_c=round(temp, 1), moon=moon, scene_seed=b.camera.scene_seed,
            phase=_phase((b.utc + VLADIVOSTOK).date()), burst_seed=b.seed, frame_index=j, burst_len=p.burst,
            size=tuple(p.frame_size), windy=b.windy))  # type: ignore[arg-type]
    return specs


_COUNTER = None


def _init_worker(counter: object) -> None:
    """Worker start: one OpenCV thread per process (the pool is the parallelism), shared counter."""
    import cv2

    global _COUNTER
    cv2.setNumThreads(1)
    _COUNTER = counter


def _render_chunk(out: str, jobs: list[tuple[str, FrameSpec]]) -> list[tuple[str, list[ObjectTruth]]]:
    """Worker: render and write a run of frames (whole bursts of one camera)."""
    results = []
    for rel, spec in jobs:
        frame = render(spec)
        path = Path(out) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(frame.jpeg)
        os.replace(tmp, path)
        results.append((rel, frame.objects))
        if _COUNTER is not None:
            with _COUNTER.get_lock():  # type: ignore[attr-defined]
                _COUNTER.value += 1  # type: ignore[attr-defined]
    return results


def simulate_season(
    out: Path,
    *,
    cameras: int = 40,
    days: int = 120,
    seed: int = 1,
    progress: ProgressCallback | None = None,
    **params: object,
) -> SeasonSummary:
    """Write a whole simulated season to ``out`` (cards, deployments.csv, truth/); deterministic.

    ``params`` are any fields of ``SeasonParams`` (e.g. ``leopard_sigma_m=3000``,
    ``frame_size=(640, 360)``, ``workers=1``). Byte-identical output for the same arguments.
    """
    if cameras < 1:
        raise SeasonError("a season needs at least one camera (--cameras 1 or more)")
    if days < 2:
        raise SeasonError("a season needs at least two days (--days 2 or more)")
    p = _params(params)
    started = time.perf_counter()
    out = Path(out)
    if (out / "cards").exists() or (out / "truth").exists():
        raise SeasonError(f"{out} already holds a season (cards/ or truth/); give an empty or new folder")
    out.mkdir(parents=True, exist_ok=True)
    stations = _design(cameras, days, seed, p)
    cams = [c for s in stations for c in s.cameras]
    # The mess: which cameras get a reset clock, a truncated file, a duplicated card.
    mrng = np.random.default_rng([seed, S_MESS])
    order = [int(i) for i in mrng.permutation(len(cams))]
    healthy = [i for i in order if not cams[i].failed] or order
    reset_cam = cams[healthy[0]]
    others = [i for i in order if cams[i] is not reset_cam] or order
    trunc_cam = cams[others[0]]
    dup_cam = cams[others[1] if len(others) > 1 else others[0]]
    reset_cam.reset_at = reset_cam.setup + timedelta(days=float(mrng.uniform(0.3, 0.6) * days))
    reset_cam.reset_at = reset_cam.reset_at.replace(microsecond=0)
    usage = _usage(stations, days, p)
    animals, marked_visits, capture_rows, pops = _leopards_and_tigers(stations, usage, days, seed, p)
    visits = marked_visits + _other_visits(stations, usage, days, seed, p)
    brng = np.random.default_rng([seed, S_RENDER])
    bursts = _visit_bursts(visits, stations, brng) + _fire_bursts(stations, days, seed, p) + \
        _service_bursts(stations, days, seed, p)
    station_of = {s.id: s for s in stations}
    # Card order: each camera writes its bursts in time order, at least 10 s apart.
    by_cam: dict[str, list[Burst]] = {c.deployment_id: [] for c in cams}
    for b in sorted(bursts, key=lambda b: (b.camera.deployment_id, b.utc, b.event_kind or "", len(b.subjects))):
        lst = by_cam[b.camera.deployment_id]
        if lst and b.utc < lst[-1].utc + timedelta(seconds=p.burst + 10):
            b.utc = lst[-1].utc + timedelta(seconds=p.burst + 10)
        lst.append(b)
    jobs_by_cam: list[list[tuple[str, FrameSpec]]] = []
    meta: dict[str, tuple[Burst, int, datetime, datetime]] = {}
    frng = np.random.default_rng([seed, S_RENDER, 1])
    for cam in cams:
        n = 0
        jobs = []
        for bi, b in enumerate(by_cam[cam.deployment_id]):
            b.seed = stable_seed(f"{seed}:{cam.deployment_id}:{bi}")
            b.sequence = f"{cam.deployment_id}:{bi + 1:05d}"
            for j, spec in enumerate(_frame_specs(b, station_of[cam.station], p, frng)):
                n += 1
                folder, num = 100 + (n - 1) // 9999, (n - 1) % 9999 + 1
                rel = f"cards/{cam.deployment_id}/DCIM/{folder}MEDIA/IMG_{num:04d}.JPG"
                b.files.append(rel)
                jobs.append((rel, spec))
                meta[rel] = (b, j, b.utc + timedelta(seconds=j), spec.camera_time)  # type: ignore[assignment]
        jobs_by_cam.append(jobs)
    total = sum(len(j) for j in jobs_by_cam)
    # One task per camera (split only when very long): a worker then builds each camera's scene
    # once. Longest first, so two workers finish together.
    chunks = [jobs[i:i + 600] for jobs in jobs_by_cam for i in range(0, len(jobs), 600)]
    chunks.sort(key=lambda c: -len(c))
    objects: dict[str, list[ObjectTruth]] = {}
    if progress:
        progress(0, total)
    if p.workers <= 1:
        done = 0
        for ch in chunks:
            for rel, objs in _render_chunk(str(out), ch):
                objects[rel] = objs
                done += 1
                if progress and done % 10 == 0:
                    progress(done, total)
    else:
        ctx = multiprocessing.get_context("spawn")
        counter = ctx.Value("i", 0)
        with ProcessPoolExecutor(max_workers=p.workers, mp_context=ctx, initializer=_init_worker,
                                 initargs=(counter,)) as pool:
            pending = {pool.submit(_render_chunk, str(out), ch) for ch in chunks}
            while pending:
                finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for fut in finished:
                    for rel, objs in fut.result():
                        objects[rel] = objs
                if progress:
                    progress(min(counter.value, total), total)
    if progress:
        progress(total, total)
    # The mess on the cards.
    trunc_files = [f for b in by_cam[trunc_cam.deployment_id] for f in b.files]
    truncated = trunc_files[len(trunc_files) // 2] if trunc_files else ""
    if truncated:
        data = (out / truncated).read_bytes()
        (out / truncated).write_bytes(data[: int(len(data) * 0.55)])
    copy_dir = out / "cards" / f"{dup_cam.deployment_id}-copy"
    if (out / "cards" / dup_cam.deployment_id).exists():
        shutil.copytree(out / "cards" / dup_cam.deployment_id, copy_dir)
    mess = {
        "clock_reset_deployment": reset_cam.deployment_id,
        "clock_reset_at_utc": _iso(reset_cam.reset_at),
        "truncated_file": truncated,
        "duplicate_card": f"cards/{dup_cam.deployment_id}-copy",
        "duplicate_of": f"cards/{dup_cam.deployment_id}",
        "failed_cameras": ",".join(c.deployment_id for c in cams if c.failed),
    }
    counts = _write_truth(out, seed, cameras, days, p, stations, usage, animals, capture_rows, pops, by_cam, meta,
                          objects, truncated, mess)
    _write_deployments(out / "deployments.csv", stations, p)
    secs = time.perf_counter() - started
    leo = [a for a in animals if a.species == LEOPARD]
    tig = [a for a in animals if a.species == TIGER]
    return SeasonSummary(
        out=out, seed=seed, cameras=len(cams), stations=len(stations), days=days, images=total,
        bursts=sum(len(v) for v in by_cam.values()), seconds=round(secs, 2),
        images_per_second=round(total / secs, 1) if secs else 0.0, content=counts["content"],
        alerts=counts["alerts"], leopards_in_mask=len([a for a in leo if a.in_density]),
        leopards_photographed=len({r[0] for r in capture_rows if r[1] == LEOPARD}),
        tigers_in_mask=len(tig), tigers_photographed=len({r[0] for r in capture_rows if r[1] == TIGER}),
        deployments_csv=out / "deployments.csv", cards=out / "cards", truth=out / "truth", mess=mess)


# --- writing ------------------------------------------------------------------------------

def _iso(t: datetime | None) -> str:
    return "" if t is None else t.replace(tzinfo=None).isoformat() + "Z"


def _local_iso(t: datetime) -> str:
    return (t + VLADIVOSTOK).replace(tzinfo=None).isoformat() + "+10:00"


def _write_deployments(path: Path, stations: list[Station], p: SeasonParams) -> None:
    cols = ["deploymentID", "locationID", "locationName", "plot", "latitude", "longitude", "x_m", "y_m", "cameraID",
            "cameraMake", "cameraModel", "deploymentStart", "deploymentEnd", "utcOffset", "cameraHeading",
            "sensitive", "deploymentComments"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for st in stations:
            for cam in st.cameras:
                pair = " (paired: both flanks)" if len(st.cameras) > 1 else ""
                w.writerow([cam.deployment_id, st.id, f"Station {st.id}{pair}", p.plot.name, st.lat, st.lon, st.x, st.y,
                            cam.info.serial, cam.info.make.replace("\x00", ""), cam.info.model.replace("\x00", ""),
                            _local_iso(cam.setup), _local_iso(cam.retrieval), "+10:00", cam.heading, "true",
                            "camera found not working at retrieval" if cam.failed else ""])


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


PRIORITY = ("fire", "smoke", "vehicle", "human", "animal")


def _write_truth(out: Path, seed: int, cameras: int, days: int, p: SeasonParams, stations: list[Station],
                 usage: np.ndarray, animals: list[Animal], capture_rows: list[tuple[str, str, int, str, int]],
                 pops: dict[str, dict], by_cam: dict[str, list[Burst]],
                 meta: dict[str, tuple[Burst, int, datetime, datetime]], objects: dict[str, list[ObjectTruth]],
                 truncated: str, mess: dict[str, str]) -> dict[str, dict[str, int]]:
    truth = out / "truth"
    truth.mkdir(exist_ok=True)
    station_of = {s.id: s for s in stations}
    content_counts: dict[str, int] = {}
    alerts: dict[str, int] = {}
    img_rows, obj_rows = [], []
    for rel in sorted(meta, key=lambda r: (r.split("/")[1], r)):
        b, j, utc, cam_time = meta[rel]
        objs = objects.get(rel, [])
        kinds = {o.kind for o in objs}
        content = next((k for k in PRIORITY if k in kinds), "blank")
        main = [o for o in objs if o.kind == content]
        first = main[0] if main else None
        st = station_of[b.camera.station]
        night = sun_elevation_deg(b.utc, st.lat, st.lon) < -3
        event = ""
        if b.event_kind and ((b.event_kind in ("fire", "smoke") and kinds & {"fire", "smoke"}) or
                             (b.event_kind == "person-at-night" and "human" in kinds) or
                             (b.event_kind == "vehicle-at-night" and "vehicle" in kinds) or
                             (b.event_kind == "new-leopard" and "animal" in kinds)):
            event = "fire" if "fire" in kinds else b.event_kind
        content_counts[content] = content_counts.get(content, 0) + 1
        if event:
            alerts[event] = alerts.get(event, 0) + 1
        box = first.bbox if first else ("", "", "", "")
        img_rows.append([rel, b.camera.deployment_id, b.camera.station, b.sequence, j + 1, _iso(utc),
                         cam_time.strftime("%Y:%m:%d %H:%M:%S"), content,
                         first.scientific_name or "" if first else "", first.individual_id or "" if first else "",
                         len(main), first.flank or "" if first else "", *box, int(night), int(rel == truncated), event])
        for n, o in enumerate(objs):
            obj_rows.append([rel, n + 1, o.kind, o.scientific_name or "", o.individual_id or "", o.flank or "",
                             *o.bbox, o.occluded])
    _write_csv(truth / "images.csv", ["path", "deployment_id", "station", "sequence_id", "frame", "true_time_utc",
                                      "exif_time", "content", "scientific_name", "individual_id", "count", "flank",
                                      "bbox_x", "bbox_y", "bbox_width", "bbox_height", "night", "damaged",
                                      "event_kind"], img_rows)
    _write_csv(truth / "objects.csv", ["path", "object", "content", "scientific_name", "individual_id", "flank",
                                       "bbox_x", "bbox_y", "bbox_width", "bbox_height", "occluded_fraction"], obj_rows)
    _write_csv(truth / "animals.csv", ["individual_id", "scientific_name", "sex", "age_class", "mother_id", "x_m",
                                       "y_m", "latitude", "longitude", "arrival_day", "in_density_model", "captures",
                                       "coat_seed"],
               [[a.id, a.species, a.sex, a.age_class, a.mother_id or "", a.x, a.y,
                 *(round(v, 6) for v in p.plot.to_latlon(a.x, a.y)), a.arrival_day, str(a.in_density).lower(),
                 a.captures, a.coat_seed] for a in animals])
    _write_csv(truth / "captures.csv", ["individual_id", "scientific_name", "occasion", "detector", "count"],
               [list(r) for r in sorted(capture_rows, key=lambda r: (r[1], r[0], r[2], r[3]))])
    _write_csv(truth / "traps.csv", ["detector", "x_m", "y_m", "latitude", "longitude", "cameras"],
               [[s.id, s.x, s.y, s.lat, s.lon, len(s.cameras)] for s in stations])
    _write_csv(truth / "usage.csv", ["detector", *[str(i + 1) for i in range(days)]],
               [[s.id, *usage[k].tolist()] for k, s in enumerate(stations)])
    _write_csv(truth / "effort.csv", ["deployment_id", "station", "setup_utc", "working_until_utc", "retrieval_utc",
                                      "failed", "clock_reset_at_utc"],
               [[c.deployment_id, s.id, _iso(c.setup), _iso(c.working_until), _iso(c.retrieval),
                 str(c.failed).lower(), _iso(c.reset_at)] for s in stations for c in s.cameras])
    species = {}
    for sp, d in pops.items():
        data: CaptureData = d["data"]
        species[sp] = {
            "density_per_km2": data.density_per_km2, "lambda0": data.lambda0, "sigma_m": data.sigma_m,
            "detectfn": "HHN (hazard half-normal)", "detector": "count",
            "buffer_m": p.buffer_sigmas * data.sigma_m,
            "mask": asdict(data.mask), "mask_area_km2": round(data.mask.area_km2, 3),
            "animals_in_mask": len(d["animals"]), "animals_detected": int(len(data.detected)),
        }
    params = {
        "seed": seed, "cameras": cameras, "stations": len(stations), "days": days, "occasions": days,
        "occasion": "one local calendar day (00:00-24:00, UTC+10); occasion 1 is the set-up day",
        "season_start_local": p.start.isoformat(), "utc_offset": "+10:00",
        "detector_unit": "station (one or two cameras facing each other); usage = fraction of the day a camera "
                         "of the station worked (truth/usage.csv)",
        "species": species,
        "not_in_density": "cubs (mother_id set) share their mother's captures; the late-arriving leopard "
                          "(arrival_day > 0) breaks closure on purpose; both are in captures.csv, flagged in "
                          "animals.csv (in_density_model=false)",
        "plot": {"name": p.plot.name, "origin_latitude": p.plot.origin_lat, "origin_longitude": p.plot.origin_lon,
                 "projection": "equirectangular about the origin, x east / y north in metres",
                 "spacing_m": p.spacing_m},
        "prey_visit_rates_per_station_day": p.prey_rates, "blank_rate_per_camera_day": p.blank_rate,
        "frame_size": list(p.frame_size), "burst": p.burst, "mess": mess,
    }
    (truth / "params.json").write_text(json.dumps(params, indent=2, default=str) + "\n", encoding="utf-8")
    (truth / "mess.json").write_text(json.dumps(mess, indent=2) + "\n", encoding="utf-8")
    return {"content": content_counts, "alerts": alerts}

