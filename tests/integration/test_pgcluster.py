"""The Aurora global database stand-in with real servers: streaming replicas, promotion, a
replica following the new primary, and an old primary rejoining with its lost writes reported.

Every server is a child of the test process and is killed at the end, even on failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from adapters.postgres.migrations import MIGRATIONS_DIR
from hemisphere.localstack import free_port
from hemisphere.pgcluster import (
    PgCommandError,
    PgNode,
    PgRoleError,
    PrimaryStatus,
    StandbyStatus,
    follow,
    init_primary,
    is_in_recovery,
    is_running,
    is_standby_on_disk,
    kill,
    make_replica,
    promote,
    rejoin,
    replication_status,
    start,
    stop,
    wait_caught_up,
)
from hemisphere.pgcluster.node import LOCALHOST, conninfo, query, quote_literal, run_tool, tool
from hemisphere.pgcluster.process import descendants, is_alive

pytestmark = pytest.mark.integration

DB = "hemisphere"

NodeFactory = Callable[[str], PgNode]


@pytest.fixture
def new_node() -> Iterator[NodeFactory]:
    # Not under tmp_path: pytest makes /tmp/pytest-of-root private again whenever a session
    # starts, and the servers run as another user who must traverse to their data. In memory
    # where there is a tmpfs: the disk of this shared machine is often saturated.
    shm = Path("/dev/shm")
    memory = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    base = Path(tempfile.mkdtemp(prefix="hemisphere-pgcluster-", dir=memory))
    nodes: list[PgNode] = []

    def make(name: str) -> PgNode:
        node = PgNode(name, base / name, free_port())
        nodes.append(node)
        return node

    try:
        yield make
    finally:
        for node in nodes:
            kill(node)
        shutil.rmtree(base, ignore_errors=True)
        assert not any(is_running(node) for node in nodes)


def migrate(node: PgNode) -> None:
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        run_tool(
            [
                tool("psql"),
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                conninfo(LOCALHOST, node.port, database=DB),
                "-f",
                str(path),
            ],
            as_server=False,
        )


def sql(node: PgNode, statement: str) -> list[list[str]]:
    return query(node.port, statement, database=DB)


def place_order(node: PgNode, order_id: str) -> None:
    sql(
        node,
        "INSERT INTO orders (id, customer_id, status, currency, total_amount, placed_in,"
        f" idempotency_key) VALUES ({quote_literal(order_id)}, 'c1', 'PENDING', 'EUR', 100,"
        f" 'us-east-1', {quote_literal(order_id)})",
    )


def order_versions(node: PgNode) -> dict[str, int]:
    return {row[0]: int(row[1]) for row in sql(node, "SELECT id, version FROM orders")}


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def cut_off(replica: PgNode) -> None:
    """The replica's link to its primary breaks (it points at a port nobody listens on)."""
    dead = conninfo(LOCALHOST, free_port(), application_name=replica.name)
    query(replica.port, f"ALTER SYSTEM SET primary_conninfo = {quote_literal(dead)}")
    query(replica.port, "SELECT pg_reload_conf()")


def streaming_replicas(primary: PgNode) -> set[str]:
    status = replication_status(primary)
    assert isinstance(status, PrimaryStatus)
    return {r.application_name for r in status.replicas if r.state == "streaming"}


def replay_lags(primary: PgNode) -> list[float]:
    status = replication_status(primary)
    assert isinstance(status, PrimaryStatus)
    return [r.replay_lag_ms for r in status.replicas if r.replay_lag_ms is not None]


def lag_seen_after_a_write(primary: PgNode) -> bool:
    sql(primary, "INSERT INTO ticks DEFAULT VALUES")
    return bool(replay_lags(primary))


