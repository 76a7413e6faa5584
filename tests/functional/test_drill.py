"""`hemisphere drill --scenario both` end to end against a fake `hemisphere up`
(tests/support/drill_fakes.py): the command reads topology.json, runs users, subscribers and
the baseline, drives the control endpoint, and prints and writes what it saw. The fake follows
contract v2 (customer data behind a token of that customer): the drill's users act as
customers with tokens of the development issuer in the data dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hemisphere.cli import main
from tests.support.drill_fakes import running_fake_up


def test_drill_both_scenarios(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    with running_fake_up(tmp_path) as fake:
        (tmp_path / "topology.json").write_text(json.dumps(fake.topology()))
        code = main(
            [
                "drill",
                "--scenario",
                "both",
                "--duration",
                "1",
                "--warmup",
                "0.5",
                "--checkout-interval",
                "0.1",
                "--data-dir",
                str(tmp_path),
                "--json",
                str(tmp_path / "drill.json"),
                "--plot",
                str(tmp_path / "drill.png"),
            ]
        )
        stranded_after = list(fake.stranded)
        refused, customer_reads = list(fake.refused), fake.customer_reads
    output = capsys.readouterr().out
    assert code == 0, output
    report = json.loads((tmp_path / "drill.json").read_text())
    # The warm-up is not measured: the steady stretch begins after it.
    assert report["phases"][0]["name"] == "before"
    assert report["phases"][0]["start_s"] >= 0.5
    secondary, primary = report["faults"]
    # The farthest secondary from us-east-1 is killed first, then the primary.
    assert (secondary["scenario"], secondary["region"]) == ("secondary-loss", "ap-southeast-2")
    assert (primary["scenario"], primary["region"]) == ("primary-loss", "us-east-1")
    assert primary["promoted_region"] == "eu-west-1"
    for fault in (secondary, primary):
        assert fault["detected_after_s"] is not None
        assert fault["traffic_moved_after_s"] is not None
        assert fault["back_after_restart_s"] is not None
        assert fault["resynced_after_restart_s"] is not None
        assert fault["recovery_point"]["lost"] == []
    # The fake answers 502 until its detection: the lost region's users saw that, briefly.
    windows = {(w["location"], w["kind"]): w for w in secondary["errors"]}
    assert "HTTP 502" in windows[("ap-southeast-2", "read")]["by_type"]
    assert primary["read_only_locations"] == 3
    assert primary["rto_s"] is not None and primary["promote_to_first_write_s"] is not None
    # Orders stranded by the dead primary were re-driven at the promotion and ended final.
    assert stranded_after == []
    point = primary["recovery_point"]
    assert point["not_final"] == [] and point["final_in_time"] == point["in_flight"]
    assert report["acknowledged"] > 10
    rows = report["observations"]["requests"]["rows"]
    assert {row[1] for row in rows} == {"read", "checkout", "probe"}
    # Customer reads, checkouts, order reads and subscriptions went with the customer's token:
    # nothing was refused for want of one.
    assert refused == [] and customer_reads > 0
    assert "Unauthorized" not in {row[4] for row in rows}
    assert set(report["data_equal"].values()) == {"equal"}
    assert {d["location"] for d in report["deliveries"]} == {
        "us-east-1",
        "eu-west-1",
        "ap-southeast-2",
    }
    assert {r["location"] for r in report["reconnections"]} >= {"ap-southeast-2", "us-east-1"}
    # The baseline went through delay proxies to the primary: at least the 200 ms RTT for
    # ap-southeast-2 (the fake's edges add none; how much faster they are depends on the load).
    far = next(b for b in report["baseline"] if b["location"] == "ap-southeast-2")
    assert far["without_regions_p50_ms"] >= 200.0 and far["rtt_to_primary_ms"] == 200.0
    assert far["with_regions_p50_ms"] is not None and far["service_p50_ms"] is not None
    assert any(f["name"].startswith("promote → first write") for f in report["figures"])
    assert (tmp_path / "drill.png").stat().st_size > 10_000
    for line in ("Timeline", "first write accepted", "Single-region baseline", "Figures to reach"):
        assert line in output


def test_drill_without_up_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["drill", "--scenario", "primary-loss", "--data-dir", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("hemisphere drill: no `hemisphere up` found") and "\n" not in error


def test_drill_without_an_issuer_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with running_fake_up(tmp_path / "issuer") as fake:
        (tmp_path / "topology.json").write_text(json.dumps(fake.topology()))
        assert main(["drill", "--scenario", "both", "--data-dir", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("hemisphere drill: no development token issuer in")
    assert "\n" not in error


def test_drill_with_up_gone_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_fake_up(tmp_path) as fake:
        topology = fake.topology()
    (tmp_path / "topology.json").write_text(json.dumps(topology))
    assert main(["drill", "--scenario", "both", "--data-dir", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert "does not answer" in error and "is `hemisphere up` running?" in error
