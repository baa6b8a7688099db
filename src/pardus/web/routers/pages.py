"""The pages people work in: the rangers' alert inbox, the camera map, the season overview, photos.

Every page reads through the rooms (``alerts.lifecycle``, ``live.stations``, ``store.status``) and
shows what the signed-in person's role allows: a viewer sees the inbox without buttons and
sensitive places rounded; a ranger acknowledges and resolves.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlalchemy import select
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from pardus.alerts import lifecycle
from pardus.live import stations as st
from pardus.people.accounts import ACT_ON_ALERTS, Person
from pardus.store import Workspace
from pardus.store.models import Alert, Detection, Media
from pardus.store.status import season_overview
from pardus.web.deps import AppState, app_state, page_person, person, workspace
from pardus.web.problems import HTTPProblem
from pardus.web.render import render
from pardus.web.routers.alerts import act_on_alert

router = APIRouter(include_in_schema=False)
STATES = ("open", "new", "acknowledged", "resolved", "all")


@router.get("/")
async def home(who: Person = Depends(page_person())) -> Response:
    # Each role's daily work first: reviewers the review desk, everyone else the alerts.
    return RedirectResponse("/review" if who.role == "reviewer" else "/alerts", status_code=303)


# --- alerts -------------------------------------------------------------------------------------

def _inbox(ws: Workspace, who: Person, state: str, kind: str | None, camera: str | None,
           limit: int, *, choices: bool) -> dict[str, Any]:
    """The listed alerts; with ``choices`` also the filters' kinds and cameras (the whole page needs
    them, the live refresh of the list does not)."""
    if state not in STATES:
        raise HTTPProblem(400, f"state must be one of {', '.join(STATES)}, not {state[:40]!r}")
    with ws.db.session() as s:
        alerts = lifecycle.alert_payloads(
            s, lifecycle.list_alerts(s, None if state == "all" else state, limit, kind=kind or None,
                                     camera_id=camera or None), exact_location=who.exact_places)
        extra = {"kinds": lifecycle.alert_kinds(s),
                 "cameras": sorted(c for (c,) in s.execute(select(Alert.camera_id).distinct()) if c)} if choices else {}
    return {"alerts": alerts, **extra, "filters": {"state": state, "kind": kind or "", "camera": camera or ""},
            "can_act": who.may(ACT_ON_ALERTS)}


@router.get("/alerts")
async def inbox(request: Request, state: str = Query("open", max_length=20),
                kind: str | None = Query(None, max_length=32),
                camera: str | None = Query(None, max_length=64), who: Person = Depends(page_person()),
                ws: Workspace = Depends(workspace)) -> Response:
    ctx = await run_in_threadpool(lambda: _inbox(ws, who, state, kind, camera, 200, choices=True))
    return render(request, "alerts.html", {**ctx, "who": who, "page": "alerts"})


@router.get("/alerts/rows")
async def inbox_rows(request: Request, state: str = Query("open", max_length=20),
                     kind: str | None = Query(None, max_length=32), camera: str | None = Query(None, max_length=64),
                     who: Person = Depends(page_person()), ws: Workspace = Depends(workspace)) -> Response:
    ctx = await run_in_threadpool(lambda: _inbox(ws, who, state, kind, camera, 200, choices=False))
    return render(request, "_alert_rows.html", {**ctx, "who": who})


def _alert_detail(ws: Workspace, who: Person, alert_id: str) -> dict[str, Any]:
    with ws.db.session() as s:
        try:
            alert = lifecycle.get_alert(s, alert_id)
        except lifecycle.AlertError as exc:
            raise HTTPProblem(404, str(exc)) from exc
        payload = lifecycle.alert_payload(s, alert, exact_location=who.exact_places)
        events = lifecycle.history(s, alert.id)
        history = [{"action": e.action, "at": e.at.isoformat(), "by": e.by, "details": e.details or {}}
                   for e in events]
        sightings = [h for h in history if h["action"] == "sighting" and h["details"].get("media_id")]
        deliveries = [h for h in history if h["action"] == "delivery"]
    return {"alert": payload, "history": history, "sightings": sightings, "deliveries": deliveries,
            "can_act": who.may(ACT_ON_ALERTS), "outcomes": lifecycle.OUTCOMES,
            "tiles": None}


@router.get("/alerts/{alert_id}")
async def alert_page(request: Request, alert_id: str, who: Person = Depends(page_person()),
                     state: AppState = Depends(app_state)) -> Response:
    ctx = await run_in_threadpool(_alert_detail, state.ws, who, alert_id)
    ctx["tiles"] = state.config.map_tiles
    return render(request, "alert.html", {**ctx, "who": who, "page": "alerts"})


async def _act_page(request: Request, ws: Workspace, who: Person, alert_id: str, action: str,
                    outcome: str | None, note: str | None) -> Response:
    payload = await run_in_threadpool(act_on_alert, ws, alert_id, who, action, outcome, note)
    if request.headers.get("hx-request") == "true":
        ctx = await run_in_threadpool(_alert_detail, ws, who, payload["id"])
        return render(request, "_alert_work.html", {**ctx, "who": who})
    return RedirectResponse(f"/alerts/{payload['id']}", status_code=303)


@router.post("/alerts/{alert_id}/ack")
async def ack_page(request: Request, alert_id: str, note: str = Form("", max_length=lifecycle.MAX_NOTE),
                   who: Person = Depends(page_person(ACT_ON_ALERTS)), ws: Workspace = Depends(workspace)) -> Response:
    return await _act_page(request, ws, who, alert_id, "ack", None, note)


@router.post("/alerts/{alert_id}/resolve")
async def resolve_page(request: Request, alert_id: str, outcome: str = Form("", max_length=500),
                       note: str = Form("", max_length=lifecycle.MAX_NOTE),
                       who: Person = Depends(page_person(ACT_ON_ALERTS)),
                       ws: Workspace = Depends(workspace)) -> Response:
    return await _act_page(request, ws, who, alert_id, "resolve", outcome, note)


# --- photos ---------------------------------------------------------------------------------------

def _media(ws: Workspace, media_id: str) -> Media:
    if not media_id.isalnum() or len(media_id) > 64:
        raise HTTPProblem(404, "no such photo")
    with ws.db.session() as s:
        m = s.get(Media, media_id)
    if m is None:
        raise HTTPProblem(404, "no such photo")
    return m


def _bytes_response(data: bytes, mediatype: str) -> Response:
    return Response(data, media_type=mediatype, headers={"Cache-Control": "private, max-age=3600",
                                                         "X-Content-Type-Options": "nosniff"})


@router.get("/media/{media_id}/thumb")
async def thumb(media_id: str, _: Person = Depends(person()), ws: Workspace = Depends(workspace)) -> Response:
    m = await run_in_threadpool(_media, ws, media_id)
    if not m.thumbnail_key or not ws.derived.exists(m.thumbnail_key):
        raise HTTPProblem(404, "this photo has no thumbnail (the file could not be decoded at import)")
    return _bytes_response(await run_in_threadpool(ws.derived.get_bytes, m.thumbnail_key), "image/jpeg")


@router.get("/media/{media_id}/file")
async def original(media_id: str, who: Person = Depends(person()), ws: Workspace = Depends(workspace)) -> Response:
    m = await run_in_threadpool(_media, ws, media_id)
    if not m.sha256 or not ws.blobs.exists(m.sha256):
        raise HTTPProblem(404, "the original file of this photo is not in the store")
    if not who.exact_places and (m.file_mediatype or "").startswith("image/jpeg"):
        # A viewer gets the photo without its EXIF GPS block (issue 19: the original told anyone signed
        # in the exact place of the animal); the stored original is never changed.
        from pardus.ingest.exif import without_gps

        data = await run_in_threadpool(lambda: without_gps(ws.blobs.get_bytes(m.sha256 or "")))
        return _bytes_response(data, "image/jpeg")
    return FileResponse(ws.blobs.path(m.sha256), media_type=m.file_mediatype or "application/octet-stream",
                        headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"})


def _media_view(ws: Workspace, media_id: str) -> dict[str, Any]:
    m = _media(ws, media_id)
    with ws.db.session() as s:
        boxes = [{"category": d.category, "score": d.score, "x": d.x, "y": d.y, "w": d.w, "h": d.h,
                  "model": d.model_name}
                 for d in s.scalars(select(Detection).where(Detection.media_id == m.id, Detection.score >= 0.1)
                                    .order_by(Detection.score.desc()).limit(50))]
    return {"media": {"id": m.id, "file_name": m.file_name,
                      "timestamp": m.timestamp.isoformat() if m.timestamp else None,
                      "deployment_id": m.deployment_id, "image": (m.file_mediatype or "").startswith("image/"),
                      "width": m.width, "height": m.height}, "boxes": boxes}


@router.get("/media/{media_id}")
async def media_page(request: Request, media_id: str, who: Person = Depends(page_person()),
                     ws: Workspace = Depends(workspace)) -> Response:
    ctx = await run_in_threadpool(_media_view, ws, media_id)
    return render(request, "media.html", {**ctx, "who": who, "page": "alerts"})


# --- camera map -----------------------------------------------------------------------------------

@router.get("/map")
async def map_page(request: Request, who: Person = Depends(page_person()),
                   state: AppState = Depends(app_state)) -> Response:
    return render(request, "map.html", {"who": who, "page": "map", "tiles": state.config.map_tiles,
                                        "states": st.STATES})


def map_data(ws: Workspace, exact_places: bool) -> dict[str, Any]:
    with ws.db.session() as s:
        items = st.stations(s, exact_places=exact_places)
    return {"stations": [i.as_dict() for i in items],
            "plots": {k: [list(p) for p in v] for k, v in st.plot_outlines(items).items()}}


@router.get("/api/v1/map/stations", tags=["cameras"])
async def map_stations(who: Person = Depends(person()), ws: Workspace = Depends(workspace)) -> dict[str, Any]:
    """Every camera station with its place and health state, and each plot's outline."""
    return await run_in_threadpool(map_data, ws, who.exact_places)


