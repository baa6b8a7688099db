"""The sensor API: an online sensor posts its readings with its own token.

    POST /api/v1/sensors/{id}/readings   JSON: {"readings": [{"time": "2024-05-01T06:30:00+10:00",
                                                              "kind": "pm25", "value": 35.2, "unit": "ug/m3"}]}
                                          (or one reading as the object itself)

The answer (200) says how many were stored and how many were stored already (a retry after a lost
answer stores nothing twice); a reading without a time zone or with a value that is not a number
refuses the whole post (400) with the reading named.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from pardus.store import Workspace
from pardus.telemetry.sensors import MAX_BATCH, SensorError, authenticate, reading, record_readings
from pardus.web.deps import workspace
from pardus.web.problems import HTTPProblem
from pardus.web.upload import read_limited

router = APIRouter(prefix="/api/v1", tags=["sensors"])
MAX_BODY = 1024 * 1024


def _store(ws: Workspace, sensor_id: str, authorization: str | None, items: list[Any]) -> dict[str, int]:
    with ws.db.session() as s:
        authenticate(s, sensor_id, authorization)
        readings = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise SensorError(f"reading #{i + 1} must be an object with time, kind, value")
            try:
                readings.append(reading(item.get("time"), item.get("kind"), item.get("value"), item.get("unit")))
            except SensorError as exc:
                raise SensorError(f"reading #{i + 1}: {exc}") from None
        stored, already = record_readings(s, sensor_id, readings)
    return {"stored": stored, "already": already}


def _auth(ws: Workspace, sensor_id: str, authorization: str | None) -> None:
    with ws.db.session() as s:
        authenticate(s, sensor_id, authorization)


@router.post("/sensors/{sensor_id}/readings")
async def post_readings(sensor_id: str, request: Request, ws: Workspace = Depends(workspace)) -> dict[str, int]:
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
    items = body.get("readings") if isinstance(body, dict) and "readings" in body else [body]
    if not isinstance(items, list) or not items or len(items) > MAX_BATCH:
        raise HTTPProblem(400, f"'readings' must be a list of 1 to {MAX_BATCH} readings")
    try:
        return await run_in_threadpool(_store, ws, sensor_id, request.headers.get("authorization"), items)
    except SensorError as exc:
        raise HTTPProblem(400, str(exc)) from exc
