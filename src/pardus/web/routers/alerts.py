"""The alerts API for rangers' tools and scripts, and the live stream the inbox page listens to.

    GET  /api/v1/alerts?status=open&kind=person&camera=C017      GET /api/v1/alerts/{id}
    GET  /api/v1/alerts/stream (Server-Sent Events, resumable with Last-Event-ID)
    POST /api/v1/alerts/{id}/ack {"note": ...}                  POST /api/v1/alerts/{id}/resolve {"outcome": ...}

Everyone signed in may read; acknowledging and resolving need the ranger or admin role. A viewer
is never sent the exact place of an animal at a sensitive location.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from pardus.alerts import lifecycle
from pardus.people.accounts import ACT_ON_ALERTS, Person
from pardus.store import Workspace
from pardus.store.models import Alert, AlertEvent
from pardus.web.deps import person, workspace
from pardus.web.problems import HTTPProblem
from pardus.web.schemas import AckIn, AlertDetail, AlertList, AlertOut, AlertStatus, ResolveIn

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])


def _events_since(ws: Workspace, after_id: int, exact: bool) -> list[dict[str, Any]]:
    with ws.db.session() as s:
        rows = s.execute(select(AlertEvent).where(AlertEvent.id > after_id).order_by(AlertEvent.id)
                         .limit(200)).scalars().all()
        if not rows:
            return []
        alerts = list(s.scalars(select(Alert).where(Alert.id.in_({ev.alert_id for ev in rows}))))
        payloads = {p["id"]: p for p in lifecycle.alert_payloads(s, alerts, exact_location=exact)}
        return [{"event_id": ev.id, "action": ev.action, "at": ev.at.isoformat(), "by": ev.by, "details": ev.details,
                 "alert": payloads.get(ev.alert_id)} for ev in rows]


def _last_event_id(ws: Workspace) -> int:
    with ws.db.session() as s:
        return int(s.scalar(select(AlertEvent.id).order_by(AlertEvent.id.desc()).limit(1)) or 0)


@router.get("")
async def list_alerts(status: AlertStatus | None = None, kind: str | None = Query(None, max_length=32),
                      camera: str | None = Query(None, max_length=64), limit: int = Query(100, ge=1, le=1000),
                      who: Person = Depends(person()), ws: Workspace = Depends(workspace)) -> AlertList:
    def q() -> list[dict[str, Any]]:
        with ws.db.session() as s:
            return lifecycle.alert_payloads(s, lifecycle.list_alerts(s, status, limit, kind=kind, camera_id=camera),
                                            exact_location=who.exact_places)

    try:
        return AlertList(alerts=[AlertOut(**a) for a in await run_in_threadpool(q)])
    except lifecycle.AlertError as exc:
        raise HTTPProblem(400, str(exc)) from exc


@router.get("/stream")
async def stream(request: Request, after: int | None = Query(None, ge=0), who: Person = Depends(person()),
                 ws: Workspace = Depends(workspace)) -> StreamingResponse:
    start = after
    if start is None and request.headers.get("last-event-id", "").isdigit():
        start = int(request.headers["last-event-id"][:18])
    cursor = start if start is not None else await run_in_threadpool(_last_event_id, ws)

    async def events() -> AsyncIterator[bytes]:
        nonlocal cursor
        yield b": pardus alert stream\n\n"
        idle = 0.0
        while not await request.is_disconnected():
            batch = await run_in_threadpool(_events_since, ws, cursor, who.exact_places)
            for ev in batch:
                cursor = ev["event_id"]
                yield f"id: {cursor}\nevent: {ev['action']}\ndata: {json.dumps(ev)}\n\n".encode()
            if not batch:
                await asyncio.sleep(0.25)
                idle += 0.25
                if idle >= 15:
                    idle = 0.0
                    yield b": keep-alive\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@router.get("/{alert_id}")
async def one_alert(alert_id: str, who: Person = Depends(person()), ws: Workspace = Depends(workspace)) -> AlertDetail:
    def q() -> dict[str, Any]:
        with ws.db.session() as s:
            alert = lifecycle.get_alert(s, alert_id)
            return {**lifecycle.alert_payload(s, alert, exact_location=who.exact_places),
                    "history": [{"action": e.action, "at": e.at.isoformat(), "by": e.by, "details": e.details}
                                for e in lifecycle.history(s, alert.id)]}

    try:
        return AlertDetail(**await run_in_threadpool(q))
    except lifecycle.AlertError as exc:
        raise HTTPProblem(404, str(exc)) from exc


def act_on_alert(ws: Workspace, alert_id: str, who: Person, action: str, outcome: str | None = None,
                 note: str | None = None) -> dict[str, Any]:
    """Acknowledge or resolve, shared by the API and the inbox page; a refusal says why (409 / 400)."""
    try:
        with ws.db.session() as s:
            if action == "ack":
                alert = lifecycle.acknowledge(s, alert_id, who.name, note)
            else:
                alert = lifecycle.resolve(s, alert_id, who.name, outcome or "", note)
            return lifecycle.alert_payload(s, alert, exact_location=who.exact_places)
    except lifecycle.AlertError as exc:
        status = 409 if "already" in str(exc) else 404 if str(exc).startswith("no alert") else 400
        raise HTTPProblem(status, str(exc)) from exc


@router.post("/{alert_id}/ack")
async def ack(alert_id: str, body: AckIn | None = None, who: Person = Depends(person(ACT_ON_ALERTS)),
              ws: Workspace = Depends(workspace)) -> AlertOut:
    note = body.note if body is not None else None
    return AlertOut(**await run_in_threadpool(act_on_alert, ws, alert_id, who, "ack", None, note))


@router.post("/{alert_id}/resolve")
async def resolve(alert_id: str, body: ResolveIn, who: Person = Depends(person(ACT_ON_ALERTS)),
                  ws: Workspace = Depends(workspace)) -> AlertOut:
    return AlertOut(**await run_in_threadpool(act_on_alert, ws, alert_id, who, "resolve", body.outcome, body.note))
