"""Issue 19 item 4: races. A camera's first photos arriving together, 20 cameras' first uploads at
the same moment over real HTTP, and two imports of one card at once (threads and processes), on
SQLite and PostgreSQL: every 2xx stored exactly once, no 500, one deployment, counts right."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from tests.live.helpers import jpeg, unique

from pardus.ingest.card import ImportReport, import_card
from pardus.ingest.deployments import DeploymentSpec, create_once, upsert_deployment
from pardus.ingest.one import ingest_file
from pardus.ingest.synthetic import write_card
from pardus.live.cameras import add_camera
from pardus.store import Workspace
from pardus.store.models import Camera, Deployment, ImportItem, ImportRun, Media


def _blob_count(ws: Workspace) -> int:
    root = ws.settings.data_dir / "blobs"
    return sum(1 for p in root.rglob("*") if p.is_file() and ".tmp" not in p.parts)


def _media(ws: Workspace) -> int:
    with ws.db.session() as s:
        return s.scalar(select(func.count()).select_from(Media)) or 0


def test_create_once_under_contention_one_winner(workspace: Workspace) -> None:
    """The building block: 16 threads creating one row at once, exactly one is told it created it."""
    bar = threading.Barrier(16)

    def go(_: int) -> bool:
        bar.wait()
        return create_once(workspace.db, Deployment, "RACE-1", lambda: Deployment(id="RACE-1"))

    with ThreadPoolExecutor(16) as pool:
        made = list(pool.map(go, range(16)))
    assert made.count(True) == 1
    with workspace.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Deployment)) == 1


def test_first_uploads_of_one_camera_at_once_share_one_new_deployment(workspace: Workspace) -> None:
    add_camera(workspace, "C1")
    photo = jpeg(1)
    n = 12
    bar = threading.Barrier(n)

    def go(i: int):
        bar.wait()
        return ingest_file(workspace, unique(photo, f"first-{i}"), camera_id="C1", filename=f"IMG_{i:04d}.JPG",
                           camera_seq=i)

    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(go, range(n)))  # any exception fails the test here
    assert all(r.created for r in results)
    assert {r.deployment_id for r in results} == {results[0].deployment_id}
    with workspace.db.session() as s:
        deps = list(s.scalars(select(Deployment)))
        assert [d.camera_id for d in deps] == ["C1"] and deps[0].end is None
    assert _media(workspace) == n == _blob_count(workspace)


class _Server:
    """`pardus serve`'s app under uvicorn on a loopback port, in a thread: real HTTP, real threads."""

    def __init__(self, ws: Workspace) -> None:
        import uvicorn

        from pardus.web.app import LiveConfig, create_app

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        app = create_app(ws, LiveConfig(pipeline=False))
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", limit_concurrency=200))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.server.started, "uvicorn did not start"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


def test_twenty_cameras_first_uploads_at_the_same_moment_over_http(workspace: Workspace) -> None:
    """20 cameras without a deployment, 3 photos each sent at once, plus an immediate resend of
    each camera's first photo: every answer 2xx, each photo stored once, one deployment each."""
    tokens = {f"CAM{i:02d}": add_camera(workspace, f"CAM{i:02d}") for i in range(20)}
    base = jpeg(7)
    sends = []
    for cam in tokens:
        for k in range(3):
            sends.append((cam, k, unique(base, f"{cam}-{k}")))
        sends.append((cam, 0, unique(base, f"{cam}-0")))  # a camera retrying before its reply came
    server = _Server(workspace)
    bar = threading.Barrier(len(sends))
    try:
        def post(job: tuple[str, int, bytes]) -> tuple[str, int, dict]:
            cam, k, data = job
            with httpx.Client(timeout=120) as client:
                bar.wait()
                r = client.post(f"{server.url}/api/v1/cameras/{cam}/media",
                                headers={"Authorization": f"Bearer {tokens[cam]}"},
                                files={"file": (f"IMG_{k:04d}.JPG", data, "image/jpeg")}, data={"seq": str(k)})
            return cam, r.status_code, r.json()

        with ThreadPoolExecutor(len(sends)) as pool:
            answers = list(pool.map(post, sends))
    finally:
        server.close()
    codes = Counter(code for _, code, _ in answers)
    assert set(codes) <= {200, 201}, answers
    assert codes[201] == 60 and codes[200] == 20, codes
    by_cam: dict[str, set[str]] = {}
    for cam, _, body in answers:
        by_cam.setdefault(cam, set()).add(body["deployment_id"])
    assert all(len(deps) == 1 for deps in by_cam.values()), by_cam
    with workspace.db.session() as s:
        per_cam = dict(s.execute(select(Deployment.camera_id, func.count()).group_by(Deployment.camera_id)).all())
        assert per_cam == dict.fromkeys(tokens, 1)
    assert _media(workspace) == 60 == _blob_count(workspace), "every 2xx stored exactly once, no orphan blob"


