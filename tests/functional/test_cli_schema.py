"""`hemisphere schema export [--check]` as a user runs it."""

import subprocess
import sys
from pathlib import Path

from schema.export import CONTRACT_PATH


def hemisphere(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hemisphere.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_export_prints_the_sdl() -> None:
    result = hemisphere("schema", "export")
    assert result.returncode == 0, result.stderr
    assert "schema {\n  query: Query\n  mutation: Mutation\n  subscription: Subscription\n}" in (
        result.stdout
    )


def test_check_passes_on_the_committed_contract() -> None:
    result = hemisphere("schema", "export", "--check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "matches" in result.stdout


def test_check_fails_with_the_difference_on_drift(tmp_path: Path) -> None:
    drifted = tmp_path / "appsync.graphql"
    drifted.write_text(CONTRACT_PATH.read_text().replace("  epoch: Int!\n", "  epoch: Int\n"))
    result = hemisphere("schema", "export", "--check", "--contract", str(drifted))
    assert result.returncode == 1
    assert "-  epoch: Int\n" in result.stdout and "+  epoch: Int!\n" in result.stdout
    assert "contract changes only through an issue" in result.stderr
