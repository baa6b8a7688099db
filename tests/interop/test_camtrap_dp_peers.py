"""What INBO's camtrapdp and camtraptor check, where Pardus has the same operation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pardus.interop.camtrap_dp import CamtrapDPError, export_camtrap_dp, import_camtrap_dp, merge_packages
from pardus.interop.camtrap_dp_schema import validate_package
from pardus.store import open_workspace

from .helpers import read_table


@pytest.fixture(scope="session")
def example(shared_data: Path) -> Path:
    return shared_data / "camtrap-dp-example" / "example"


@pytest.fixture(scope="session")
def peers(shared_data: Path) -> Path:
    return shared_data / "camtrapdp-peer-fixtures"


def _named_copy(example: Path, dest: Path, name: str) -> Path:
    shutil.copytree(example, dest)
    meta = json.loads((dest / "datapackage.json").read_text())
    meta["name"] = name
    (dest / "datapackage.json").write_text(json.dumps(meta))
    return dest


def test_merge_identical_packages_matches_camtrapdp_snapshot(example: Path, peers: Path, tmp_path: Path) -> None:
    """test-merge_camtrapdp.R 'returns the expected datapackage.json when merging identical datasets'."""
    x = _named_copy(example, tmp_path / "x", "x")
    y = _named_copy(example, tmp_path / "y", "y")
    report = merge_packages(x, y, tmp_path / "xy")
    assert report is not None and report.valid, report.summary()
    ours = json.loads((tmp_path / "xy" / "datapackage.json").read_text())
    ours.pop("created")  # the R test removes it too: it is the time of merging
    snap = peers / "inbo-camtrapdp/tests/testthat/_snaps/merge_camtrapdp/datapackage_identical_xy.json"
    theirs = json.loads(snap.read_text())
    # Two deliberate differences, both slips in camtrapdp 0.5 that its snapshot records:
    # descriptions are joined with the two characters "/n" instead of a newline, and the project
    # gets a key "individuals" (a misspelt individualAnimals, not in the Camtrap DP profile).
    theirs["description"] = theirs["description"].replace("/n", "\n")
    theirs["project"]["description"] = theirs["project"]["description"].replace("/n", "\n")
    assert theirs["project"].pop("individuals") is False
    assert ours == theirs
    _, deps = read_table(tmp_path / "xy" / "deployments.csv")
    assert {"x_00a2c20d", "y_00a2c20d"} <= set(deps) and len(deps) == 8


def test_merge_prefixes_only_ids_in_both(tmp_path: Path, example: Path, sqlite_settings) -> None:
    """test-merge_camtrapdp.R 'adds prefixes to identifiers in the data to keep them unique'."""
    ws = open_workspace(sqlite_settings)
    try:
        import_camtrap_dp(ws, example)
        export_camtrap_dp(ws, tmp_path / "x", deployment_ids=["00a2c20d", "29b7d356"], name="x")
        export_camtrap_dp(ws, tmp_path / "y", deployment_ids=["29b7d356", "577b543a"], name="y")
    finally:
        ws.close()
    assert merge_packages(tmp_path / "x", tmp_path / "y", tmp_path / "xy").valid
    _, deps = read_table(tmp_path / "xy" / "deployments.csv")
    _, media = read_table(tmp_path / "xy" / "media.csv")
    _, obs = read_table(tmp_path / "xy" / "observations.csv")
    assert {"00a2c20d", "x_29b7d356", "y_29b7d356", "577b543a"} == set(deps)
    assert {"07840dcc", "x_3e65dfaa", "y_3e65dfaa", "44201e9e"} <= set(media)
    assert {"705e6036", "x_ef2f7140", "y_ef2f7140", "d350d2bc"} <= set(obs)
    events = {o["eventID"] for o in obs.values()}
    assert {"4bb69c45", "x_8f5ffbf2", "y_8f5ffbf2", "5fbf69a4"} <= events
    assert {o["mediaID"] for o in obs.values() if o["observationLevel"] == "event"} == {""}  # never "x_"
    assert {m["deploymentID"] for m in media.values()} <= set(deps)


def test_merge_refuses_packages_without_distinct_names(example: Path, tmp_path: Path) -> None:
    """test-merge_camtrapdp.R 'returns error on missing/invalid/duplicate dataset name(s)'."""
    with pytest.raises(CamtrapDPError, match="both packages are named"):
        merge_packages(example, example, tmp_path / "out")
    nameless = tmp_path / "nameless"
    shutil.copytree(example, nameless)
    meta = json.loads((nameless / "datapackage.json").read_text())
    del meta["name"]
    (nameless / "datapackage.json").write_text(json.dumps(meta))
    with pytest.raises(CamtrapDPError, match="has no name"):
        merge_packages(nameless, example, tmp_path / "out")
    assert merge_packages(nameless, example, tmp_path / "ok", names=("a", "b")).valid


def test_camtrap_dp_0_1_6_is_refused_with_what_to_do(peers: Path, workspace) -> None:
    mica = peers / "inbo-camtraptor/inst/extdata/mica"
    with pytest.raises(CamtrapDPError, match="Camtrap DP 0.1.6; Pardus reads 1.0 to 1.0.2. Upgrade"):
        import_camtrap_dp(workspace, mica)
    issues = peers / "inbo-camtraptor/inst/extdata/mica_parsing_issues/datapackage_for_parsing_issues.json"
    with pytest.raises(CamtrapDPError, match="0.1.6"):
        import_camtrap_dp(workspace, issues)


def test_camtraptor_timestamp_parsing_issues_are_reported_by_row_and_column(
    example: Path, peers: Path, tmp_path: Path, workspace
) -> None:
    """The malformed timestamps of camtraptor's mica_parsing_issues, put into a 1.0.2 package."""
    bad = tmp_path / "bad"
    shutil.copytree(example, bad)
    fixture = (peers / "inbo-camtraptor/inst/extdata/mica_parsing_issues/deployments_parsing_issues.csv").read_text()
    assert "2020-07-29TT05:29:41Z" in fixture and "2020-06-1921:00:00Z" in fixture
    dep = (bad / "deployments.csv").read_text()
    dep = dep.replace("2020-07-29T07:29:41+02:00", "2020-07-29TT05:29:41Z")
    dep = dep.replace("2020-06-19T23:00:00+02:00", "2020-06-1921:00:00Z")
    (bad / "deployments.csv").write_text(dep)
    media = (bad / "media.csv").read_text().replace("2020-07-29T07:29:42+02:00", "2020-07-29TTT05:29:42Z", 1)
    (bad / "media.csv").write_text(media)
    with pytest.raises(CamtrapDPError) as err:
        import_camtrap_dp(workspace, bad)
    msg = str(err.value)
    assert "deployments.csv row 3 column deploymentStart: '2020-07-29TT05:29:41Z' is not a date-time" in msg
    assert "deployments.csv row 4 column deploymentStart: '2020-06-1921:00:00Z'" in msg
    assert "media.csv row" in msg and "'2020-07-29TTT05:29:42Z'" in msg
    assert "nothing was imported" in msg


