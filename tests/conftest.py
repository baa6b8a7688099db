"""Shared fixtures: where the real public data lives, and throw-away data folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PARDUS_SHARED_DIR", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real camera-trap data beside the project; tests that need it skip without it."""
    data = SHARED / "data"
    if not data.is_dir():
        pytest.skip(f"real test data not found at {data} (set PARDUS_SHARED_DIR to the shared/ folder)")
    return data


PG_URL = os.environ.get("PARDUS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _service_missing(what: str) -> None:
    """Skip a test whose service is down; under CI that is a failure, not a skip."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} is not reachable, and CI=true requires it (.ci/run starts it)")
    pytest.skip(f"{what} is not reachable; start it to run this test")


def _postgres_schema_url() -> tuple[str, str]:
    """A fresh schema in the test database, so tests never see each other's rows."""
    import uuid

    from sqlalchemy import create_engine, text

    schema = f"pardus_t_{uuid.uuid4().hex[:12]}"
    try:
        eng = create_engine(PG_URL)
        with eng.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        eng.dispose()
    except Exception as exc:  # noqa: BLE001 - any connection failure means "service down"
        _service_missing(f"PostgreSQL at {PG_URL} ({type(exc).__name__})")
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}", schema


def _drop_schema(schema: str) -> None:
    from sqlalchemy import create_engine, text

    eng = create_engine(PG_URL)
    with eng.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    eng.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path):
    """Settings for a new, empty Pardus installation, on each database backend in turn."""
    from pardus.config import Settings

    if request.param == "sqlite":
        yield Settings(data_dir=tmp_path / "data")
        return
    url, schema = _postgres_schema_url()
    try:
        yield Settings(data_dir=tmp_path / "data", database_url=url)
    finally:
        _drop_schema(schema)


@pytest.fixture
def sqlite_settings(tmp_path: Path):
    """Settings on the embedded default only, for tests about files rather than databases."""
    from pardus.config import Settings

    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A throw-away data folder for CLI tests: the commands read ``PARDUS_DATA_DIR`` through the
    cached settings, so the cache is cleared on the way in and out."""
    from pardus.config import get_settings

    monkeypatch.setenv("PARDUS_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


@pytest.fixture
def workspace(settings):
    from pardus.store import open_workspace

    ws = open_workspace(settings)
    yield ws
    ws.close()


CHROMIUM = Path(os.environ.get("PARDUS_CHROMIUM", "/usr/bin/chromium"))


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (never `playwright install`); skips when it is absent."""
    if not CHROMIUM.is_file():
        _service_missing(f"Chromium at {CHROMIUM} (apt-get install chromium, or `make browser`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()
