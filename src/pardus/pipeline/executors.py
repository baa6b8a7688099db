"""Executors: where a stage's batches are computed. Here (``LocalExecutor``, the default) or on a
Ray cluster (``RayExecutor``: `pardus process --executor ray [--address auto|ray://host:10001]`).

On Ray each worker is an actor that holds its own copy of the stage, so a detector, a species head
or the re-id catalogue loads once per worker, not once per batch; it opens the same store (the
database URL and blob store of the settings: on a cluster both must be reachable from every
machine, see docs/scale.md) and reads the photos itself. Only results travel back, and the
driver writes them with the same ``record_batch`` as a local run, so stage state, idempotence and
"one result per item and model" stay in one place, and the catalogue has a single writer.

Faults: an actor whose process dies (killed, out of memory) is restarted by Ray and its unfinished
batch is run again (``max_restarts``/``max_task_retries``); a batch that still fails comes back as
per-item errors, recorded like any failure. A driver killed mid-run loses only results not yet
written: their items have no ``done`` state, so the next `pardus process` computes them again.
Nothing is written twice: the driver writes each batch once, and a stage's ``write`` replaces.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pardus.config import Settings
from pardus.pipeline.core import ItemResult, Stage, compute_batch
from pardus.store import Workspace

log = logging.getLogger("pardus.executors")
EXECUTORS = ("local", "ray")


class ExecutorError(RuntimeError):
    """The cluster cannot be reached or used; the message says what to check."""


class _StageWorker:
    """One Ray worker: the store opened once, the stage (and so its models) loaded once."""

    def __init__(self, settings: Settings, stage: Stage) -> None:
        import cv2

        from pardus.store import open_workspace

        # One CPU per actor: Ray sets OMP_NUM_THREADS=1 (torch follows it), OpenCV's own pool must be
        # told, or two workers on a 2-core machine each spread over both cores and fight.
        cv2.setNumThreads(1)
        self.ws = open_workspace(settings, migrate=False)
        self.stage = stage

    def pid(self) -> int:
        return os.getpid()

    def process(self, batch: list[str]) -> list[ItemResult]:
        return compute_batch(self.ws, self.stage, batch)


@dataclass
class RayExecutor:
    """Batches spread over ``workers`` Ray actors. ``address``: None starts a Ray instance on this
    machine for the run; "auto" joins the cluster `ray start --head` runs here; "ray://host:10001"
    a remote one. ``in_flight`` batches are queued per worker so none waits between batches."""

    address: str | None = None
    workers: int = 2
    in_flight: int = 2
    keep: bool = False  # keep the workers (and their loaded models) for the next map of the same stage
    actors: list[Any] = field(default_factory=list, init=False, repr=False)
    _for: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not 1 <= self.workers <= 1024:
            raise ExecutorError(f"workers must be 1-1024, not {self.workers}")

    def _init(self) -> None:
        import ray

        if ray.is_initialized():
            return
        try:
            if self.address is None:
                ray.init(num_cpus=self.workers, include_dashboard=False, logging_level=logging.WARNING,
                         log_to_driver=False)
            else:
                ray.init(address=self.address, include_dashboard=False, logging_level=logging.WARNING,
                         log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ExecutorError(f"cannot reach the Ray cluster at {self.address}: {exc}. Start it with "
                                "`ray start --head` (or check the ray:// address)") from None

    def _start(self, ws: Workspace, stage: Stage) -> list[Any]:
        import ray

        if self.keep and self.actors and self._for is stage:
            return self.actors
        self.close()
        self._init()
        self._for = stage
        worker_stage = copy.copy(stage)
        if hasattr(worker_stage, "workers"):
            worker_stage.workers = 0  # type: ignore[attr-defined]  # Ray is the parallelism: no decode pool inside
        actor = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=-1)(_StageWorker)
        self.actors = [actor.remote(ws.settings, worker_stage) for _ in range(self.workers)]
        return self.actors

    def map(self, ws: Workspace, stage: Stage, batches: Sequence[Sequence[str]]) -> Iterator[list[ItemResult]]:
        import ray

        if not batches:
            return
        actors = self._start(ws, stage)
        todo = list(enumerate(batches))
        pending: dict[Any, list[str]] = {}
        turn = 0

        def submit() -> None:
            nonlocal turn
            while todo and len(pending) < self.in_flight * len(actors):
                _, batch = todo.pop(0)
                ref = actors[turn % len(actors)].process.remote(list(batch))
                turn += 1
                pending[ref] = list(batch)

        try:
            submit()
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                batch = pending.pop(done[0])
                try:
                    results: list[ItemResult] = ray.get(done[0])
                except Exception as exc:  # noqa: BLE001 - a batch lost on the cluster fails item by item
                    message = f"the Ray worker failed on this batch ({type(exc).__name__}); run again to retry"
                    log.warning("%s: %s", message, exc)
                    results = [ItemResult(m, error=message) for m in batch]
                submit()
                yield results
        finally:
            if not self.keep:
                self.close()

    def close(self) -> None:
        """End the workers (their models go with them)."""
        if self.actors:
            import ray

            for a in self.actors:
                ray.kill(a)
        self.actors, self._for = [], None


def make_executor(name: str, *, address: str | None = None, workers: int = 2) -> Any:
    """The executor `pardus process --executor NAME` asks for; a clear error for anything else."""
    from pardus.pipeline.core import LocalExecutor

    if name == "local":
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(address=address, workers=workers)
    raise ExecutorError(f"unknown executor {name!r}: choose {' or '.join(EXECUTORS)}")