def test_failover_promotes_a_replica_and_reports_what_the_old_primary_lost(
    new_node: NodeFactory,
) -> None:
    old, new, other = new_node("us-east-1"), new_node("eu-west-1"), new_node("ap-southeast-2")
    assert init_primary(old) is True
    migrate(old)
    sql(old, "INSERT INTO customers (id, name, email, home_region) VALUES ('c1', 'A', 'a@b', 'x')")
    place_order(old, "o-replicated")
    assert make_replica(new, LOCALHOST, old.port).copied
    assert make_replica(other, LOCALHOST, old.port).copied

    # A write on the primary reaches the hot standby, which refuses writes itself.
    place_order(old, "o-streamed")
    # PostgreSQL shows a replica's lag only briefly after a write (then NULL while idle):
    # write again until a poll catches one.
    sql(old, "CREATE TABLE ticks (at timestamptz DEFAULT now())")
    wait_for(lambda: lag_seen_after_a_write(old), "a replay lag measured by the primary")
    wait_for(lambda: "o-streamed" in order_versions(new), "the write on the replica")
    with pytest.raises(PgCommandError, match="read-only"):
        place_order(new, "o-on-a-standby")
    assert is_in_recovery(new.port)
    wait_for(lambda: streaming_replicas(old) == {new.name, other.name}, "both replicas streaming")
    standby = replication_status(new)
    assert isinstance(standby, StandbyStatus)
    assert standby.streaming and standby.timeline == 1 and standby.replay_lag_ms is not None

    # The primary region is cut off from the others, takes writes nobody receives, and dies.
    cut_off(new)
    cut_off(other)
    wait_for(lambda: not streaming_replicas(old), "the replicas to disconnect")
    place_order(old, "o-lost")
    sql(old, "UPDATE orders SET status = 'RESERVED' WHERE id = 'o-streamed'")
    kill(old)
    assert not is_running(old)

    promotion = promote(new)
    assert promotion.timeline == 2
    assert not is_in_recovery(new.port)
    place_order(new, "o-after-promotion")

    # The other replica follows the new primary's timeline without a rewind.
    assert follow(other, LOCALHOST, new.port) is None
    wait_for(lambda: "o-after-promotion" in order_versions(other), "the follower to catch up")
    assert "o-lost" not in order_versions(other)

    # The old primary comes back: it may not start as a primary next to the new one; its
    # writes since the cut are reported, then rewound away.
    with pytest.raises(PgRoleError, match="former primary"):
        init_primary(old, peers=[(LOCALHOST, other.port), (LOCALHOST, new.port)])
    assert not is_running(old)
    report = rejoin(old, LOCALHOST, new.port)
    assert report.method == "rewind", report
    assert (report.old_timeline, report.new_timeline) == (1, 2)
    assert report.lost_transactions == 2
    assert report.lost_wal_bytes is not None and report.lost_wal_bytes > 0
    assert report.first_lost_commit_at is not None
    assert report.lost_orders == ("o-lost", "o-streamed")
    lost = {row.id: (row.old_version, row.new_version) for row in report.lost_rows or ()}
    assert lost == {"o-lost": (1, None), "o-streamed": (2, 1)}

    assert is_standby_on_disk(old) and is_in_recovery(old.port)
    wait_for(lambda: "o-after-promotion" in order_versions(old), "the rejoined node to catch up")
    versions = order_versions(old)
    assert "o-lost" not in versions and versions["o-streamed"] == 1
    wait_for(lambda: streaming_replicas(new) == {old.name, other.name}, "both new replicas")


