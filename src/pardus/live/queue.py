"""The live processing queue: every stored upload passes the pipeline, then the alert rules.

The queue is durable and lives in the store: ``ingest_file`` adds a ``StageState`` row
(stage ``live``, status ``pending``) in the same transaction as the photo's row, so an upload
that got its 2xx is queued even if the server dies the next instant. The worker moves each item

    pending --triage (people/vehicles, ~0.05 s) + alert rules--> triaged
            --full pipeline (default_stages(): day/night, detection, species, re-id ...) + rules--> done

always emptying ``pending`` before taking the next ``triaged`` item, so a poacher's photo jumps
the queue of ordinary frames. Each stage keeps its own state per photo, so after a SIGKILL the
restarted worker redoes only the unfinished step; alert raising is idempotent per photo and kind
(``raise_alert``), so nothing is processed or alerted twice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pardus.alerts.lifecycle import raise_alert
from pardus.alerts.notify import Channel, DeliveryWorker, channels_from, schedule
from pardus.alerts.rules import RuleSet, evaluate, media_facts
from pardus.live.health import check_view, offline_cameras, touch
from pardus.pipeline.core import Stage, process_batch, state_key
from pardus.store import Workspace
from pardus.store.models import Camera, Media, StageState, utcnow

log = logging.getLogger("pardus.live")

QUEUE_STAGE = "live"
QUEUE_MODEL = "queue"
OFFLINE_SWEEP_S = 30.0
REPEAT_SWEEP_S = 600.0
FULL_NICE = 10
BURST_GAP_S = 30.0


def enqueue(s: Session, media: Media) -> None:
    """Queue a just-stored photo, inside the transaction that stores it (``ingest_file(on_created=...)``)."""
    s.add(StageState(media_id=media.id, stage=QUEUE_STAGE, model=QUEUE_MODEL, status="pending",
                     deployment_id=media.deployment_id))


def queue_counts(ws: Workspace) -> dict[str, int]:
    from sqlalchemy import func

    with ws.db.session() as s:
        rows = s.execute(select(StageState.status, func.count()).where(StageState.stage == QUEUE_STAGE)
                         .group_by(StageState.status)).all()
    return {status: n for status, n in rows}


def run_items(ws: Workspace, stage: Stage, media_ids: Sequence[str]) -> None:
    """Run one stage over just these photos, skipping those it finished before (a restart).

    Unlike ``run_stage`` it never scans the whole store, and leaves whole-store ``finish`` work
    (repeat flagging) to the worker's periodic sweep: per live photo it would cost seconds.
    """
    with ws.db.session() as s:
        finished = set(s.scalars(select(StageState.media_id).where(
            StageState.media_id.in_(media_ids), StageState.stage == stage.name,
            StageState.model == state_key(stage), StageState.status.in_(["done", "failed"]))))
        eligible = set(s.scalars(stage.eligible().where(Media.id.in_(media_ids))))
    todo = [m for m in media_ids if m in eligible and m not in finished]
    if todo:
        process_batch(ws, stage, todo)


@dataclass
class LiveWorker:
    """Drains the queue; ``wake()`` is called by the upload endpoint so nothing waits for a poll."""

    ws: Workspace
    rules: RuleSet
    stages: list[Stage] = field(default_factory=list)
    triage: Stage | None = None
    deliveries: DeliveryWorker | None = None
    batch: int = 2  # alerts go out after each pair: a person must not wait for 7 other photos' triage

    def __post_init__(self) -> None:
        self.channels: list[Channel] = channels_from(self.rules.channels)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.ready = threading.Event()
        self._full_ready = threading.Event()
        self._full_wake = threading.Event()
        self._alert_lock = threading.Lock()
        self._triage_busy = threading.Event()
        self._threads: list[threading.Thread] = []
        self._last_offline = 0.0
        self._last_repeats = time.monotonic()
        self.processed = 0

    # --- the steps ------------------------------------------------------------------------

    def _take(self, status: str, limit: int) -> list[str]:
        with self.ws.db.session() as s:
            return list(s.scalars(
                select(StageState.media_id).where(StageState.stage == QUEUE_STAGE, StageState.status == status)
                .order_by(StageState.id).limit(limit)))

    def _mark(self, media_ids: Sequence[str], status: str) -> None:
        with self.ws.db.session() as s:
            for st in s.scalars(select(StageState).where(StageState.media_id.in_(media_ids),
                                                         StageState.stage == QUEUE_STAGE)):
                st.status, st.updated = status, utcnow()

    def alert_on(self, media_ids: Sequence[str], *, check_tamper: bool = False) -> list[str]:
        """Evaluate the rules on each photo; returns the ids of alerts created (already delivered-pending)."""
        created: list[tuple[str, list[Channel]]] = []
        window = timedelta(minutes=self.rules.window_minutes)
        # One writer of alerts at a time: the triage and the full thread must not both open
        # "the" alert of one camera and kind.
        with self._alert_lock, self.ws.db.session() as s:
            for mid in media_ids:
                media = s.get(Media, mid)
                if media is None:
                    continue
                thumb = None
                if media.thumbnail_key and self.ws.derived.exists(media.thumbnail_key):
                    thumb = self.ws.derived.get_bytes(media.thumbnail_key)
                facts = media_facts(s, mid, thumb)
                if facts is None:
                    continue
                hits = [(h.rule.kind, h.rule.name, h.rule.severity, h.evidence) for h in evaluate(self.rules, facts)]
                cam = s.get(Camera, facts.camera_id) if facts.camera_id else None
                if check_tamper and cam is not None and thumb is not None and self.rules.for_kind("camera-tampered"):
                    view = check_view(cam, thumb, facts.night)
                    if view.tampered:
                        rule = self.rules.for_kind("camera-tampered")[0]
                        hits.append(("camera-tampered", rule.name, rule.severity,
                                     {"reason": view.reason, "similarity": view.correlation, "spread": view.std}))
                for kind, rule_name, severity, evidence in hits:
                    self._raise(s, created, kind=kind, rule=rule_name, severity=severity, camera_id=facts.camera_id,
                                deployment_id=facts.deployment_id, media_id=mid, evidence=evidence, window=window)
                if facts.lonlat and any(h[0] in ("smoke", "fire") for h in hits) \
                        and self.rules.for_kind("combination"):
                    self._combine(s, created, facts.lonlat, mid)
        return self._deliver(created)

    def _combine(self, s: Session, created: list[tuple[str, list[Channel]]], lonlat: tuple[float, float],
                 media_id: str) -> None:
        """A camera's smoke photo can be the sign that completes a combination rule (a PM2.5 rise
        and a satellite pass already in): check it now, not at the next sensor reading."""
        from pardus.telemetry.combine import combine_at

        got = combine_at(s, self.rules, lon=lonlat[0], lat=lonlat[1], trigger=f"photo:{media_id}",
                         channels=self.channels)
        chans = [c for c in self.channels if c.wants("fire")]
        created.extend((alert_id, chans) for alert_id in got.created)

    def _raise(self, s: Session, created: list[tuple[str, list[Channel]]], **kw: Any) -> None:
        raised = raise_alert(s, **kw)
        if raised.created:
            chans = [c for c in self.channels if c.wants(kw["kind"])]
            schedule(raised.alert, chans)
            created.append((raised.alert.id, chans))

    def _deliver(self, created: list[tuple[str, list[Channel]]]) -> list[str]:
        """After the commit: hand the new alerts to the delivery worker (already pending in the store)."""
        if self.deliveries is not None:
            for alert_id, chans in created:
                self.deliveries.enqueue(alert_id, chans)
        return [a for a, _ in created]

    def _take_fair(self, limit: int) -> list[str]:
        """The new uploads to triage next: first frames of bursts before later frames, then oldest.

        When many cameras burst at once, the first frame of every burst is looked at before the
        second and third frames of any (a person in frame 1 of a burst is almost always in frames 2
        and 3 as well). A frame's place in its burst is the number of photos its camera sent in the
        ``BURST_GAP_S`` before it.
        """
        with self.ws.db.session() as s:
            rows = s.execute(
                select(StageState.media_id, Media.deployment_id, Media.imported)
                .join(Media, Media.id == StageState.media_id)
                .where(StageState.stage == QUEUE_STAGE, StageState.status == "pending")
                .order_by(StageState.id).limit(max(limit * 32, 256))).all()
            if not rows:
                return []
            since = min(r[2] for r in rows) - timedelta(seconds=BURST_GAP_S)
            recent: dict[str, list] = {}
            for dep, at in s.execute(select(Media.deployment_id, Media.imported).where(
                    Media.deployment_id.in_({r[1] for r in rows}), Media.imported >= since)):
                recent.setdefault(dep, []).append(at)
        gap = timedelta(seconds=BURST_GAP_S)

        def place(row: tuple) -> int:
            return sum(1 for at in recent.get(row[1], []) if row[2] - gap <= at < row[2])

        ranked = sorted(enumerate(rows), key=lambda ir: (place(ir[1]), ir[0]))
        return [r[0] for _, r in ranked[:limit]]

    def step_new(self) -> int:
        """Triage and alert the oldest new uploads (first frames of bursts first); returns how many."""
        ids = self._take_fair(self.batch)
        if not ids:
            return 0
        if self.triage is not None:
            run_items(self.ws, self.triage, ids)
        self.alert_on(ids, check_tamper=True)
        self._mark(ids, "triaged")
        return len(ids)

    def step_full(self) -> int:
        """Run the full pipeline on the oldest triaged upload (one at a time: new ones come first)."""
        ids = self._take("triaged", 1)
        if not ids:
            return 0
        for stage in self.stages:
            run_items(self.ws, stage, ids)
        self.alert_on(ids)
        self._mark(ids, "done")
        self.processed += len(ids)
        return len(ids)

    def sweep_offline(self) -> list[str]:
        """Raise "camera offline" for cameras silent past their interval (once per silence)."""
        rules = self.rules.for_kind("camera-offline")
        if not rules:
            return []
        created: list[tuple[str, list[Channel]]] = []
        with self.ws.db.session() as s:
            for cam, silent in offline_cameras(s):
                # Keyed by the moment it went silent: one alert per silence, however many sweeps see it.
                self._raise(s, created, kind="camera-offline", rule=rules[0].name, severity=rules[0].severity,
                            camera_id=cam.id, deployment_id=None, media_id=f"silence:{cam.last_seen:%Y%m%dT%H%M%S}",
                            evidence={"silent_s": round(silent), "last_seen": str(cam.last_seen),
                                      "expected_interval_s": cam.expected_interval_s,
                                      "health": dict(cam.health or {})},
                            window=timedelta(days=3650))
        return self._deliver(created)

    def drain(self, timeout_s: float = 600.0) -> int:
        """Process until the queue is empty (tests, `pardus live process`); returns items finished."""
        t0, n = time.monotonic(), 0
        while time.monotonic() - t0 < timeout_s:
            if self.step_new():
                continue
            if not self.step_full():
                break
            n += 1
        return n

    # --- the threads ----------------------------------------------------------------------
    # Two threads: triage (new uploads, alerts, sweeps) never waits behind a full detection, which
    # takes 0.4 s on a quiet 2-core machine and several seconds on a busy one. The full pipeline's
    # thread runs FULL_NICE steps below the process's OS priority so uploads and triage get the CPU first.

    def wake(self) -> None:
        self._triage_busy.set()
        self._wake.set()

    def alive(self) -> dict[str, bool]:
        """Each of its loops: still running? (the health endpoint reports them)."""
        return {t.name: t.is_alive() for t in self._threads}

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._triage_loop, name="live-triage", daemon=True),
                         threading.Thread(target=self._full_loop, name="live-full", daemon=True)]
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._full_wake.set()
        for t in self._threads:
            t.join(timeout=30)

    def _periodic(self) -> None:
        now = time.monotonic()
        if now - self._last_offline >= OFFLINE_SWEEP_S:
            self._last_offline = now
            self.sweep_offline()
        if now - self._last_repeats >= REPEAT_SWEEP_S:
            self._last_repeats = now
            for stage in self.stages:
                finish = getattr(stage, "finish", None)
                if finish is not None:
                    finish(self.ws)

    def warm(self) -> None:
        """Load every model now (an empty batch), so the first poacher does not wait for model loading."""
        for stage in [self.triage, *self.stages]:
            if stage is not None:
                list(stage.process(self.ws, []))

    def _run(self, step: Callable[[], int], wake: threading.Event, after: Callable[[], None] | None = None) -> None:
        while not self._stop.is_set():
            try:
                busy = step()
                if after is not None:
                    after()
            except Exception:  # noqa: BLE001 - the queue must keep running; the item stays queued
                log.exception("live queue step failed; retrying in 2 s")
                busy = 0
                self._stop.wait(2.0)
            if busy:
                self._full_wake.set()
            else:
                wake.wait(timeout=1.0)
                wake.clear()

    def _step_new_flagged(self) -> int:
        n = self.step_new()
        if not n:
            self._triage_busy.clear()
        return n

    def _step_full_yielding(self) -> int:
        """One full-pipeline item, but only while no new upload waits for triage: on 2 cores the
        triage of a burst of new uploads must have the CPU, not the detection of old ones."""
        while self._triage_busy.is_set() and not self._stop.is_set():
            self._stop.wait(0.05)
        return self.step_full()

    def _triage_loop(self) -> None:
        try:
            if self.triage is not None:
                list(self.triage.process(self.ws, []))
        except Exception:  # noqa: BLE001 - a model that cannot load fails its items, recorded per item
            log.exception("loading the triage model failed; items will record the error")
        self._full_ready.wait(timeout=300)
        self.ready.set()
        self._run(self._step_new_flagged, self._wake, self._periodic)

    def _full_loop(self) -> None:
        with contextlib.suppress(OSError):  # not permitted: run at the process's priority
            me = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, me, min(19, os.getpriority(os.PRIO_PROCESS, me) + FULL_NICE))
        try:
            for stage in self.stages:
                list(stage.process(self.ws, []))
        except Exception:  # noqa: BLE001
            log.exception("loading the pipeline models failed; items will record the error")
        self._full_ready.set()
        self._run(self._step_full_yielding, self._full_wake)


def seen(ws: Workspace, camera_id: str) -> None:
    with ws.db.session() as s:
        cam = s.get(Camera, camera_id)
        if cam is not None:
            touch(cam)