@pytest.mark.parametrize(
    ("table", "old", "new", "expected"),
    [
        ("observations.csv", ",media,animal,", ",media,leopard,", "is not one of: animal, human"),
        ("media.csv", "07840dcc,00a2c20d,", "07840dcc,nowhere,", "'nowhere' is not a deploymentID of deployments"),
        ("observations.csv", ",Anas platyrhynchos,1,", ",Anas platyrhynchos,0,", "0 is below the minimum 1"),
        ("media.csv", "401386c7,", "07840dcc,", "'07840dcc' appears more than once"),
        ("deployments.csv", ",51.496,4.774,", ",151.496,4.774,", "above the maximum 90"),
    ],
)
def test_malformed_cells_are_rejected_clearly(
    example: Path, tmp_path: Path, sqlite_settings, table: str, old: str, new: str, expected: str
) -> None:
    """What camtrapdp's check_camtrapdp() and frictionless report, as Pardus words it."""
    bad = tmp_path / "bad"
    shutil.copytree(example, bad)
    text = (bad / table).read_text()
    assert old in text
    (bad / table).write_text(text.replace(old, new, 1))
    assert expected in validate_package(bad).summary()
    ws = open_workspace(sqlite_settings)
    try:
        with pytest.raises(CamtrapDPError, match="nothing was imported"):
            import_camtrap_dp(ws, bad)
    finally:
        ws.close()


def test_package_without_observations_is_refused(example: Path, tmp_path: Path, sqlite_settings) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(example, bad)
    (bad / "observations.csv").unlink()
    ws = open_workspace(sqlite_settings)
    try:
        with pytest.raises(CamtrapDPError, match="observations table observations.csv .* is not in"):
            import_camtrap_dp(ws, bad)
    finally:
        ws.close()
