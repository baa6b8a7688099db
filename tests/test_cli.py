"""The command line as an ecologist meets it: help, import, status, fix-time, deployments."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from typer.testing import CliRunner

from pardus.cli import app
from pardus.ingest.synthetic import write_card

runner = CliRunner()


def test_help_lists_the_commands() -> None:
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    commands = ("init", "import-card", "fix-time", "status", "deployments", "simulate", "demo", "report", "export",
                "models")
    for cmd in commands:
        assert cmd in res.output


def test_card_import_status_and_fix(env: Path) -> None:
    card = env / "card"
    write_card(card, 6, datetime(2024, 6, 1, 22, 0), size=(160, 120))
    assert runner.invoke(app, ["init"]).exit_code == 0
    res = runner.invoke(app, ["deployments", "add", "C1", "--lat", "43.1", "--lon", "131.3",
                              "--start", "2024-05-30T10:00:00", "--plot", "P1"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["import-card", str(card), "--deployment", "C1"])
    assert res.exit_code == 0, res.output
    assert "6 imported" in res.output
    res = runner.invoke(app, ["import-card", str(card), "--deployment", "C1"])
    assert "6 duplicate" in res.output
    res = runner.invoke(app, ["status"])
    assert res.exit_code == 0 and "C1" in res.output
    res = runner.invoke(app, ["fix-time", "-d", "C1", "--offset", "+1h"])
    assert res.exit_code == 0 and "6 photo times recomputed" in res.output
    res = runner.invoke(app, ["fix-time", "-d", "C1", "--offset", "soon"])
    assert res.exit_code == 1 and "+3h" in res.output
    res = runner.invoke(app, ["deployments", "list"])
    assert res.exit_code == 0 and "C1" in res.output and "P1" in res.output


def test_deployment_sheet(env: Path) -> None:
    sheet = env / "deployments.csv"
    sheet.write_text(
        "deploymentID,locationID,plot,latitude,longitude,cameraID,deploymentStart,deploymentEnd,habitat\n"
        "D1,S1,North,43.01,131.2,CAM1,2024-05-01T10:00:00+10:00,2024-09-01T10:00:00+10:00,oak forest\n"
        "D2,S2,North,43.02,131.3,CAM2,2024-05-01T11:00:00+10:00,,\n"
    )
    res = runner.invoke(app, ["deployments", "import", str(sheet)])
    assert res.exit_code == 0 and "2 deployments" in res.output
    bad = env / "bad.csv"
    bad.write_text("deploymentID,latitude\nD3,123\n")
    res = runner.invoke(app, ["deployments", "import", str(bad)])
    assert res.exit_code == 1 and "outside -90..90" in res.output


def test_demo_runs_the_whole_path_and_reuses_it(env: Path) -> None:
    out = env / "demo"
    res = runner.invoke(app, ["demo", "--out", str(out), "--cameras", "2", "--days", "3"])
    assert res.exit_code == 0, res.output
    flat = "".join(res.output.split())
    assert "Seasongenerated" in flat and "Stagedaynight" in flat
    assert (out / "pardus-data" / "pardus.sqlite").is_file()
    assert "Detectionagainsttheseason'struth" in flat and "animal" in flat
    assert any((out / "pardus-data" / "reports").glob("import-*.csv"))
    # It ends with how to see it in the web app: the serve command and the demo's own sign-in, and
    # the review desk's queue is filled.
    assert "pardusserve" in flat and "signinasdemowiththepassword" in flat
    from pardus.config import Settings
    from pardus.review.queue import is_empty
    from pardus.store import open_workspace

    with open_workspace(Settings(data_dir=out / "pardus-data")) as ws, ws.db.session() as s:
        assert not is_empty(s)
    # The simulated card mess (a damaged file, a second copy of a card) is reported, not hidden.
    assert "damaged" in flat or "truncated" in flat
    # One line says which detector every box-needing stage used: MegaDetector v6 fitted into the demo's
    # own data folder where ../shared/models holds it, else the offline pair and why.
    from pardus.demo import MDV6_FOLDER, shared_folder

    mdv6 = shared_folder() / MDV6_FOLDER
    assert flat.count("Detector:") == 1
    if mdv6.is_dir():
        assert "Detector:MegaDetectorv6,fittedfrom" in flat
        assert (out / "pardus-data" / "models" / "mdv6-yolov10-c-first-layer.npz").is_file()
    else:
        assert "Detector:theofflinepair" in flat and "noMegaDetectorv6fileat" in flat
    # The season's story against its truth: species, re-identification (right / wrong / "new") and the
    # plot-year report's headline beside the simulator's values, then where the time went.
    assert "Re-identificationonthephotosfrom" in flat
    assert 'leopardortigernotinthecatalogue,called"new"(right)' in flat
    assert 'anotheranimal(deer,boar...),called"new"' in flat and "right:" in flat
    assert "Plot-yearreport,plot" in flat and "headline:" in flat and "densityper100km²(SECR)" in flat
    assert (out / "report" / "report.html").is_file()
    assert "Time:" in flat and "inall" in flat
    again = runner.invoke(app, ["demo", "--out", str(out), "--cameras", "2", "--days", "3"])
    assert again.exit_code == 0, again.output
    flat = "".join(again.output.split())
    assert "Seasonreused" in flat and "0filesimportednow" in flat
    assert ("Detector:MegaDetectorv6,alreadyfittedinto" if mdv6.is_dir() else "Detector:theofflinepair") in flat
    assert "Re-identificationonthephotosfrom" in flat and "Plot-yearreport,plot" in flat


def test_demo_keeps_the_offline_pair_and_says_why_without_the_shared_models(tmp_path: Path) -> None:
    from pardus.config import Settings
    from pardus.demo import choose_detector

    choice = choose_detector(Settings(data_dir=tmp_path / "data", detector="auto"), shared=tmp_path / "nowhere")
    assert choice.detector == "offline" and "no MegaDetector v6 file at" in choice.line
    assert not (tmp_path / "data" / "models").exists()
    choice = choose_detector(Settings(data_dir=tmp_path / "data", detector="offline"))
    assert choice.detector == "offline" and "PARDUS_DETECTOR=offline" in choice.line


def test_models_list_says_what_is_installed_and_download_never_fetches() -> None:
    res = runner.invoke(app, ["models", "list"])
    assert res.exit_code == 0, res.output
    assert "zamba-yolox-tiny" in res.output and "megadetector-v5a" in res.output
    res = runner.invoke(app, ["models", "download", "megadetector-v5a"])
    assert res.exit_code == 1 and "PARDUS_MEGADETECTOR_V5A" in "".join(res.output.split())
