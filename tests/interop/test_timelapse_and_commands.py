"""The Timelapse review table, and the import/export commands as a person types them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from pardus.interop.camtrap_dp import import_camtrap_dp
from pardus.interop.timelapse import COLUMNS, export_timelapse
from pardus.people.accounts import add_user
from pardus.people.audit import recent
from pardus.store.models import Detection, Location


def test_timelapse_table_has_one_row_per_observation(workspace, shared_data: Path, tmp_path: Path) -> None:
    """Issue 20: Timelapse wants several observations of a photo as duplicate rows, not '|'-joined."""
    import_camtrap_dp(workspace, shared_data / "camtrap-dp-example" / "example")
    with workspace.db.session() as s:
        s.add(Detection(media_id="7ab33b3a", category="animal", score=0.93, x=0.1, y=0.1, w=0.2, h=0.2,
                        model_name="md_v5a.0.0.pt", model_version="v5a.0.0"))  # fmt: skip
    n = export_timelapse(workspace, tmp_path / "review.csv")
    with open(tmp_path / "review.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert n == len(rows) and list(rows[0]) == COLUMNS
    assert len({(r["RelativePath"], r["File"]) for r in rows}) == 423  # every photo, once as a key
    heron = next(r for r in rows if r["File"] == "20210531082538-RCNX0031.JPG")
    assert heron["RelativePath"] == "media" and heron["DateTime"] == "2021-04-11 20:43:09"
    assert heron["Species"] == "Ardea" and heron["Count"] == "1" and heron["MaxDetectionConf"] == "0.9300"
    assert not any("|" in r["Species"] for r in rows)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from pardus.config import get_settings
    from pardus.interop.commands import export_app, import_app

    monkeypatch.setenv("PARDUS_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    app = typer.Typer()
    app.add_typer(export_app, name="export")
    app.add_typer(import_app, name="import")
    yield app
    get_settings.cache_clear()


def test_commands_import_and_export_with_role_check(cli, shared_data: Path, tmp_path: Path) -> None:
    from pardus.config import get_settings
    from pardus.store import open_workspace

    runner = CliRunner()
    res = runner.invoke(cli, ["import", "camtrap-dp", str(shared_data / "camtrap-dp-example" / "example")])
    assert res.exit_code == 0, res.output
    assert "observations" in res.output and "549" in res.output
    ws = open_workspace(get_settings())
    with ws.db.session() as s:
        s.get(Location, "e254a13c").sensitive = True
    add_user(ws, "ivan", "ranger", password="ivan-the-ranger")
    add_user(ws, "olga", "admin", password="olga-the-admin")
    ws.close()
    exact = ["export", "camtrap-dp", str(tmp_path / "exact"), "--exact-coordinates"]
    res = runner.invoke(cli, exact)
    assert res.exit_code == 1 and "--user" in res.output
    # Issue 19 item 2: a typed name is not enough; the password is asked for (or PARDUS_PASSWORD).
    res = runner.invoke(cli, [*exact, "--user", "ivan"], env={"PARDUS_PASSWORD": "ivan-the-ranger"})
    assert res.exit_code == 1 and "reviewer or an admin" in " ".join(res.output.split())
    res = runner.invoke(cli, [*exact, "--user", "olga"], env={"PARDUS_PASSWORD": "guess"})
    assert res.exit_code == 1 and "wrong user name or password" in " ".join(res.output.split())
    res = runner.invoke(cli, [*exact, "--user", "olga"], input="guess again\n")
    assert res.exit_code == 1 and "Password of olga" in res.output
    assert not (tmp_path / "exact").exists(), "nothing written for a refused export"
    res = runner.invoke(cli, ["export", "camtrap-dp", str(tmp_path / "pkg"), "--coordinate-precision", "0.1"])
    assert res.exit_code == 0, res.output
    assert "1 sensitive place(s) rounded to 0.1 degrees" in res.output and "valid Camtrap DP" in res.output
    assert json.loads((tmp_path / "pkg" / "datapackage.json").read_text())["coordinatePrecision"] == 0.1
    res = runner.invoke(cli, [*exact, "--user", "olga"], input="olga-the-admin\n")
    assert res.exit_code == 0, res.output
    ws = open_workspace(get_settings())
    with ws.db.session() as s:
        log = [(e.who, e.allowed, e.detail.get("sensitive_places")) for e in recent(s)][::-1]
    ws.close()
    assert log == [("ivan", False, None), ("olga", False, None), ("olga", False, None), ("olga", True, None),
                   ("olga", True, ["e254a13c"])]
    from pardus.people.commands import users_app

    shown = runner.invoke(users_app, ["audit"], env={"COLUMNS": "250"})
    assert shown.exit_code == 0 and shown.output.count(" given ") == 2 and "e254a13c" in shown.output
    res = runner.invoke(cli, ["export", "timelapse", str(tmp_path / "t.csv")])
    assert res.exit_code == 0 and "rows to" in res.output and "template" in res.output
    res = runner.invoke(cli, ["import", "camtrap-dp", str(tmp_path / "nowhere")])
    assert res.exit_code == 1 and "no datapackage.json" in res.output
