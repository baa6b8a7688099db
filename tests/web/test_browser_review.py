"""The review desk in Debian's Chromium (Playwright) against a real `pardus serve` with a simulated
season imported, on SQLite and PostgreSQL.

A reviewer reviews 30 sequences with the keyboard only (accept, blank, a species by its number key,
a species typed in, person); the store holds exactly those 30 decisions with the reviewer's name.
Bulk-accepting a camera-day's blanks and undoing it leaves the store as it was. A viewer's decision
is refused (403). Then `pardus models train-species` learns from the decisions made in the browser:
the head's vocabulary includes a species only the reviewer named.

The machine's calls are written from the season's truth (a few deliberately wrong) instead of
running the detectors, which would take minutes here; the review desk only reads them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from tests.web.helpers import SHOTS, backend_settings, sign_in

from pardus.config import Settings
from pardus.models.registry import DINOV2_VITS14
from pardus.people.accounts import add_user
from pardus.review import queue as rq
from pardus.simulate import simulate_season
from pardus.simulate.load import import_season, truth_media
from pardus.store import open_workspace
from pardus.store.models import Detection, Media, Observation, ReviewDecision, ReviewItem, utcnow
from pardus.web.process import ServerProcess

pytestmark = pytest.mark.slow
PASSWORD = "sika-2024-review"
ONLY_THE_REVIEWER = "Moschus moschiferus"  # the machine never says musk deer
KINDS = {"animal": "animal", "human": "human", "vehicle": "vehicle"}


@pytest.fixture(scope="module")
def season(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("review-season") / "season"
    simulate_season(out, cameras=8, days=16, seed=4, frame_size=(320, 180), workers=1)
    return out


def _machine_calls_from_truth(ws, season: Path) -> None:
    """Machine observations and boxes as a detector and species head would write them (every
    seventh animal named wrongly, fire and smoke frames called blank)."""
    with ws.db.session() as s:
        media = {m.sha256: m for m in s.scalars(select(Media))}
        for k, (row, media_id) in enumerate(truth_media(season, {sha: m.id for sha, m in media.items()})):
            if media_id is None:
                continue
            m = s.get(Media, media_id)
            kind = KINDS.get(row["content"], "blank")
            name = row["scientific_name"] or None
            if kind == "animal" and k % 7 == 0:
                name = "Sus scrofa" if name != "Sus scrofa" else "Cervus nippon"
            box = row["bbox_width"] not in ("", None) and kind != "blank"
            s.add(Observation(deployment_id=m.deployment_id, media_id=m.id, observation_level="media",
                              observation_type=kind, scientific_name=name if kind != "blank" else None,
                              classification_method="machine", classified_by="truth-fixture",
                              classification_timestamp=utcnow(), classification_probability=0.35 + (k % 13) / 20))
            if box:
                s.add(Detection(media_id=m.id, category={"human": "person"}.get(kind, kind), score=0.8,
                                x=float(row["bbox_x"]), y=float(row["bbox_y"]), w=float(row["bbox_width"]),
                                h=float(row["bbox_height"]), model_name="truth-fixture", model_version="1"))
        rq.refresh(s)


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, season: Path, tmp_path: Path) -> Iterator[tuple[ServerProcess, Settings]]:
    with backend_settings(request.param, tmp_path / "data") as settings:
        url = settings.database_url
        with open_workspace(settings) as ws:
            import_season(ws, season)
            _machine_calls_from_truth(ws, season)
            add_user(ws, "olga", "reviewer", password=PASSWORD, token=False)
            add_user(ws, "guest", "viewer", password=PASSWORD, token=False)
        server = ServerProcess(settings.data_dir, database_url=url, pipeline=False).start()
        try:
            yield server, settings
        finally:
            server.stop()


def _sign_in(page, base: str, name: str) -> None:
    sign_in(page, base, name, PASSWORD)
    page.wait_for_url(lambda u: "/signin" not in u)


def _active_observations(settings: Settings) -> set[tuple]:
    with open_workspace(settings) as ws, ws.db.session() as s:
        return {(o.id, o.superseded_by) for o in s.scalars(select(Observation))}


def test_thirty_sequences_by_keyboard_bulk_blanks_undo_viewer_refused_then_teaching(browser, served) -> None:
    server, settings = served
    base = server.url
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    _sign_in(page, base, "olga")
    page.goto(base + "/review?unreviewed=true")
    page.wait_for_selector("#seq .seq")
    key1 = page.get_attribute("#species-keys li[data-key='1']", "data-name")
    plan: dict[str, tuple[str, str | None]] = {}
    for i in range(30):
        seq = page.get_attribute("#seq .seq", "data-seq")
        machine = page.get_attribute("#seq .seq", "data-seq") and page.inner_text("#machine-call")
        step = i % 5
        if step == 0:
            expect = ("blank", None)
            page.keyboard.press("b")
        elif step == 1 and not machine.startswith("no call"):
            with open_workspace(settings) as ws, ws.db.session() as s:
                item = s.get(ReviewItem, seq)
                expect = (item.machine_type, item.machine_species)
            page.keyboard.press("a")
        elif step == 2 or step == 1:
            expect = ("animal", key1)
            page.keyboard.press("1")
        elif step == 3:
            expect = ("human", "Homo sapiens")
            page.keyboard.press("p")
        else:
            expect = ("animal", ONLY_THE_REVIEWER)
            page.keyboard.press("/")
            page.keyboard.type(ONLY_THE_REVIEWER)
            page.keyboard.press("Enter")
        plan[seq] = expect
        try:
            page.wait_for_function(f"document.querySelector('#seq .seq') === null || "
                                   f"document.querySelector('#seq .seq').dataset.seq !== '{seq}'", timeout=15_000)
        except Exception as exc:  # noqa: BLE001 - say what the page said
            raise AssertionError(f"decision {i + 1} ({expect}) on {seq} did not move on; the page says: "
                                 f"{page.inner_text('#flash')!r}") from exc
        if i == 5 and SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(SHOTS) / "web-review.png"), full_page=True)
    assert len(plan) == 30
    with open_workspace(settings) as ws, ws.db.session() as s:
        made = {d.sequence_id: (d.observation_type, d.scientific_name, d.by) for d in s.scalars(
            select(ReviewDecision).where(ReviewDecision.undone_at.is_(None)))}
        assert made == {k: (t, n, "olga") for k, (t, n) in plan.items()}
        photos = sum(s.get(ReviewItem, k).media_count for k in plan)
        assert s.scalar(select(func.count()).select_from(Observation).where(
            Observation.classified_by == "olga", Observation.classification_method == "human",
            Observation.superseded_by.is_(None))) == photos
        blank = s.scalars(select(ReviewItem).where(ReviewItem.machine_type == "blank",
                                                   ReviewItem.reviewed_at.is_(None))
                          .order_by(ReviewItem.sequence_id)).first()
    assert blank is not None, "the season should leave unreviewed machine blanks"

    # The help overlay lists the keys.
    page.keyboard.press("?")
    assert page.is_visible("#help") and "undo" in page.inner_text("#help")
    page.keyboard.press("Escape")

    # Bulk-accept a camera-day's blanks after seeing them, then undo: the store is as before.
    before = _active_observations(settings)
    page.goto(f"{base}/review/blanks?camera={blank.deployment_id}&day={blank.camera_day}")
    shown = page.locator("ul.blanks li").count()
    assert shown >= 1
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / "web-review-blanks.png"), full_page=True)
    page.keyboard.press("Enter")
    page.wait_for_selector("#blanks-done")
    assert f"{shown} sequence(s) accepted" in page.inner_text("#blanks-done")
    assert _active_observations(settings) != before
    page.click("#undo-blanks")
    page.wait_for_url(lambda u: "/review/blanks" in u and "done" not in u)
    assert _active_observations(settings) == {o for o in _active_observations(settings)}  # readable again
    after = _active_observations(settings)
    added = {o for o in after if o not in before}
    assert {sup for _id, sup in added} == {"undone"}  # the undone rows are kept, marked undone
    assert {o for o in after if o[1] != "undone"} == {o for o in before if o[1] != "undone"}

    # A viewer can look, but every decision is refused.
    vctx = browser.new_context()
    vpage = vctx.new_page()
    _sign_in(vpage, base, "guest")
    vpage.goto(base + "/review")
    vpage.wait_for_selector("#seq .seq")
    assert vpage.locator("[data-action]").count() == 0
    token = vpage.get_attribute("meta[name=csrf-token]", "content")
    seq = vpage.get_attribute("#seq .seq", "data-seq")
    r = vctx.request.post(f"{base}/review/decide", form={"sequence_id": seq, "action": "blank"},
                          headers={"X-CSRF-Token": token})
    assert r.status == 403
    vctx.close()
    ctx.close()

    # Teaching learns from the browser's decisions: the musk deer only the reviewer named.
    if not DINOV2_VITS14.available():
        pytest.skip("DINOv2 embedder weights not installed: teaching part not run")
    env = {**os.environ, "PARDUS_DATA_DIR": str(settings.data_dir)}
    if settings.database_url:
        env["PARDUS_DATABASE_URL"] = settings.database_url
    res = subprocess.run([sys.executable, "-m", "pardus", "models", "train-species", "--min-examples", "3"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    reports = sorted((settings.data_dir / "models").glob("species-head-*.report.json"))
    assert reports, res.stdout
    classes = json.loads(reports[-1].read_text())["classes"]
    assert ONLY_THE_REVIEWER in classes, res.stdout
