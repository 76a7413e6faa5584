"""`hemisphere up`'s port layout, topology file, links and status table (pure parts)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from hemisphere.up.commands import format_status
from hemisphere.up.control import ActionQueue
from hemisphere.up.layout import Layout, LayoutError, read_topology, write_topology
from hemisphere.up.processes import edge_spec, proxy_specs
from hemisphere.up.secrets import UpState
from regions.latency import GLOBAL, NONE, load

THREE = ["us-east-1", "eu-west-1", "ap-southeast-2"]


def test_each_region_owns_ten_ports_from_its_edge() -> None:
    layout = Layout.plan(THREE, 8000, Path("/data"))
    eu = layout.region("eu-west-1")
    assert (eu.edge, eu.api, eu.aws, eu.postgres) == (8010, 8011, 8012, 8013)
    assert eu.aws_via == {"us-east-1": 8014, "ap-southeast-2": 8015}
    assert eu.postgres_via == {"us-east-1": 8016, "ap-southeast-2": 8017}
    assert eu.replicator_status == 8019
    assert (layout.payments_port, layout.control_port) == (8098, 8099)
    every = [
        port
        for r in layout.regions
        for port in (r.edge, r.api, r.aws, r.postgres, r.replicator_status, *r.aws_via.values())
    ]
    every += [port for r in layout.regions for port in r.postgres_via.values()]
    assert len(every) == len(set(every))
    assert all(8000 <= port < 8098 for port in every)


@pytest.mark.parametrize(
    ("names", "base", "message"),
    [
        ([], 8000, "no region"),
        (["us-east-1", "us-east-1"], 8000, "twice"),
        (["us-east-1", "moon-1"], 8000, "not an AWS region"),
        (["us-east-1", "eu-west-1", "ap-southeast-2", "sa-east-1"], 8000, "at most 3"),
        (["us-east-1"], 65500, "no room"),
    ],
)
def test_a_layout_that_cannot_be_made_says_why(names: list[str], base: int, message: str) -> None:
    with pytest.raises(LayoutError, match=message):
        Layout.plan(names, base, Path("/data"))


def test_the_topology_file_has_the_shape_clients_read(tmp_path: Path) -> None:
    layout = Layout.plan(["us-east-1", "eu-west-1"], 27000, tmp_path)
    topology = layout.topology(
        primary="us-east-1",
        epoch=2,
        api_key="da2-x",
        iam="AK:S",
        latency=NONE.to_json(),
        token_issuer="http://127.0.0.1:27099",
    )
    write_topology(tmp_path, topology)
    assert read_topology(tmp_path) == {
        "primary": "us-east-1",
        "epoch": 2,
        "api_key": "da2-x",
        "iam": "AK:S",
        "control": "http://127.0.0.1:27099",
        "token_issuer": "http://127.0.0.1:27099",
        "regions": {
            "us-east-1": {
                "graphql": "http://127.0.0.1:27001/graphql",
                "realtime": "ws://127.0.0.1:27001/graphql/realtime",
            },
            "eu-west-1": {
                "graphql": "http://127.0.0.1:27011/graphql",
                "realtime": "ws://127.0.0.1:27011/graphql/realtime",
            },
        },
        "edge": {
            "us-east-1": "http://127.0.0.1:27000/graphql",
            "eu-west-1": "http://127.0.0.1:27010/graphql",
        },
        "latency": NONE.to_json(),
    }
    assert read_topology(tmp_path / "elsewhere") is None


def test_every_cross_region_link_has_a_proxy_with_half_the_rtt() -> None:
    layout = Layout.plan(THREE, 8000, Path("/data"))
    specs = {str(spec["name"]): spec for spec in proxy_specs(layout, GLOBAL)}
    assert len(specs) == 3 * 2 * 2  # (AWS endpoint, PostgreSQL) for each ordered pair
    link = specs["pg ap-southeast-2→eu-west-1"]
    assert link["listen"] == "127.0.0.1:8027"
    assert link["target"] == "127.0.0.1:8013"
    assert link["one_way_ms"] == 125.0
    assert specs["aws eu-west-1→us-east-1"]["one_way_ms"] == 37.5


def test_edges_send_a_location_to_its_own_region_when_every_rtt_is_zero() -> None:
    layout = Layout.plan(THREE, 8000, Path("/data"))
    matrix = load(edge_spec(layout, NONE)["latency"])  # type: ignore[arg-type]
    for location in THREE:
        assert matrix.nearest_first(location, THREE)[0] == location
        assert all(matrix.rtt_ms(location, other) < 0.01 for other in THREE)
    # A real matrix is left as it is.
    real = load(edge_spec(layout, GLOBAL)["latency"])  # type: ignore[arg-type]
    assert real.rtt_ms("us-east-1", "eu-west-1") == 75.0
    assert real.rtt_ms("eu-west-1", "eu-west-1") == 10.0


def test_the_state_survives_a_restart(tmp_path: Path) -> None:
    assert UpState.load(tmp_path) is None
    UpState(primary="eu-west-1", epoch=3).save(tmp_path)
    assert UpState.load(tmp_path) == UpState(primary="eu-west-1", epoch=3)


def test_status_table_lists_every_region() -> None:
    text = format_status(
        {
            "primary": "eu-west-1",
            "epoch": 2,
            "regions": {
                "us-east-1": {"role": "down", "health": "unhealthy", "epoch": None},
                "eu-west-1": {
                    "role": "primary",
                    "health": "healthy",
                    "epoch": 2,
                    "dynamodb_replication_lag_ms": {"us-east-1": 12.5},
                    "postgres_replay_lag_ms": None,
                    "subscriptions": 4,
                    "in_flight_sagas": 1,
                },
            },
        }
    )
    lines = text.splitlines()
    assert lines[0] == "Primary: eu-west-1   epoch: 2"
    assert lines[2].split() == ["us-east-1", "down", "-", "unhealthy", "-", "-", "-", "-"]
    expected = ["eu-west-1", "primary", "2", "healthy", "us-east-1", "12", "-", "4", "1"]
    assert lines[3].split() == expected


def test_actions_run_on_the_thread_that_drains_the_queue() -> None:
    actions = ActionQueue()
    ran_on: list[str] = []

    def job() -> int:
        ran_on.append(threading.current_thread().name)
        return 7

    future = actions.submit(job)
    failing = actions.submit(lambda: 1 / 0)
    actions.run_pending(wait=1)
    assert future.result(timeout=1) == 7
    assert ran_on == [threading.current_thread().name]
    with pytest.raises(ZeroDivisionError):
        failing.result(timeout=1)
