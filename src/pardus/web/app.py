"""The web app and REST API (`pardus serve`): camera uploads and heartbeats, rangers' alerts.

Cameras::

    POST /api/v1/cameras/{id}/media       multipart: file=<JPEG or video>, seq=<camera sequence number>
                                          (or the raw bytes with Content-Type image/jpeg, seq in X-Camera-Seq)
    POST /api/v1/cameras/{id}/heartbeat   JSON: battery_pct, signal_dbm, temperature_c, free_storage_mb, ...

Rangers (``Authorization: Bearer <user token>``)::

    GET  /api/v1/alerts?status=open       GET /api/v1/alerts/{id}      GET /api/v1/alerts/stream (SSE)
    POST /api/v1/alerts/{id}/ack          POST /api/v1/alerts/{id}/resolve  {"outcome": "..."}

An upload's 201 (new) or 200 (already stored: a resend) comes only after the blob is fsynced and
its row (with its queue entry) committed. The size limit is enforced while the body streams in:
a 2 GB upload is cut off at the limit, never read into memory.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from pardus.alerts import lifecycle
from pardus.alerts.notify import DeliveryWorker, channels_from
from pardus.alerts.rules import load_rules
from pardus.ingest.one import IngestError, ingest_file
from pardus.live.cameras import AuthError, authenticate
from pardus.live.health import HeartbeatError, record_heartbeat, touch
from pardus.live.queue import LiveWorker, enqueue, queue_counts
from pardus.store import Workspace
from pardus.store.models import AlertEvent, Camera
from pardus.web.users import ACT_ON_ALERTS, authenticate_user

log = logging.getLogger("pardus.web")
MAX_UPLOAD_MB = 64.0
MULTIPART_OVERHEAD = 64 * 1024


class HTTPProblem(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


@dataclass
class LiveConfig:
    """What `pardus serve` was started with."""

    pipeline: bool = True
    rules_path: Path | None = None
    max_upload_bytes: int = int(MAX_UPLOAD_MB * (1 << 20))
    mqtt: bool = False
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    backoff_s: float = 1.0
    stages: list[Any] | None = None  # None: default_stages()
    extra: dict[str, Any] = field(default_factory=dict)


def _default_stages() -> tuple[list[Any], Any]:
    from pardus.live.triage import TriageStage
    from pardus.pipeline.stages import default_stages

    return default_stages(), (TriageStage() if TriageStage.available() else None)


async def _read_limited(request: Request, limit: int, overhead: int = MULTIPART_OVERHEAD) -> AsyncIterator[bytes]:
    """The body in chunks; past ``limit`` (+ room for multipart headers) it stops reading and refuses (413)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + overhead:
        raise HTTPProblem(413, f"the file is too large ({int(declared) / (1 << 20):.1f} MB); the limit is "
                               f"{limit / (1 << 20):.0f} MB (pardus serve --max-upload-mb)")
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit + overhead:
            raise HTTPProblem(413, f"the upload passed the limit of {limit / (1 << 20):.0f} MB; it was cut off "
                                   "and nothing was stored")
        yield chunk


async def _read_upload(request: Request, limit: int) -> tuple[bytes, str | None, str | None, dict[str, str]]:
    """(file bytes, file name, its content type, the other form fields), streamed under the limit."""
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        body = bytearray()
        async for chunk in _read_limited(request, limit):
            body += chunk
        if len(body) > limit:
            raise HTTPProblem(413, f"the file is larger than the limit of {limit / (1 << 20):.0f} MB")
        return bytes(body), request.headers.get("x-file-name"), ctype or None, {}
    from python_multipart import MultipartParser
    from python_multipart.multipart import parse_options_header

    _, params = parse_options_header(ctype)
    boundary = params.get(b"boundary")
    if not boundary:
        raise HTTPProblem(400, "multipart upload without a boundary; send the file as a form field named 'file'")
    parts: list[dict[str, Any]] = []
    cur: dict[str, Any] = {}
    header: dict[str, bytes] = {"field": b"", "value": b""}

    def on_part_begin() -> None:
        cur.clear()
        cur.update(headers={}, data=bytearray())

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header["value"] += data[start:end]

    def on_header_end() -> None:
        cur["headers"][header["field"].decode("latin-1").lower()] = header["value"]
        header["field"], header["value"] = b"", b""

    def on_part_data(data: bytes, start: int, end: int) -> None:
        cur["data"] += data[start:end]
        if len(cur["data"]) > limit:
            raise HTTPProblem(413, f"the file passed the limit of {limit / (1 << 20):.0f} MB; nothing was stored")

    def on_part_end() -> None:
        parts.append(dict(cur))

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_part_data": on_part_data, "on_part_end": on_part_end,
    })
    async for chunk in _read_limited(request, limit):
        parser.write(chunk)
    parser.finalize()
    fields: dict[str, str] = {}
    file: tuple[bytes, str | None, str | None] | None = None
    for part in parts:
        _, disp = parse_options_header(part["headers"].get("content-disposition", b""))
        name = disp.get(b"name", b"").decode()
        if b"filename" in disp or name == "file":
            if file is None:
                fname = disp.get(b"filename", b"").decode("utf-8", "replace") or None
                file = (bytes(part["data"]), fname, part["headers"].get("content-type", b"").decode() or None)
        else:
            fields[name] = bytes(part["data"]).decode("utf-8", "replace")
    if file is None:
        raise HTTPProblem(400, "no file in the upload: send it as the multipart field 'file'")
    return file[0], file[1], file[2], fields