N_CARD = 60


@pytest.fixture
def card(tmp_path: Path) -> Path:
    card = tmp_path / "card"
    write_card(card, N_CARD, datetime(2024, 7, 1, 2, 0), size=(160, 120))
    return card


def _check_two_runs(ws: Workspace, reports: list[ImportReport], deployment: str) -> None:
    """Both runs account for every file; together they imported each exactly once; the stored
    run counts and items agree with what each run reported."""
    for rep in reports:
        assert rep.counts.get("imported", 0) + rep.counts.get("duplicate", 0) == N_CARD, rep.counts
    assert sum(rep.counts.get("imported", 0) for rep in reports) == N_CARD, [r.counts for r in reports]
    assert sum(rep.created_deployment for rep in reports) <= 1
    with ws.db.session() as s:
        for rep in reports:
            run = s.get(ImportRun, rep.run_id)
            assert run is not None and run.status == "finished" and run.counts == rep.counts
            items = Counter(s.scalars(select(ImportItem.status).where(ImportItem.run_id == rep.run_id)))
            assert dict(items) == rep.counts
            dups = s.scalars(select(ImportItem).where(ImportItem.run_id == rep.run_id,
                                                      ImportItem.status == "duplicate")).all()
            assert all(i.media_id is not None for i in dups), "a duplicate points at the stored photo"
        assert s.scalar(select(func.count()).select_from(Media)) == N_CARD
        assert s.scalar(select(func.count(func.distinct(Media.deployment_id)))) == 1
        dep = s.get(Deployment, deployment)
        assert dep is not None and dep.camera_id == "H2-TEST-0001"
        assert s.scalar(select(func.count()).select_from(Camera)) == 1
        assert s.scalar(select(func.count()).select_from(Media).where(Media.sequence_id.is_(None))) == 0
    assert _blob_count(ws) >= N_CARD


@pytest.mark.parametrize("existing", [False, True], ids=["new-deployment", "existing-deployment"])
def test_two_imports_of_one_card_at_once(workspace: Workspace, card: Path, existing: bool) -> None:
    if existing:
        with workspace.db.session() as s:
            upsert_deployment(s, DeploymentSpec(id="R1", latitude=43.1, longitude=131.9))
    bar = threading.Barrier(2)

    def run(_: int) -> ImportReport:
        bar.wait()
        return import_card(workspace, card, "R1")

    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(run, range(2)))
    assert sum(r.created_deployment for r in reports) == (0 if existing else 1)
    _check_two_runs(workspace, reports, "R1")


def test_two_import_card_commands_at_once(settings, card: Path) -> None:
    """The way people really collide: two `pardus import-card` processes on one card."""
    env = {**os.environ, "PARDUS_DATA_DIR": str(settings.data_dir)}
    if settings.database_url:
        env["PARDUS_DATABASE_URL"] = settings.database_url
    from pardus.store import open_workspace

    open_workspace(settings).close()  # migrate once, so both start on a ready schema
    cmd = [sys.executable, "-m", "pardus", "import-card", str(card), "--deployment", "P1"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert all("Traceback" not in o for o in outs)
    with open_workspace(settings) as ws:
        with ws.db.session() as s:
            runs = list(s.scalars(select(ImportRun)))
        reports = [ImportReport(run_id=r.id, deployment_id="P1", counts=dict(r.counts)) for r in runs]
        assert len(reports) == 2
        _check_two_runs(ws, reports, "P1")
