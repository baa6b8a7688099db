"""What the browser tests share: a store on either database, signing in, docs screenshots."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import _drop_schema, _postgres_schema_url

from pardus.config import Settings

SHOTS = os.environ.get("PARDUS_DOCS_SCREENSHOTS")


@contextmanager
def backend_settings(backend: str, data_dir: Path) -> Iterator[Settings]:
    """Settings for a new store on ``sqlite`` or ``postgresql`` (a fresh schema, dropped after)."""
    url, schema = (None, None) if backend == "sqlite" else _postgres_schema_url()
    try:
        yield Settings(data_dir=data_dir, database_url=url)
    finally:
        if schema:
            _drop_schema(schema)


def shot(page, name: str) -> None:
    """docs/web-<name>.png when PARDUS_DOCS_SCREENSHOTS names the folder."""
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"web-{name}.png"), full_page=True)


def sign_in(page, base: str, name: str, password: str, then: str | None = None) -> None:
    """Through the sign-in form, as a person does; with ``then``, wait until that page is open."""
    page.goto(f"{base}/signin" + (f"?next={then}" if then else ""))
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    if then:
        page.wait_for_url(base + then)