def _seq(fields: dict[str, str], request: Request) -> int | None:
    raw = fields.get("seq") or request.headers.get("x-camera-seq") or request.query_params.get("seq")
    if raw in (None, ""):
        return None
    try:
        seq = int(str(raw))
    except ValueError as exc:
        raise HTTPProblem(400, f"seq must be the camera's whole sequence number, not {raw!r}") from exc
    if seq < 0 or seq > 2**31 - 1:
        raise HTTPProblem(400, f"seq {seq} is out of range (0 .. 2147483647)")
    return seq


def _durable_commits(ws: Workspace) -> None:
    """SQLite in WAL with synchronous=NORMAL survives a killed process but may lose the last commits
    on a power cut; a 2xx promises the photo is stored, so the server fsyncs every commit (FULL)."""
    if ws.db.engine.dialect.name != "sqlite":
        return
    from sqlalchemy import event

    def full(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA synchronous=FULL")
        cur.close()

    event.listen(ws.db.engine, "connect", full)
    ws.db.engine.dispose()  # connections opened before (migrations) are replaced by FULL ones


def create_app(ws: Workspace, config: LiveConfig | None = None) -> FastAPI:
    """The app over one workspace; with ``config.pipeline`` it runs the queue and deliveries too."""
    config = config or LiveConfig()
    _durable_commits(ws)
    rules = load_rules(config.rules_path or ws.settings.data_dir / "alert-rules.yaml")
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        ws.blobs.clean_tmp()
        deliveries = DeliveryWorker(ws, channels_from(rules.channels), backoff_s=config.backoff_s)
        worker = None
        if config.pipeline:
            stages, triage = (config.stages, None) if config.stages is not None else _default_stages()
            worker = LiveWorker(ws, rules, stages=stages, triage=triage, deliveries=deliveries)
            deliveries.recover()
            deliveries.start()
            worker.start()
        mqtt = None
        if config.mqtt:
            from pardus.live.mqtt import MqttGateway

            mqtt = MqttGateway(ws, host=config.mqtt_host, port=config.mqtt_port,
                               max_bytes=config.max_upload_bytes, on_stored=worker.wake if worker else None)
            mqtt.start()
        state.update(worker=worker, deliveries=deliveries, mqtt=mqtt)
        try:
            yield
        finally:
            if mqtt is not None:
                mqtt.stop()
            if worker is not None:
                worker.stop()
                deliveries.stop()

    app = FastAPI(title="Pardus", version="1", lifespan=lifespan)

    @app.exception_handler(HTTPProblem)
    async def _problem(_: Request, exc: HTTPProblem) -> JSONResponse:
        return JSONResponse({"error": exc.message, **exc.extra}, status_code=exc.status)

    @app.exception_handler(AuthError)
    async def _auth(_: Request, exc: AuthError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=headers)

    def _camera(camera_id: str, authorization: str | None) -> None:
        with ws.db.session() as s:
            authenticate(s, camera_id, authorization)

    @app.get("/api/v1/health")
    async def health() -> dict[str, Any]:
        counts = await run_in_threadpool(queue_counts, ws)
        worker = state.get("worker")
        return {"ok": True, "pipeline": config.pipeline, "ready": worker is None or worker.ready.is_set(),
                "queue": counts, "processed": worker.processed if worker is not None else 0}

    @app.post("/api/v1/cameras/{camera_id}/media")
    async def upload(camera_id: str, request: Request) -> JSONResponse:
        # Who first, then the body: a stranger's 2 GB is refused before a byte of it is read.
        await run_in_threadpool(_camera, camera_id, request.headers.get("authorization"))
        data, fname, ftype, fields = await _read_upload(request, config.max_upload_bytes)
        seq = _seq(fields, request)

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
        worker = state.get("worker")
        if worker is not None and res.created:
            worker.wake()
        body = {"media_id": res.media_id, "sha256": res.sha256, "stored": True, "duplicate": not res.created,
                "deployment_id": res.deployment_id, "seq": seq}
        if res.note:
            body["note"] = res.note
        return JSONResponse(body, status_code=201 if res.created else 200)

    @app.post("/api/v1/cameras/{camera_id}/heartbeat")
    async def heartbeat(camera_id: str, request: Request) -> dict[str, Any]:
        await run_in_threadpool(_camera, camera_id, request.headers.get("authorization"))
        raw = b""
        async for chunk in _read_limited(request, 64 * 1024, overhead=0):
            raw += chunk
        try:
            values = json.loads(raw or b"{}")
        except json.JSONDecodeError as exc:
            raise HTTPProblem(400, f"the heartbeat must be JSON ({exc.msg} at byte {exc.pos})") from exc
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

    def _ranger(request: Request, act: bool = False) -> str:
        with ws.db.session() as s:
            return authenticate_user(s, request.headers.get("authorization") or _query_token(request),
                                     ACT_ON_ALERTS if act else None).name

    @app.get("/api/v1/alerts")
    async def alerts(request: Request, status: str | None = None, limit: int = 100) -> dict[str, Any]:
        await run_in_threadpool(_ranger, request, True)

        def q() -> list[dict[str, Any]]:
            with ws.db.session() as s:
                return [lifecycle.alert_payload(s, a) for a in lifecycle.list_alerts(s, status, min(limit, 1000))]

        try:
            return {"alerts": await run_in_threadpool(q)}
        except lifecycle.AlertError as exc:
            raise HTTPProblem(400, str(exc)) from exc

    @app.get("/api/v1/alerts/stream")
    async def stream(request: Request, after: int | None = None) -> StreamingResponse:
        await run_in_threadpool(_ranger, request, True)
        start = after
        if start is None and request.headers.get("last-event-id", "").isdigit():
            start = int(request.headers["last-event-id"])

        def last_id() -> int:
            with ws.db.session() as s:
                return int(s.scalar(select(AlertEvent.id).order_by(AlertEvent.id.desc()).limit(1)) or 0)

        def since(after_id: int) -> list[dict[str, Any]]:
            with ws.db.session() as s:
                rows = s.execute(select(AlertEvent).where(AlertEvent.id > after_id).order_by(AlertEvent.id)
                                 .limit(200)).scalars().all()
                out = []
                for ev in rows:
                    alert = s.get(lifecycle.Alert, ev.alert_id)
                    out.append({"event_id": ev.id, "action": ev.action, "at": ev.at.isoformat(), "by": ev.by,
                                "details": ev.details,
                                "alert": lifecycle.alert_payload(s, alert) if alert is not None else None})
                return out

        cursor = start if start is not None else await run_in_threadpool(last_id)

        async def events() -> AsyncIterator[bytes]:
            nonlocal cursor
            yield b": pardus alert stream\n\n"
            idle = 0.0
            while not await request.is_disconnected():
                batch = await run_in_threadpool(since, cursor)
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

    @app.get("/api/v1/alerts/{alert_id}")
    async def one_alert(alert_id: str, request: Request) -> dict[str, Any]:
        await run_in_threadpool(_ranger, request, True)

        def q() -> dict[str, Any]:
            with ws.db.session() as s:
                alert = lifecycle._get(s, alert_id)
                return {**lifecycle.alert_payload(s, alert),
                        "history": [{"action": e.action, "at": e.at.isoformat(), "by": e.by, "details": e.details}
                                    for e in lifecycle.history(s, alert.id)]}

        try:
            return await run_in_threadpool(q)
        except lifecycle.AlertError as exc:
            raise HTTPProblem(404, str(exc)) from exc

    async def _act(alert_id: str, request: Request, action: str) -> dict[str, Any]:
        who = await run_in_threadpool(_ranger, request, True)
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError as exc:
            raise HTTPProblem(400, "the body must be JSON, e.g. {\"outcome\": \"false alarm\"}") from exc

        def do() -> dict[str, Any]:
            with ws.db.session() as s:
                if action == "ack":
                    alert = lifecycle.acknowledge(s, alert_id, who, body.get("note"))
                else:
                    alert = lifecycle.resolve(s, alert_id, who, str(body.get("outcome") or ""))
                return lifecycle.alert_payload(s, alert)

        try:
            return await run_in_threadpool(do)
        except lifecycle.AlertError as exc:
            raise HTTPProblem(409 if "already" in str(exc) else 400, str(exc)) from exc

    @app.post("/api/v1/alerts/{alert_id}/ack")
    async def ack(alert_id: str, request: Request) -> dict[str, Any]:
        return await _act(alert_id, request, "ack")

    @app.post("/api/v1/alerts/{alert_id}/resolve")
    async def resolve(alert_id: str, request: Request) -> dict[str, Any]:
        return await _act(alert_id, request, "resolve")

    app.state.pardus = state
    return app


def _query_token(request: Request) -> str | None:
    """Browsers' EventSource cannot send headers: the SSE stream also takes ?token=."""
    token = request.query_params.get("token")
    return f"Bearer {token}" if token else None
