"""Replication state of a running node, as a primary or as a standby sees it."""

from __future__ import annotations

import time
from dataclasses import dataclass

from hemisphere.pgcluster.errors import PgTimeoutError
from hemisphere.pgcluster.node import LOCALHOST, PgNode, query, quote_literal


@dataclass(frozen=True, slots=True)
class ReplicaLag:
    """One replica as its primary sees it (pg_stat_replication). The *_lag_ms are the time
    from the primary flushing WAL to the replica confirming it written/flushed/replayed,
    round trip through any delay proxy included; None once the replica is idle and caught up
    (PostgreSQL clears them). replay_lag_bytes is what the replica has yet to replay."""

    application_name: str
    state: str
    sync_state: str
    sent_lsn: str
    replay_lsn: str
    replay_lag_bytes: int
    write_lag_ms: float | None
    flush_lag_ms: float | None
    replay_lag_ms: float | None


@dataclass(frozen=True, slots=True)
class PrimaryStatus:
    node: str
    timeline: int
    current_lsn: str
    replicas: tuple[ReplicaLag, ...]


@dataclass(frozen=True, slots=True)
class StandbyStatus:
    """A hot standby. `replay_age_ms` is now() - pg_last_xact_replay_timestamp() (it grows
    while the primary is idle). `replay_lag_ms` is the usual reading of "replica lag": while
    streaming, 0 when everything received is replayed, else the replay age; while not
    streaming (the primary is down or the link is cut) the replay age, which then grows as
    the replica falls behind. `upstream` is its primary_conninfo."""

    node: str
    timeline: int | None
    receive_lsn: str | None
    replay_lsn: str | None
    streaming: bool
    replay_age_ms: float | None
    replay_lag_ms: float | None
    upstream: str


_PRIMARY_SQL = """
SELECT application_name, state, sync_state, sent_lsn, replay_lsn,
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint,
       extract(epoch FROM write_lag) * 1000, extract(epoch FROM flush_lag) * 1000,
       extract(epoch FROM replay_lag) * 1000
  FROM pg_stat_replication
 ORDER BY application_name
"""

_STANDBY_SQL = """
SELECT r.received_tli, pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn(),
       coalesce(r.status = 'streaming', false),
       extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000,
       CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000 END,
       (SELECT timeline_id FROM pg_control_checkpoint()),
       current_setting('primary_conninfo')
  FROM (SELECT 1) AS one
  LEFT JOIN pg_stat_wal_receiver AS r ON true
"""


def is_in_recovery(port: int, host: str = LOCALHOST) -> bool:
    return query(port, "SELECT pg_is_in_recovery()", host=host)[0][0] == "t"


def timeline_of_primary(port: int, host: str = LOCALHOST) -> int:
    """The timeline a primary writes on (the first 8 hex digits of its current WAL file)."""
    name = query(port, "SELECT pg_walfile_name(pg_current_wal_lsn())", host=host)[0][0]
    return int(name[:8], 16)


def replication_status(node: PgNode) -> PrimaryStatus | StandbyStatus:
    """The node's replication state; PgCommandError if it does not answer."""
    if not is_in_recovery(node.port):
        rows = query(node.port, _PRIMARY_SQL)
        return PrimaryStatus(
            node=node.name,
            timeline=timeline_of_primary(node.port),
            current_lsn=query(node.port, "SELECT pg_current_wal_lsn()")[0][0],
            replicas=tuple(_replica(row) for row in rows),
        )
    row = query(node.port, _STANDBY_SQL)[0]
    received_tli, receive, replay, streaming, age, lag, checkpoint_tli, upstream = row
    return StandbyStatus(
        node=node.name,
        timeline=int(received_tli or checkpoint_tli) if (received_tli or checkpoint_tli) else None,
        receive_lsn=receive or None,
        replay_lsn=replay or None,
        streaming=streaming == "t",
        replay_age_ms=_float(age),
        replay_lag_ms=_float(lag) if streaming == "t" else _float(age),
        upstream=upstream,
    )


def _replica(row: list[str]) -> ReplicaLag:
    name, state, sync, sent, replay, lag_bytes, write, flush, replay_ms = row
    return ReplicaLag(
        application_name=name,
        state=state,
        sync_state=sync,
        sent_lsn=sent,
        replay_lsn=replay,
        replay_lag_bytes=int(lag_bytes) if lag_bytes else 0,
        write_lag_ms=_float(write),
        flush_lag_ms=_float(flush),
        replay_lag_ms=_float(replay_ms),
    )


def _float(value: str) -> float | None:
    return float(value) if value else None


def wait_caught_up(
    node: PgNode, primary_host: str, primary_port: int, *, timeout: float = 30.0
) -> float:
    """Wait until the standby `node` has replayed everything its primary had written when
    this was called (a region "resynced"); returns the seconds it took, PgTimeoutError if
    it does not within `timeout`."""
    began = time.monotonic()
    target = query(primary_port, "SELECT pg_current_wal_lsn()", host=primary_host)[0][0]
    sql = f"SELECT pg_last_wal_replay_lsn() >= {quote_literal(target)}::pg_lsn"
    while time.monotonic() - began < timeout:
        if query(node.port, sql)[0][0] == "t":
            return time.monotonic() - began
        time.sleep(0.05)
    raise PgTimeoutError(f"{node.name} did not replay up to {target} in {timeout}s")
