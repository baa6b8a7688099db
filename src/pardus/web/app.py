"""The web app (`pardus serve`): the camera API, the alerts API and the pages people work in.

One FastAPI app over one workspace. Routers (``pardus.web.routers``) only translate between HTTP
and the rooms' functions; who someone is comes from ``pardus.web.deps``; every refusal is a clear
message from ``pardus.web.problems``. Pages are Jinja2 templates with htmx for partial updates and
Leaflet for maps, both vendored in ``static/vendor`` (no request leaves the machine).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from pardus.alerts.notify import DeliveryWorker, channels_from
from pardus.alerts.rules import load_rules
from pardus.live.queue import LiveWorker
from pardus.people.throttle import Guards
from pardus.store import Workspace
from pardus.web import problems, render
from pardus.web.deps import AppState, LiveConfig
from pardus.web.routers import alerts, auth, cameras, individuals, pages, review, sensors, telemetry

__all__ = ["LiveConfig", "create_app"]
log = logging.getLogger("pardus.web")
STATIC = Path(__file__).with_name("static")


def _default_stages() -> tuple[list[Any], Any]:
    from pardus.live.triage import TriageStage
    from pardus.pipeline.stages import default_stages

    return default_stages(), (TriageStage() if TriageStage.available() else None)


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
    state = AppState(ws=ws, config=config)

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
        mqtt = sensor_mqtt = None
        if config.mqtt:
            from pardus.live.mqtt import MqttGateway
            from pardus.telemetry.mqtt import SensorGateway

            mqtt = MqttGateway(ws, broker=config.broker,
                               max_bytes=config.max_upload_bytes, on_stored=worker.wake if worker else None)
            mqtt.start()
            sensor_mqtt = SensorGateway(ws, broker=config.broker, rules_path=config.rules_path,
                                        deliveries=deliveries)
            sensor_mqtt.start()
        state.workers.update(worker=worker, deliveries=deliveries, mqtt=mqtt, sensor_mqtt=sensor_mqtt)
        try:
            yield
        finally:
            if mqtt is not None:
                mqtt.stop()
            if sensor_mqtt is not None:
                sensor_mqtt.stop()
            if worker is not None:
                worker.stop()
                deliveries.stop()

    app = FastAPI(title="Pardus", version="1", lifespan=lifespan,
                  description="Camera traps to a live monitoring system: camera uploads, alerts, the park's pages.")
    app.state.pardus = state
    app.state.guards = Guards.default()  # wrong passwords and device tokens counted (people.throttle)
    problems.install(app, render.render_error)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in (cameras.router, alerts.router, auth.router, pages.router, individuals.router, review.router,
                   sensors.router, telemetry.router):
        # camera and sensor APIs: wrong tokens are counted, past a limit answered 429 (routers.auth)
        guarded = router in (cameras.router, sensors.router)
        app.include_router(router, dependencies=[Depends(auth.count_token_failures)] if guarded else None)
    return app
