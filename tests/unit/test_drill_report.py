"""The drill's report: building it from observations, its text, its figures, its JSON; what a
user's request answered; the topology file; the subscriber's messages."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import orjson
import pytest

from hemisphere.drill.figures import figures, figures_json, format_figures
from hemisphere.drill.finals import final_order
from hemisphere.drill.graphql import classify
from hemisphere.drill.realtime import connection_url, delivery_from
from hemisphere.drill.records import Acknowledged, FinalOrder, Request
from hemisphere.drill.render import format_report
from hemisphere.drill.report import Report, build_report
from hemisphere.drill.topology import TopologyError, load_topology, parse_topology
from regions.latency import GLOBAL
from tests.unit.test_drill_analysis import primary_loss

TOPOLOGY = {
    "primary": "us-east-1",
    "epoch": 1,
    "api_key": "da2-test",
    "iam": "AKID:SECRET",
    "control": "http://127.0.0.1:28099/",
    "regions": {
        r: {"graphql": f"http://127.0.0.1:{p}/graphql", "realtime": "ws://x/graphql/realtime"}
        for r, p in (("us-east-1", 28001), ("eu-west-1", 28011), ("ap-southeast-2", 28021))
    },
    "edge": {
        r: f"http://127.0.0.1:{p}/graphql"
        for r, p in (("us-east-1", 28000), ("eu-west-1", 28010), ("ap-southeast-2", 28020))
    },
}


def reads(location: str, start: float, end: float, latency_ms: float) -> list[Request]:
    count = int(end - start)
    return [
        Request(location, "read", start + i, start + i + latency_ms / 1000.0) for i in range(count)
    ]


def report_of_a_primary_loss() -> Report:
    obs = primary_loss()
    for location, ms in (("us-east-1", 15.0), ("eu-west-1", 16.0), ("ap-southeast-2", 18.0)):
        obs.requests += reads(location, 0.0, 10.0, ms)
        obs.requests += [Request(location, "probe", t, t + 0.01, None, location) for t in (1, 2)]
    obs.acknowledged.append(Acknowledged("o-1", "us-east-1", 5.1))
    obs.final_orders = {"o-1": FinalOrder("o-1", True, "CONFIRMED", 7.0)}
    obs.data_equal = {"us-east-1": "equal", "ap-southeast-2": "different"}
    baseline = [
        *reads("us-east-1", 0.0, 10.0, 16.0),
        *reads("eu-west-1", 0.0, 10.0, 85.0),
        *reads("ap-southeast-2", 0.0, 10.0, 210.0),
    ]
    direct = [
        *reads("us-east-1", 0.0, 10.0, 5.0),
        *reads("eu-west-1", 0.0, 10.0, 6.0),
        *reads("ap-southeast-2", 0.0, 10.0, 7.0),
    ]
    return build_report(obs, baseline, direct, GLOBAL, "primary-loss", {"users": 2})


def test_report_baseline_compares_each_location_with_the_primary_alone() -> None:
    report = report_of_a_primary_loss()
    rows = {row.location: row for row in report.baseline}
    far = rows["ap-southeast-2"]
    assert far.served_by == "ap-southeast-2" and far.rtt_ms == 10.0
    assert far.rtt_to_primary_ms == 200.0
    assert round(far.with_regions_p50_ms or 0) == 18
    assert round(far.without_regions_p50_ms or 0) == 210
    assert round(far.service_p50_ms or 0) == 7
    assert far.speedup is not None and round(far.speedup, 1) == round(210 / 18, 1)


def test_report_text_has_the_timeline_and_every_table() -> None:
    text = format_report(report_of_a_primary_loss())
    for expected in (
        "Timeline",
        "+10.0s  kill",
        "first write accepted",
        "Reads per location, p50/p99 ms",
        "primary-loss of us-east-1 (killed at +10.0s)",
        "RTO (kill → first write)       6.6 s",
        "Single-region baseline",
        "ap-southeast-2 different",
    ):
        assert expected in text, expected
    ap = next(line for line in text.splitlines() if line.startswith("ap-southeast-2  ap-"))
    assert "11.7x" in ap


def test_figures_judge_each_target() -> None:
    report = report_of_a_primary_loss()
    rows = {f.name: f for f in figures(report, GLOBAL)}
    speedup = rows["read p50 ap-southeast-2: without regions ÷ with"]
    assert speedup.met is True and speedup.target == 10.0
    read_only = rows["primary loss: every region read-only"]
    assert read_only.measured == 4.0 and read_only.met is True
    promote = rows["promote → first write accepted"]
    assert round(promote.measured or 0, 1) == 2.5 and promote.met is True
    back = rows["us-east-1 back → serving reads as a secondary"]
    assert round(back.measured or 0, 2) == 10.01 and back.met is True
    replication = rows[
        "DynamoDB replication lag p99 eu-west-1:us-east-1 (polled) vs one-way + 100 ms"
    ]
    assert replication.target == 137.5 and replication.measured == 100.0
    text = format_figures(list(rows.values()))
    assert "Figures to reach" in text and "MISSED" not in text.split("PostgreSQL")[0]


def test_report_json_round_trips() -> None:
    report = report_of_a_primary_loss()
    document = json.loads(
        json.dumps({**report.to_json(), "figures": figures_json(figures(report, GLOBAL))})
    )
    assert document["scenario"] == "primary-loss"
    assert document["faults"][0]["recovery_point"]["acknowledged_before_kill"] == 1
    assert document["baseline"][2]["speedup"] > 10
    assert any(f["met"] is True for f in document["figures"])


def test_classify_what_the_user_saw() -> None:
    read_only = {"data": {"checkout": None}, "errors": [{"errorType": "ReadOnlyRegion"}]}
    assert classify(200, orjson.dumps(read_only)).error == "ReadOnlyRegion"
    assert classify(200, b'{"errors": [{"message": "x"}]}').error == "GraphQLError"
    assert classify(502, b"Bad Gateway").error == "HTTP 502"
    answer = classify(200, b'{"data": {"product": {"id": "p-0001"}}}')
    assert answer.error is None and answer.data == {"product": {"id": "p-0001"}}


def test_topology_file(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="no `hemisphere up` found"):
        load_topology(tmp_path)
    (tmp_path / "topology.json").write_text("{not json")
    with pytest.raises(TopologyError, match="is not a topology"):
        load_topology(tmp_path)
    (tmp_path / "topology.json").write_text(json.dumps(TOPOLOGY))
    topology = load_topology(tmp_path)
    assert topology.control == "http://127.0.0.1:28099"
    assert topology.latency is GLOBAL  # the default when the file names none
    assert topology.edge_realtime("eu-west-1") == "ws://127.0.0.1:28010/graphql/realtime"
    assert topology.nearest_secondary("us-east-1") == "eu-west-1"
    assert parse_topology({**TOPOLOGY, "latency": "none"}).latency.rtt_ms("a", "b") == 0.0
    with pytest.raises(ValueError, match="primary"):
        parse_topology({**TOPOLOGY, "primary": "mars"})


def test_subscriber_messages() -> None:
    url, headers = connection_url("ws://127.0.0.1:28010/graphql/realtime", "da2-k")
    encoded = url.split("header=")[1].split("&")[0]
    assert (
        json.loads(base64.b64decode(encoded))
        == headers
        == {
            "host": "127.0.0.1:28010",
            "x-api-key": "da2-k",
        }
    )
    payload = {
        "data": {
            "onOrderChanged": {
                "id": "o-1",
                "status": "CONFIRMED",
                "version": 6,
                "updatedAt": "2026-01-01T00:00:01.500Z",
            }
        }
    }
    delivery = delivery_from("eu-west-1", payload, 1767225602.0)
    assert delivery is not None and delivery.version == 6
    assert delivery.changed_at == 1767225601.5
    assert delivery_from("eu-west-1", {"data": {"onOrderChanged": None}}, 0.0) is None


def test_final_order_from_its_history() -> None:
    order = {
        "id": "o-1",
        "status": "CONFIRMED",
        "history": [
            {"status": "PENDING", "at": "2026-01-01T00:00:00.000Z"},
            {"status": "CONFIRMED", "at": "2026-01-01T00:00:02.250Z"},
        ],
    }
    final = final_order("o-1", order)
    assert final.found and final.status == "CONFIRMED"
    assert final.final_at == 1767225602.25
    pending = final_order("o-2", {"id": "o-2", "status": "PENDING", "history": []})
    assert pending.found and pending.final_at is None
    assert final_order("o-3", None).found is False
