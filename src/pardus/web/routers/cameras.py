"""The camera API: uploads and heartbeats, each camera with its own token.

    POST /api/v1/cameras/{id}/media       multipart: file=<JPEG or video>, seq=<camera sequence number>
                                          (or the raw bytes with Content-Type image/jpeg, seq in X-Camera-Seq)
    POST /api/v1/cameras/{id}/heartbeat   JSON: battery_pct, signal_dbm, temperature_c, free_storage_mb, ...

An upload's 201 (new) or 200 (already stored: a resend) comes only after the blob is fsynced and
its row (with its queue entry) committed.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from pardus.ingest.one import IngestError, ingest_file
from pardus.live.cameras import authenticate
from pardus.live.health import HeartbeatError, record_heartbeat, touch
from pardus.live.queue import enqueue, queue_counts
from pardus.people.accounts import Person
from pardus.store import Workspace
from pardus.store.models import Camera
from pardus.web.deps import AppState, app_state, optional_person, workspace
from pardus.web.problems import HTTPProblem
from pardus.web.schemas import Health, UploadReply
from pardus.web.upload import Hold, camera_seq, read_limited, read_upload

router = APIRouter(prefix="/api/v1", tags=["cameras"])
MAX_HEARTBEAT = 64 * 1024


def _camera(ws: Workspace, camera_id: str, authorization: str | None) -> None:
    with ws.db.session() as s:
        authenticate(s, camera_id, authorization)


@router.get("/health")
async def health(state: AppState = Depends(app_state), who: Person | None = Depends(optional_person)) -> Health:
    """Whether the server and its loops run, for anyone (a monitor); the queue's counts only for a
    signed-in person or a token (issue 19: they told strangers how busy the cameras are)."""
    counts = await run_in_threadpool(queue_counts, state.ws) if who is not None else None
    worker, deliveries, mqtt = (state.workers.get(k) for k in ("worker", "deliveries", "mqtt"))
    loops: dict[str, bool] = {}
    if worker is not None:
        loops |= worker.alive() | deliveries.alive()
    mqtt_status = mqtt.status() if mqtt is not None else None
    ok = all(loops.values()) and (mqtt_status is None or mqtt_status["connected"])
    return Health(ok=ok, pipeline=state.config.pipeline, ready=worker is None or worker.ready.is_set(),
                  queue=counts, processed=(worker.processed if worker is not None else 0) if who else None, loops=loops,
                  mqtt=mqtt_status)


@router.post("/cameras/{camera_id}/media", status_code=201, responses={200: {"model": UploadReply}})
async def upload(camera_id: str, request: Request, state: AppState = Depends(app_state)) -> JSONResponse:
    ws = state.ws
    # Who first, then the body: a stranger's 2 GB is refused before a byte of it is read.
    await run_in_threadpool(_camera, ws, camera_id, request.headers.get("authorization"))
    with Hold(state.upload_budget) as hold:  # the bytes count against the budget until they are stored
        return await _receive(camera_id, request, state, hold)


async def _receive(camera_id: str, request: Request, state: AppState, hold: Hold) -> JSONResponse:
    ws = state.ws
    data, fname, ftype, fields = await read_upload(request, state.config.max_upload_bytes, hold)
    seq = camera_seq(fields, request)

    def store() -> Any:
        res = ingest_file(ws, data, camera_id=camera_id, filename=fname, content_type=ftype, camera_seq=seq,
                          on_created=enqueue)
        with ws.db.session() as s:
            cam = s.get(Camera, camera_id)
            if cam is not None:
                touch(cam)
        return res

    try:
        res = await run_in_threadpool(store)
    except IngestError as exc:
        raise HTTPProblem(exc.status, exc.message) from exc
    worker = state.workers.get("worker")
    if worker is not None and res.created:
        worker.wake()
    reply = UploadReply(media_id=res.media_id, sha256=res.sha256, duplicate=not res.created,
                        deployment_id=res.deployment_id, seq=seq, note=res.note or None)
    return JSONResponse(reply.model_dump(exclude_none=True), status_code=201 if res.created else 200)


@router.post("/cameras/{camera_id}/heartbeat")
async def heartbeat(camera_id: str, request: Request, ws: Workspace = Depends(workspace)) -> dict[str, Any]:
    await run_in_threadpool(_camera, ws, camera_id, request.headers.get("authorization"))
    raw = b""
    async for chunk in read_limited(request, MAX_HEARTBEAT, overhead=0):
        raw += chunk
    try:
        values = json.loads(raw or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HTTPProblem(400, "the heartbeat must be UTF-8 JSON like {\"battery_pct\": 80}") from exc
    except RecursionError as exc:
        raise HTTPProblem(400, "the heartbeat is nested too deeply; send a flat JSON object") from exc
    if not isinstance(values, dict):
        raise HTTPProblem(400, "the heartbeat must be a JSON object like {\"battery_pct\": 80}")

    def store() -> dict[str, Any]:
        with ws.db.session() as s:
            cam = s.get(Camera, camera_id)
            assert cam is not None
            return record_heartbeat(s, cam, values)

    try:
        return {"ok": True, "health": await run_in_threadpool(store)}
    except HeartbeatError as exc:
        raise HTTPProblem(400, str(exc)) from exc
