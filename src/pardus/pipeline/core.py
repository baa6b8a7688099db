"""Stages and the runner that moves every media item through them, resumably.

A stage is a small object with a name, the model it runs (name and version) and two methods:
``process`` turns a batch of media into results without touching the database (so it can run in
worker processes, or on another machine), and ``write`` records one result in a session. The
runner keeps a ``StageState`` row per item, stage and model, so:

- a run killed at any moment continues where it stopped (items without a ``done`` state);
- one item that fails is recorded with its error and the rest go on;
- a newer model is a new state key, so re-running it keeps the older model's results;
- a stage that works on another stage's output (species and re-identification on the detector's
  boxes) has that input in its state key (``state_key``), so a new detector makes their results
  stale and the next run redoes them, once; ``prepare`` sets the old results aside (kept, marked
  superseded, out of every count) before the run.
"""

from __future__ import annotations

import hashlib
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import Session

from pardus.store import Workspace
from pardus.store.models import Media, StageState, utcnow

ProgressCallback = Callable[[int, int], None]


@dataclass
class ItemResult:
    """What a stage made of one media item; ``error`` set means it failed (and why)."""

    media_id: str
    payload: Any = None
    error: str | None = None


class Stage(Protocol):
    """One step of the pipeline (detect, classify, events, re-identify, alert)."""

    name: str

    @property
    def model_key(self) -> str:
        """Name and version of what runs, e.g. ``yolox-tiny@2022.05.28``; part of the state key."""
        ...

    def eligible(self) -> Select[tuple[str]]:
        """The media ids this stage applies to (e.g. photos and videos that are not damaged)."""
        ...

    def process(self, ws: Workspace, media_ids: Sequence[str]) -> Iterable[ItemResult]:
        """Compute results for a batch; must not write to the database."""
        ...

    def write(self, s: Session, result: ItemResult) -> None:
        """Record one successful result (detections, observations, ...)."""
        ...


class Executor(Protocol):
    """Where a stage's batches are computed; results come back to the caller, who writes them."""

    def map(self, ws: Workspace, stage: Stage, batches: Sequence[Sequence[str]]) -> Iterator[list[ItemResult]]:
        """Each batch's results, in any order (every batch exactly once)."""
        ...


class LocalExecutor:
    """This process, one batch after another (the default)."""

    def map(self, ws: Workspace, stage: Stage, batches: Sequence[Sequence[str]]) -> Iterator[list[ItemResult]]:
        for batch in batches:
            yield compute_batch(ws, stage, batch)


@dataclass
class StageRun:
    """Counts of one run of one stage, for the CLI and the benchmarks."""

    stage: str
    model: str
    done: int = 0
    failed: int = 0
    skipped_done_before: int = 0
    seconds: float = 0.0
    set_aside: int = 0  # earlier results superseded because their input changed (e.g. a new detector)
    errors: list[tuple[str, str]] = field(default_factory=list)
    deployments: set[str] = field(default_factory=set)  # the cameras whose photos this run wrote results for


STATE_KEY_LENGTH = 128  # stage_state.model is VARCHAR(128)


def keyed_on(model_key: str, input_key: str | None) -> str:
    """The state key of a stage whose results depend on another stage's output (``input_key``).

    The input is hashed, so the key stays within the column whatever the two names' lengths.
    """
    if input_key is None:
        return model_key
    tag = "|on:" + hashlib.sha1(input_key.encode()).hexdigest()[:12]
    if len(model_key) + len(tag) > STATE_KEY_LENGTH:
        return hashlib.sha1(model_key.encode()).hexdigest() + tag
    return model_key + tag


def state_key(stage: Stage) -> str:
    """What a stage's finished items are recorded under: its ``state_key`` if it has one (its
    model and its inputs), else its model key."""
    return str(getattr(stage, "state_key", None) or stage.model_key)


def pending_media(s: Session, stage: Stage, *, retry_failed: bool = False, rerun: bool = False) -> list[str]:
    """Eligible media ids that have no finished state for this stage and model, in time order;
    with ``rerun`` every eligible item (a person asked to redo the stage)."""
    finished = ["done", "failed"] if not retry_failed else ["done"]
    done_q = select(StageState.media_id).where(
        StageState.stage == stage.name, StageState.model == state_key(stage), StageState.status.in_(finished)
    )
    eligible = stage.eligible().subquery()
    q = select(Media.id).where(Media.id.in_(select(eligible.c[0])))
    if not rerun:
        q = q.where(Media.id.not_in(done_q))
    return list(s.scalars(q.order_by(Media.timestamp, Media.file_path)))


def record_state(s: Session, media_id: str, stage: Stage, status: str, error: str | None = None) -> None:
    key = state_key(stage)
    state = s.scalars(
        select(StageState).where(
            StageState.media_id == media_id, StageState.stage == stage.name, StageState.model == key
        )
    ).first()
    if state is None:
        state = StageState(media_id=media_id, stage=stage.name, model=key,
                           deployment_id=s.scalar(select(Media.deployment_id).where(Media.id == media_id)))
        s.add(state)
    state.status = status
    state.error = error
    state.updated = utcnow()


