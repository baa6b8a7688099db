"""`pardus cameras`, `pardus users` and `pardus alerts` from a terminal, on a real data folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pardus.cli import app
from pardus.config import Settings, get_settings

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PARDUS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_cameras_add_token_revoke_list(env: Path) -> None:
    r = runner.invoke(app, ["cameras", "add", "LP-C017", "--interval", "3600"])
    assert r.exit_code == 0, r.output
    token = re.search(r"pdc\.LP-C017\.\S+", r.output).group(0)
    r = runner.invoke(app, ["cameras", "token", "LP-C017"])
    assert r.exit_code == 0 and re.search(r"pdc\.LP-C017\.\S+", r.output).group(0) != token
    assert runner.invoke(app, ["cameras", "revoke", "LP-C017"]).exit_code == 0
    r = runner.invoke(app, ["cameras", "list"])
    assert "LP-C017" in r.output and "revoked" in r.output and "3600" in r.output
    r = runner.invoke(app, ["cameras", "token", "NOPE"])
    assert r.exit_code == 1 and "pardus cameras add NOPE" in r.output
    assert runner.invoke(app, ["cameras", "add", "bad id"]).exit_code == 1
    r = runner.invoke(app, ["users", "add", "ivanov", "--role", "ranger"])
    assert r.exit_code == 0 and "pdu.ivanov." in r.output


def test_alerts_list_ack_resolve_and_check(env: Path) -> None:
    from tests.web.test_alerts_api import _person_alert

    from pardus.store import open_workspace

    ws = open_workspace(Settings(data_dir=env / "data"))
    from pardus.live.cameras import add_camera

    add_camera(ws, "C1")
    _person_alert(ws)
    ws.close()
    r = runner.invoke(app, ["alerts", "list"])
    assert r.exit_code == 0 and "person" in r.output and "new" in r.output, r.output
    short = re.search(r"\n│ ([0-9a-f]{8}) ", r.output).group(1)
    assert runner.invoke(app, ["alerts", "ack", short, "--by", "ivanov"]).exit_code == 0
    r = runner.invoke(app, ["alerts", "resolve", short, "--outcome", "false alarm: our patrol", "--by", "ivanov"])
    assert r.exit_code == 0 and "resolved" in r.output
    r = runner.invoke(app, ["alerts", "show", short])
    assert "acknowledged" in r.output and "false alarm" in r.output
    assert "person" not in runner.invoke(app, ["alerts", "list"]).output
    assert runner.invoke(app, ["alerts", "ack", "ffffffff"]).exit_code == 1
    rules = env / "rules.yaml"
    rules.write_text("rules: [{name: p, kind: person, zones: [core]}]")
    r = runner.invoke(app, ["alerts", "check", str(rules)])
    assert r.exit_code == 1 and "zone 'core' is not defined" in r.output
    rules.write_text("rules: [{name: p, kind: person}]\nchannels: [{type: webhook, url: 'http://127.0.0.1:9/x'}]")
    r = runner.invoke(app, ["alerts", "check", str(rules)])
    assert r.exit_code == 0 and "1 rules" in r.output and "1 channels" in r.output
