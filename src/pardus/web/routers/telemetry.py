"""Tracks, fire hotspots and sensors in the web app: the map's layers, an individual's collar track,
the sensors' pages with their plots.

    GET /api/v1/map/layers?from=2024-03-01&to=2024-06-01   tracks, hotspots, sensors for the camera map
    GET /api/v1/individuals/{code}/track                    the linked collars' tracks of one individual
    GET /sensors                                            every sensor, its place and last report
    GET /sensors/{id}?days=30                               a sensor's readings, one plot per kind
    GET /sensors/{id}/plot.svg?kind=pm25&days=30            one plot as an SVG image (the map's popups)

Only translation: the values come from ``pardus.telemetry.layers`` and ``pardus.telemetry.sensors``,
places as the person's role may see them (a viewer sees tracks rounded, as sensitive cameras are).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from pardus.people.accounts import Person
from pardus.store import Workspace
from pardus.store.models import Individual, Sensor, SensorReading
from pardus.telemetry import layers
from pardus.telemetry.plot import series_svg
from pardus.telemetry.sensors import ID_RE, READING_KIND_RE, series
from pardus.web.deps import page_person, person, workspace
from pardus.web.problems import HTTPProblem
from pardus.web.render import render

router = APIRouter()
MAX_DAYS = 3660
CODE_MAX = 32


def _day(value: str | None, what: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.combine(date.fromisoformat(value[:10]), datetime.min.time(), UTC)
    except ValueError:
        raise HTTPProblem(400, f"{what} must be a day like 2024-03-01, not {value[:20]!r}") from None


@router.get("/api/v1/map/layers", tags=["telemetry"])
async def map_layers(start: str | None = Query(None, alias="from", max_length=32),
                     end: str | None = Query(None, alias="to", max_length=32),
                     max_points: int = Query(layers.DEFAULT_MAX_POINTS, ge=10, le=50_000),
                     who: Person = Depends(person()), ws: Workspace = Depends(workspace)) -> dict[str, Any]:
    """Collar tracks (good fixes; rounded to 0.1° for roles without exact places), satellite fire
    hotspots near the park and the sensors, each point with its instant in Unix seconds; ``to`` is
    the last day included."""
    t0, t1 = _day(start, "from"), _day(end, "to")
    if t1 is not None:
        t1 += timedelta(days=1)
    if t0 is not None and t1 is not None and t1 <= t0:
        raise HTTPProblem(400, "'to' must not be before 'from'")

    def q() -> dict[str, Any]:
        with ws.db.session() as s:
            return layers.map_layers(s, exact_places=who.exact_places, start=t0, end=t1,
                                     max_points=max_points).as_dict()

    return await run_in_threadpool(q)


@router.get("/api/v1/individuals/{code}/track", tags=["telemetry"])
async def individual_track(code: str, who: Person = Depends(person()),
                           ws: Workspace = Depends(workspace)) -> dict[str, Any]:
    """The tracks of the collars linked to this individual (and to records merged into it)."""
    if not code or len(code) > CODE_MAX:
        raise HTTPProblem(404, "no such individual")

    def q() -> dict[str, Any] | None:
        with ws.db.session() as s:
            ind = s.scalars(select(Individual).where(Individual.code == code)).first()
            if ind is None:
                return None
            trs = layers.track_layers(s, exact_places=who.exact_places, individual_id=ind.id)
        return {"code": ind.code, "tracks": [t.__dict__ for t in trs]}

    found = await run_in_threadpool(q)
    if found is None:
        raise HTTPProblem(404, f"no individual {code!r}")
    return found


# --- sensors' pages -------------------------------------------------------------------------------

@router.get("/sensors", include_in_schema=False)
async def sensors_page(request: Request, who: Person = Depends(page_person()),
                       ws: Workspace = Depends(workspace)) -> Response:
    def q() -> list[dict[str, Any]]:
        with ws.db.session() as s:
            counts = dict(s.execute(select(SensorReading.source_id, func.count())
                                    .where(SensorReading.source_id.in_(select(Sensor.id)))
                                    .group_by(SensorReading.source_id)).all())
            return [{"id": x.id, "kind": x.kind, "name": x.name, "latitude": x.latitude, "longitude": x.longitude,
                     "last_seen": x.last_seen, "readings": int(counts.get(x.id, 0)),
                     "online": bool(x.token_hash and not x.token_revoked)}
                    for x in s.scalars(select(Sensor).order_by(Sensor.id))]

    return render(request, "sensors.html", {"sensors": await run_in_threadpool(q), "who": who, "page": "map"})


def _sensor_id(value: str) -> str:
    if not ID_RE.match(value):
        raise HTTPProblem(404, "no such sensor")
    return value


def _period(s: Any, sensor: Sensor, days: int) -> tuple[datetime, datetime] | None:
    """The ``days`` ending at the sensor's newest reading (a historical series is shown, not an empty
    'last 30 days')."""
    newest = s.scalar(select(func.max(SensorReading.timestamp)).where(SensorReading.source_id == sensor.id))
    if newest is None:
        return None
    return newest - timedelta(days=days), newest + timedelta(seconds=1)


def _plots(ws: Workspace, sensor_id: str, days: int, kind: str | None = None) -> dict[str, Any] | None:
    with ws.db.session() as s:
        sensor = s.get(Sensor, sensor_id)
        if sensor is None:
            return None
        info = {"id": sensor.id, "kind": sensor.kind, "name": sensor.name, "latitude": sensor.latitude,
                "longitude": sensor.longitude, "last_seen": sensor.last_seen,
                "online": bool(sensor.token_hash and not sensor.token_revoked)}
        period = _period(s, sensor, days)
        rows = series(s, sensor_id, kind, *period) if period else []
    by_kind: dict[str, list[tuple[datetime, float | None, str | None]]] = {}
    for ts, k, v, unit in rows:
        by_kind.setdefault(k, []).append((ts, v, unit))
    plots = []
    for k, pts in sorted(by_kind.items()):
        unit = next((u for _, _, u in reversed(pts) if u), None)
        svg = series_svg([p[0] for p in pts], [p[1] for p in pts], title=f"{sensor_id} {k}", unit=unit)
        last = pts[-1]
        plots.append({"kind": k, "unit": unit, "svg": svg, "n": len(pts), "last": last[1], "last_at": last[0],
                      "text": None if last[1] is not None else "text readings"})
    recent = [{"time": ts, "kind": k, "value": v, "unit": u} for ts, k, v, u in rows[-20:]][::-1]
    return {"sensor": info, "plots": plots, "recent": recent, "days": days,
            "period": period}


@router.get("/sensors/{sensor_id}", include_in_schema=False)
async def sensor_page(request: Request, sensor_id: str, days: int = Query(30, ge=1, le=MAX_DAYS),
                      who: Person = Depends(page_person()), ws: Workspace = Depends(workspace)) -> Response:
    ctx = await run_in_threadpool(_plots, ws, _sensor_id(sensor_id), days)
    if ctx is None:
        raise HTTPProblem(404, f"no sensor {sensor_id!r}; `pardus sensors list` shows them")
    return render(request, "sensor.html", {**ctx, "who": who, "page": "map"})


@router.get("/sensors/{sensor_id}/plot.svg", include_in_schema=False)
async def sensor_plot(sensor_id: str, kind: str = Query(..., max_length=32), days: int = Query(30, ge=1, le=MAX_DAYS),
                      _: Person = Depends(person()), ws: Workspace = Depends(workspace)) -> Response:
    if not READING_KIND_RE.match(kind):
        raise HTTPProblem(400, "kind is a reading kind such as pm25")
    ctx = await run_in_threadpool(_plots, ws, _sensor_id(sensor_id), days, kind)
    if ctx is None:
        raise HTTPProblem(404, f"no sensor {sensor_id!r}")
    svg = ctx["plots"][0]["svg"] if ctx["plots"] else series_svg([], [], title=f"{sensor_id} {kind}")
    return Response(svg, media_type="image/svg+xml",
                    headers={"Cache-Control": "private, max-age=60", "X-Content-Type-Options": "nosniff"})