def test_nodes_keep_their_data_and_roles_across_restarts(new_node: NodeFactory) -> None:
    primary, replica = new_node("primary"), new_node("replica")
    init_primary(primary)
    sql(primary, "CREATE TABLE kept (n int)")
    sql(primary, "INSERT INTO kept VALUES (7)")
    make_replica(replica, LOCALHOST, primary.port)

    stop(replica, "fast")
    stop(primary, "smart")
    assert not is_running(primary) and not is_running(replica)
    assert init_primary(primary) is False
    assert make_replica(replica, LOCALHOST, primary.port).copied is False
    assert sql(replica, "SELECT n FROM kept") == [["7"]]
    with pytest.raises(PgRoleError):
        init_primary(replica)
    with pytest.raises(PgRoleError):
        make_replica(primary, LOCALHOST, replica.port)

    # An immediate stop needs crash recovery at the next start; the data survives it.
    stop(primary, "immediate")
    start(primary)
    assert sql(primary, "SELECT n FROM kept") == [["7"]]

    # Killed, and its pid since taken by another process: a stale postmaster.pid.
    kill(primary)
    pid_file = primary.data_dir / "postmaster.pid"
    pid_file.write_text(f"{os.getpid()}\n{primary.data_dir}\n0\n{primary.port}\n\n\n0 0\nready\n")
    assert not is_running(primary)
    start(primary)
    assert sql(primary, "SELECT n FROM kept") == [["7"]]


@pytest.mark.parametrize("comes_back_by", ["follow", "make_replica"])
def test_a_replica_ahead_of_the_promoted_one_is_rewound_when_it_comes_back(
    new_node: NodeFactory, comes_back_by: str
) -> None:
    old, new, ahead = new_node("old"), new_node("new"), new_node("ahead")
    init_primary(old)
    migrate(old)
    sql(old, "INSERT INTO customers (id, name, email, home_region) VALUES ('c1', 'A', 'a@b', 'x')")
    make_replica(new, LOCALHOST, old.port)
    make_replica(ahead, LOCALHOST, old.port)
    wait_for(lambda: streaming_replicas(old) == {new.name, ahead.name}, "both replicas streaming")

    # Only the replica that will be promoted is cut off: the other one receives a write more.
    cut_off(new)
    wait_for(lambda: streaming_replicas(old) == {ahead.name}, "one replica to disconnect")
    place_order(old, "o-only-ahead")
    wait_for(lambda: "o-only-ahead" in order_versions(ahead), "the write on the other replica")
    kill(old)
    promote(new)
    place_order(new, "o-new")
    if comes_back_by == "make_replica":
        # It reached the new primary and fetched its timeline's history before going down,
        # with pages changed past the fork already on disk: it cannot start on that timeline.
        follow_without_waiting(ahead, new)
        history = ahead.data_dir / "pg_wal" / "00000002.history"
        wait_for(history.exists, "the new timeline's history on the replica")
        query(ahead.port, "CHECKPOINT")
    kill(ahead)

    if comes_back_by == "follow":
        report = follow(ahead, LOCALHOST, new.port)
    else:
        report = make_replica(ahead, LOCALHOST, new.port).rejoined
    assert report is not None and report.method == "rewind", report
    assert report.lost_orders == ("o-only-ahead",)
    assert report.lost_transactions == 1
    wait_caught_up(ahead, LOCALHOST, new.port, timeout=15)
    assert set(order_versions(ahead)) == {"o-new"}


def follow_without_waiting(replica: PgNode, primary: PgNode) -> None:
    upstream = conninfo(LOCALHOST, primary.port, application_name=replica.name)
    query(replica.port, f"ALTER SYSTEM SET primary_conninfo = {quote_literal(upstream)}")
    query(replica.port, "SELECT pg_reload_conf()")


def test_a_server_dies_with_the_process_that_started_it(new_node: NodeFactory) -> None:
    node = new_node("orphan-candidate")
    starter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path;"
            "from hemisphere.pgcluster import PgNode, init_primary, pid_of;"
            f"node = PgNode('x', Path({str(node.data_dir)!r}), {node.port});"
            "init_primary(node); print(pid_of(node), flush=True); time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert starter.stdout is not None
        postmaster = int(starter.stdout.readline())
        family = [postmaster, *descendants(postmaster)]
        assert len(family) > 1  # checkpointer, walwriter…
        starter.kill()
        starter.wait()
        wait_for(lambda: not any(is_alive(pid) for pid in family), "the server to die", 10)
    finally:
        starter.kill()
        starter.wait()
