"""The sensor API: an online sensor posts its readings with its own token.

    POST /api/v1/sensors/{id}/readings   JSON: {"readings": [{"time": "2024-05-01T06:30:00+10:00",
                                                              "kind": "pm25", "value": 35.2, "unit": "ug/m3"}]}
                                          (or one reading as the object itself)

The answer (200) says how many were stored, how many were stored already (a retry after a lost
answer stores nothing twice) and the alerts the sensor rules raised; a reading without a time zone
or with a value that is not a number refuses the whole post (400) with the reading named.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from pardus.alerts.notify import channels_from
from pardus.alerts.rules import load_rules
from pardus.store import Workspace
from pardus.telemetry.deliver import enqueue_scheduled
from pardus.telemetry.sensors import SensorError, accept_readings, authenticate, readings_of
from pardus.web.deps import AppState, app_state
from pardus.web.problems import HTTPProblem
from pardus.web.upload import read_limited

router = APIRouter(prefix="/api/v1", tags=["sensors"])
MAX_BODY = 1024 * 1024


def _store(state: AppState, sensor_id: str, authorization: str | None, items: list[Any]) -> dict[str, Any]:
    ws = state.ws
    rules = load_rules(state.config.rules_path or ws.settings.data_dir / "alert-rules.yaml")
    channels = channels_from(rules.channels)
    with ws.db.session() as s:
        posted = accept_readings(s, sensor_id, authorization, items, rules, channels)
    deliveries = state.workers.get("deliveries")
    if deliveries is not None:  # after the commit: the deliveries are pending in the store already
        enqueue_scheduled(ws, deliveries, posted.alerts, channels)
    return {"stored": posted.stored, "already": posted.already, "alerts": posted.alerts}


def _auth(ws: Workspace, sensor_id: str, authorization: str | None) -> None:
    with ws.db.session() as s:
        authenticate(s, sensor_id, authorization)


@router.post("/sensors/{sensor_id}/readings")
async def post_readings(sensor_id: str, request: Request, state: AppState = Depends(app_state)) -> dict[str, Any]:
    ws = state.ws
    # the token is checked before the body is read, as for cameras
    await run_in_threadpool(_auth, ws, sensor_id, request.headers.get("authorization"))
    raw = b""
    async for chunk in read_limited(request, MAX_BODY, overhead=0):
        raw += chunk
    try:
        body = json.loads(raw or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise HTTPProblem(400, "send UTF-8 JSON like {\"readings\": [{\"time\": ..., \"kind\": ..., "
                               "\"value\": ...}]}") from exc
    try:
        items = readings_of(body)
        return await run_in_threadpool(_store, state, sensor_id, request.headers.get("authorization"), items)
    except SensorError as exc:
        raise HTTPProblem(400, str(exc)) from exc