def compute_batch(ws: Workspace, stage: Stage, batch: Sequence[str]) -> list[ItemResult]:
    """The stage's results for one batch, without writing; a batch that raises fails item by item.

    This is the half an executor may run elsewhere (another process, a Ray worker)."""
    try:
        results = list(stage.process(ws, batch))
    except Exception as exc:  # noqa: BLE001 - a failed batch is recorded, item by item, not raised
        message = f"{type(exc).__name__}: {exc}"
        results = [ItemResult(m, error=message) for m in batch]
        traceback.print_exc()
    return results


def process_batch(ws: Workspace, stage: Stage, batch: Sequence[str]) -> list[ItemResult]:
    """Process one batch and record each result and its state in one commit; failures are per item."""
    return record_batch(ws, stage, compute_batch(ws, stage, batch))


def record_batch(ws: Workspace, stage: Stage, results: list[ItemResult]) -> list[ItemResult]:
    """Write a batch's results and their states in one commit: the one writer every executor uses,
    so the store's rules (state, idempotence, one result per item and model) live only here."""
    with ws.db.session() as s:
        for res in results:
            if res.error is None:
                try:
                    with s.begin_nested():
                        stage.write(s, res)
                except Exception as exc:  # noqa: BLE001 - one bad item must not stop the others
                    res.error = f"could not be recorded: {type(exc).__name__}: {exc}"
            record_state(s, res.media_id, stage, "done" if res.error is None else "failed", res.error)
    return results


def run_stage(
    ws: Workspace,
    stage: Stage,
    *,
    media_ids: Sequence[str] | None = None,
    batch_size: int = 16,
    retry_failed: bool = False,
    rerun: bool = False,
    progress: ProgressCallback | None = None,
    executor: Executor | None = None,
) -> StageRun:
    """Run ``stage`` over its pending media (or the given ones; every eligible one with ``rerun``);
    commit after every batch. ``executor`` computes the batches (here by default, or on a Ray
    cluster: :mod:`pardus.pipeline.executors`); the results are always written here."""
    t0 = time.perf_counter()
    run = StageRun(stage=stage.name, model=stage.model_key)
    prepare = getattr(stage, "prepare", None)
    if prepare is not None:
        run.set_aside = prepare(ws)  # results made on another stage's older output: kept, out of the counts
    with ws.db.session() as s:
        todo = pending_media(s, stage, retry_failed=retry_failed, rerun=rerun)
    if media_ids is not None:
        wanted = set(media_ids)
        todo = [m for m in todo if m in wanted]
    total = len(todo)
    batches = [todo[start : start + batch_size] for start in range(0, total, batch_size)]
    seen = 0
    for results in (executor or LocalExecutor()).map(ws, stage, batches):
        with ws.db.session() as s:
            run.deployments.update(d for d in s.scalars(
                select(Media.deployment_id).where(Media.id.in_([r.media_id for r in results])).distinct()) if d)
        for res in record_batch(ws, stage, results):
            if res.error is None:
                run.done += 1
            else:
                run.failed += 1
                run.errors.append((res.media_id, res.error))
        seen += len(results)
        if progress:
            progress(seen, total)
    finish = getattr(stage, "finish", None)
    if finish is not None and run.done:
        finish(ws)  # work over the whole store (e.g. repeated boxes), after the items are in
    run.seconds = time.perf_counter() - t0
    return run


STALE_INPUT = "stale-input"  # superseded_by of a machine result made on an input that has since changed


def set_aside_stale(ws: Workspace, *, classified_by: str, input_stage: str, input_key: str,
                    keep: ColumnElement[bool] | None = None) -> int:
    """Mark superseded the results of ``classified_by`` made on another input than ``input_key``
    (e.g. species calls on an older detector's boxes), for photos the current input has processed.

    They are kept, never deleted (a person may compare the two), and every count leaves superseded
    rows out. Results on the current input set aside by an earlier switch come back, so switching
    a detector back and forth redoes nothing. ``keep`` excludes rows that are a person's work (a
    decided re-id proposal). Returns how many were set aside.
    """
    from sqlalchemy import or_, update

    from pardus.store.models import Observation

    made_on = Observation.extra["boxes_from"].as_string()
    done = select(StageState.media_id).where(StageState.stage == input_stage, StageState.model == input_key,
                                             StageState.status == "done")
    mine = (Observation.classified_by == classified_by) & (Observation.observation_level == "media")
    with ws.db.session() as s:
        s.execute(update(Observation).where(mine, Observation.superseded_by == STALE_INPUT, made_on == input_key)
                  .values(superseded_by=None).execution_options(synchronize_session=False))
        stale = mine & Observation.superseded_by.is_(None) & Observation.media_id.in_(done) \
            & or_(made_on.is_(None), made_on != input_key)
        if keep is not None:
            stale = stale & ~keep
        n = s.execute(update(Observation).where(stale).values(superseded_by=STALE_INPUT)
                      .execution_options(synchronize_session=False)).rowcount
    return int(n or 0)
