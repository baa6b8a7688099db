"""The simulate command: a season written with a progress bar and a summary that says where."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from pardus.simulate.commands import simulate_cmd


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("simulate")(simulate_cmd)

    @app.callback()
    def _main() -> None:
        """A group, as in ``pardus``, so ``simulate`` stays a subcommand."""

    return app


def test_simulate_command_writes_and_says_where(tmp_path: Path) -> None:
    out = tmp_path / "season"
    res = CliRunner().invoke(_app(), ["simulate", str(out), "--cameras", "2", "--days", "3", "--seed", "4",
                                      "--workers", "1"])
    assert res.exit_code == 0, res.output
    flat = "".join(res.output.split())  # Rich wraps long paths at the runner's 80 columns
    assert f"{out}/deployments.csv" in flat and f"{out}/truth" in flat
    assert (out / "deployments.csv").is_file() and (out / "truth" / "images.csv").is_file()
    again = CliRunner().invoke(_app(), ["simulate", str(out), "--cameras", "2", "--days", "3"])
    assert again.exit_code == 1 and "already holds a season" in again.output
