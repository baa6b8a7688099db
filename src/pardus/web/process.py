"""`pardus serve` as a child process on loopback, for the end-to-end tests and bench/live_load.py.

Runs the real command (uvicorn, the queue, the deliveries) in its own process, so a test can
SIGKILL it like a power cut and start it again on the same data folder.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    def __init__(self, data_dir: Path, *, port: int | None = None, rules: Path | None = None,
                 pipeline: bool = True, extra_args: list[str] | None = None, database_url: str | None = None,
                 log: Path | None = None) -> None:
        self.data_dir, self.rules, self.pipeline = data_dir, rules, pipeline
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_args = extra_args or []
        self.database_url = database_url
        self.log = log or data_dir.parent / f"serve-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.token: str | None = None  # a viewer's API token: the queue counts in health need one

    def _monitor_token(self) -> str:
        """A 'pardus-monitor' viewer in the server's store, as a park's monitoring would have."""
        from pardus.config import Settings
        from pardus.people.accounts import add_user
        from pardus.store import open_workspace

        with open_workspace(Settings(data_dir=self.data_dir, database_url=self.database_url)) as ws:
            token = add_user(ws, "pardus-monitor", "viewer", token=True)
        assert token is not None
        return token

    def start(self, timeout_s: float = 120.0) -> ServerProcess:
        if self.token is None:
            self.token = self._monitor_token()
        env = {**os.environ, "PARDUS_DATA_DIR": str(self.data_dir)}
        if self.database_url:
            env["PARDUS_DATABASE_URL"] = self.database_url
        src = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
        cmd = [sys.executable, "-m", "pardus", "serve", "--host", "127.0.0.1", "--port", str(self.port),
               "--retry-backoff", "0.2", *(["--rules", str(self.rules)] if self.rules else []),
               *([] if self.pipeline else ["--no-pipeline"]), *self.extra_args]
        logf = open(self.log, "ab")  # noqa: SIM115 - the child keeps writing after this returns
        self.proc = subprocess.Popen(cmd, env=env, stdout=logf, stderr=subprocess.STDOUT)
        self.wait_ready(timeout_s)
        return self

    def wait_ready(self, timeout_s: float) -> dict:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout_s:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"pardus serve exited with {self.proc.returncode}; see {self.log}:\n"
                                   + self.log.read_text()[-3000:])
            try:
                h = httpx.get(self.url + "/api/v1/health", timeout=2).json()
                if h.get("ready"):
                    return h
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"pardus serve did not get ready in {timeout_s:.0f} s; see {self.log}")

    def health(self) -> dict:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.get(self.url + "/api/v1/health", headers=headers, timeout=5).json()

    def wait_idle(self, timeout_s: float = 300.0) -> dict:
        """Until the queue has nothing pending or triaged."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout_s:
            h = self.health()
            q = h["queue"]
            if not q.get("pending") and not q.get("triaged"):
                return h
            time.sleep(0.3)
        raise TimeoutError(f"the queue did not empty in {timeout_s:.0f} s: {self.health()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, like a power cut of the process."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