@router.get("/map/stations/{deployment_id}")
async def station_panel(request: Request, deployment_id: str, who: Person = Depends(page_person()),
                        ws: Workspace = Depends(workspace)) -> Response:
    def q() -> Any:
        with ws.db.session() as s:
            return st.station_detail(s, deployment_id[:64], exact_places=who.exact_places)

    detail = await run_in_threadpool(q)
    if detail is None:
        raise HTTPProblem(404, f"no camera station {deployment_id[:64]!r} with a place on the map")
    return render(request, "_station.html", {"d": detail, "who": who})


# --- season overview, report, exports -----------------------------------------------------------

@router.get("/overview")
async def overview(request: Request, who: Person = Depends(page_person()),
                   ws: Workspace = Depends(workspace)) -> Response:
    def q() -> Any:
        with ws.db.session() as s:
            return season_overview(s)

    return render(request, "overview.html", {"o": await run_in_threadpool(q), "who": who, "page": "overview"})


_report_lock = asyncio.Lock()


@router.get("/reports/{plot}/{year}")
async def report_page(plot: str, year: int, fresh: bool = False, who: Person = Depends(page_person()),
                      ws: Workspace = Depends(workspace)) -> Response:
    """The plot-year report, built on first request (and again with ?fresh=1 after new reviews)."""
    from pardus.stats.report import ReportError, build_report

    if not 1990 <= year <= 2100:
        raise HTTPProblem(400, f"year {year} is outside 1990-2100")
    if len(plot) > 128:
        raise HTTPProblem(400, "the plot name is too long")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in plot).strip("._") or "plot"
    target = ws.settings.data_dir / "reports" / "web" / f"{safe}-{year}"
    page = target / "report.html"
    async with _report_lock:  # one report at a time: each is CPU-heavy on a field laptop
        if fresh or not page.exists():
            try:
                await run_in_threadpool(build_report, ws, plot, year, target)
            except ReportError as exc:
                raise HTTPProblem(400, str(exc)) from exc
    return FileResponse(page, media_type="text/html")


@router.get("/exports/camtrap-dp.zip")
async def export_camtrap_dp_zip(who: Person = Depends(page_person()), ws: Workspace = Depends(workspace)) -> Response:
    """The season as a Camtrap DP package; sensitive places rounded, as for any public copy."""
    from pardus.interop.camtrap_dp import CamtrapDPError, export_camtrap_dp

    tmp = Path(tempfile.mkdtemp(prefix="pardus-export-"))

    def build() -> Path:
        export_camtrap_dp(ws, tmp / "package", exact_coordinates=False)
        return Path(shutil.make_archive(str(tmp / "camtrap-dp"), "zip", tmp / "package"))

    try:
        archive = await run_in_threadpool(build)
    except CamtrapDPError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise HTTPProblem(400, str(exc)) from exc
    return FileResponse(archive, media_type="application/zip", filename="camtrap-dp.zip",
                        background=BackgroundTask(shutil.rmtree, tmp, True))
