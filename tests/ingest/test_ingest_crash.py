"""kill -9 in the middle of an import, twice; the re-run ends with every file exactly once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from pardus.ingest.synthetic import write_card
from pardus.store.blobs import sha256_file

N = 300


def _committed(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as c:
            return c.execute("select count(*) from import_item").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_sigkill_halfway_then_rerun_imports_each_file_once(tmp_path: Path) -> None:
    card = tmp_path / "card"
    files = write_card(card, N, datetime(2024, 7, 1, 2, 0), size=(320, 240))
    data = tmp_path / "data"
    env = {**os.environ, "PARDUS_DATA_DIR": str(data)}
    cmd = [sys.executable, "-m", "pardus", "import-card", str(card), "--deployment", "K1"]
    db = data / "pardus.sqlite"
    kills = 0
    for threshold in (N // 4, N // 2):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while proc.poll() is None and _committed(db) < threshold and time.monotonic() < deadline:
            time.sleep(0.005)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills >= 1, "the import finished before it could be killed; make the card bigger"
    with sqlite3.connect(db) as c:
        before = c.execute("select count(*) from media").fetchone()[0]
    assert 0 < before < N
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    with sqlite3.connect(db) as c:
        rows = c.execute("select sha256, file_path from media").fetchall()
        last_run = c.execute("select id from import_run order by started desc limit 1").fetchone()[0]
        statuses = dict(c.execute(
            "select status, count(*) from import_item where run_id=? group by status", (last_run,)).fetchall())
    assert len(rows) == N
    assert len({sha for sha, _ in rows}) == N
    expected = {sha256_file(p) for p in files}
    assert {sha for sha, _ in rows} == expected
    assert statuses == {"duplicate": before, "imported": N - before}
    for sha, _ in rows:
        blob = data / "blobs" / sha[:2] / sha[2:4] / sha
        assert sha256_file(blob) == sha
    assert not list((data / "blobs" / ".tmp").iterdir())
