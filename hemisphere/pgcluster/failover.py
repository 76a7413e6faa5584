"""Changing roles: promote a standby, re-point a standby to a new primary, rejoin an old primary.

A returning old primary must never be started as it is: it would accept writes on a timeline
nobody follows. `rejoin` reports what it had that the new primary lacks (rpo.py), then
rewinds it onto the new primary's timeline (pg_rewind; a fresh base backup if that fails)
and starts it as a standby. Lost writes are reported, never merged back.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from hemisphere.localstack import free_port
from hemisphere.pgcluster.errors import (
    PgClusterError,
    PgCommandError,
    PgRoleError,
    PgStartError,
    PgTimeoutError,
)
from hemisphere.pgcluster.node import (
    PgNode,
    conninfo,
    control_data,
    has_data,
    query,
    query_value,
    quote_literal,
    run_tool,
    tool,
)
from hemisphere.pgcluster.process import StopMode, is_running, start, stop
from hemisphere.pgcluster.rpo import (
    LostRow,
    WalTail,
    fork_point,
    history_file,
    int_to_lsn,
    lost_rows,
    lsn_to_int,
    snapshot_rows,
    wal_after,
)
from hemisphere.pgcluster.standby import base_backup, set_standby_conf
from hemisphere.pgcluster.status import StandbyStatus, is_in_recovery, replication_status
from hemisphere.pgcluster.status import timeline_of_primary as _timeline_of_primary

log = logging.getLogger(__name__)

RejoinMethod = Literal["rewind", "basebackup", "none"]


@dataclass(frozen=True, slots=True)
class PromotionReport:
    node: str
    timeline: int
    seconds: float  # from the pg_promote() call to the first accepted write


@dataclass(frozen=True, slots=True)
class RejoinReport:
    """A node brought back as a standby of the new primary, and what it lost doing so.

    method: "rewind" (pg_rewind), "basebackup" (rewind impossible: a fresh copy) or
    "none" (nothing to undo). fork_lsn: where the new primary's timeline left the node's
    (None if its history does not go through it: a loss that cannot be measured in WAL).
    lost_wal_bytes / lost_transactions: data records and commits the node had past the fork
    (None when unmeasurable). lost_rows: tracked rows it had that the new primary lacks or
    has older (None if the node could not be read before the rewind)."""

    node: str
    method: RejoinMethod
    old_timeline: int
    new_timeline: int
    fork_lsn: str | None
    old_end_lsn: str | None
    lost_wal_bytes: int | None
    lost_transactions: int | None
    first_lost_commit_at: datetime | None
    last_lost_commit_at: datetime | None
    lost_rows: tuple[LostRow, ...] | None
    rewind_seconds: float
    seconds: float

    @property
    def lost_orders(self) -> tuple[str, ...]:
        return tuple(row.id for row in self.lost_rows or () if row.table == "orders")


def promote(node: PgNode, *, timeout: float = 60.0) -> PromotionReport:
    """Promote the running standby `node`; returns once it has accepted a write. A node that
    already is a primary returns at once (idempotent)."""
    began = time.monotonic()
    if is_in_recovery(node.port):
        done = query_value(node.port, f"SELECT pg_promote(true, {max(1, int(timeout))})")
        if done != "t":
            raise PgTimeoutError(f"{node.name} not promoted within {timeout}s")
    # pg_promote returns when recovery has ended; a transaction id is the proof of writes.
    query(node.port, "SELECT pg_current_xact_id()")
    seconds = time.monotonic() - began
    return PromotionReport(node.name, _timeline_of_primary(node.port), seconds)


def follow(
    node: PgNode, new_primary_host: str, new_primary_port: int, *, timeout: float = 30.0
) -> RejoinReport | None:
    """Re-point the standby `node` to a new primary and wait until it streams that primary's
    timeline. None when it simply followed; a RejoinReport when it had replayed past the fork
    point (WAL of the old primary that the new one never got) and had to be rewound."""
    if not has_data(node):
        raise PgRoleError(f"{node.name}: no data directory at {node.data_dir}")
    if is_running(node):
        if not is_in_recovery(node.port):
            raise PgRoleError(f"{node.name} is a primary; rejoin it instead")
        upstream = conninfo(new_primary_host, new_primary_port, application_name=node.name)
        query(node.port, f"ALTER SYSTEM SET primary_conninfo = {quote_literal(upstream)}")
        query(node.port, "SELECT pg_reload_conf()")
    else:
        set_standby_conf(node, new_primary_host, new_primary_port)
        try:
            start(node)
        except PgStartError as exc:
            # A standby that had fetched the new timeline's history before going down, while
            # already past its fork, cannot even start on it ("requested timeline does not
            # contain minimum recovery point").
            log.warning("%s cannot start on the new timeline (%s): rewinding", node.name, exc)
            return rejoin(node, new_primary_host, new_primary_port)
    new_timeline = _timeline_of_primary(new_primary_port, new_primary_host)
    if _past_fork(node, new_primary_host, new_primary_port, new_timeline):
        log.warning("%s replayed past timeline %d's fork: rewinding", node.name, new_timeline)
        return rejoin(node, new_primary_host, new_primary_port)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = replication_status(node)
        if isinstance(state, StandbyStatus) and state.streaming and state.timeline == new_timeline:
            return None
        time.sleep(0.1)
    log.warning("%s did not follow timeline %d in %ss: rewinding", node.name, new_timeline, timeout)
    return rejoin(node, new_primary_host, new_primary_port)


def _past_fork(node: PgNode, host: str, port: int, new_timeline: int) -> bool:
    """Whether the running standby can no longer follow `new_timeline`: it replays another
    timeline that the new one does not come from, or is already past the fork point."""
    state = replication_status(node)
    if not isinstance(state, StandbyStatus) or state.timeline in (None, new_timeline):
        return False
    fork = fork_point(history_file(port, new_timeline, host), state.timeline)
    if fork is None:
        return True
    return state.replay_lsn is not None and lsn_to_int(state.replay_lsn) > fork


def rejoin(
    node: PgNode,
    new_primary_host: str,
    new_primary_port: int,
    *,
    database: str = "hemisphere",
    timeout: float = 120.0,
) -> RejoinReport:
    """Bring a returning old primary (or a standby gone past the fork) back as a standby of
    the new primary, after measuring what it had that the new primary lacks."""
    began = time.monotonic()
    if not has_data(node):
        raise PgRoleError(f"{node.name}: no data directory at {node.data_dir}")
    stop(node, StopMode.FAST)
    old_timeline = int(control_data(node)["Latest checkpoint's TimeLineID"])
    new_timeline = _timeline_of_primary(new_primary_port, new_primary_host)
    fork: int | None = None
    tail: WalTail | None = None
    if old_timeline == new_timeline:
        fork = None  # same timeline: nothing forked, nothing lost in WAL terms
    else:
        history = history_file(new_primary_port, new_timeline, new_primary_host)
        fork = fork_point(history, old_timeline)
        if fork is not None:
            tail = wal_after(node, old_timeline, fork)
    rows = _lost_rows(node, new_primary_host, new_primary_port, database)

    rewind_began = time.monotonic()
    method = _rewind_or_copy(node, new_primary_host, new_primary_port, timeout)
    rewind_seconds = time.monotonic() - rewind_began
    set_standby_conf(node, new_primary_host, new_primary_port)
    start(node, timeout=timeout)

    same = old_timeline == new_timeline
    return RejoinReport(
        node=node.name,
        method=method,
        old_timeline=old_timeline,
        new_timeline=new_timeline,
        fork_lsn=int_to_lsn(fork) if fork is not None else None,
        old_end_lsn=tail.end_lsn if tail else None,
        lost_wal_bytes=tail.data_bytes if tail else (0 if same else None),
        lost_transactions=tail.transactions if tail else (0 if same else None),
        first_lost_commit_at=tail.first_commit_at if tail else None,
        last_lost_commit_at=tail.last_commit_at if tail else None,
        lost_rows=rows,
        rewind_seconds=rewind_seconds,
        seconds=time.monotonic() - began,
    )


def _lost_rows(node: PgNode, host: str, port: int, database: str) -> tuple[LostRow, ...] | None:
    """Start the node alone (spare port, read-only, no upstream), read its rows, stop it."""
    spare = free_port()
    try:
        start(
            node,
            port=spare,
            # A standby stays on its own timeline (it may have fetched the new one's history).
            extra={
                "default_transaction_read_only": "on",
                "primary_conninfo": "",
                "recovery_target_timeline": "current",
            },
            timeout=60,
        )
        try:
            old = snapshot_rows(spare, database)
        finally:
            stop(node, StopMode.FAST)
    except PgClusterError as exc:
        log.warning("%s could not be read before its rewind: %s", node.name, exc)
        return None
    return lost_rows(old, snapshot_rows(port, database, host))


def _rewind_or_copy(node: PgNode, host: str, port: int, timeout: float) -> RejoinMethod:
    # pg_rewind reads the source's timeline from its control file, which a promotion updates
    # only at its next checkpoint: without this one, a just-promoted source looks like it is
    # on the old timeline and pg_rewind answers "no rewind required" to a diverged node.
    query(port, "CHECKPOINT", host=host)
    source = conninfo(host, port, database="postgres")
    try:
        out = run_tool(
            [
                tool("pg_rewind"),
                "-D",
                str(node.data_dir),
                f"--source-server={source}",
                "--no-sync",  # see provision.NO_SYNC_WHY
            ],
            timeout=timeout,
            with_stderr=True,
        )
    except PgCommandError as exc:
        log.warning("pg_rewind of %s failed (%s): taking a fresh base backup", node.name, exc)
        base_backup(node, host, port, timeout=timeout)
        return "basebackup"
    return "none" if "no rewind required" in out else "rewind"


def timeline_of(node: PgNode) -> int:
    """The node's timeline: live if it runs (a primary's WAL, a standby's receiver), else
    from its control file."""
    if not is_running(node):
        return int(control_data(node)["Latest checkpoint's TimeLineID"])
    if not is_in_recovery(node.port):
        return _timeline_of_primary(node.port)
    state = replication_status(node)
    assert isinstance(state, StandbyStatus)
    return state.timeline or int(control_data(node)["Latest checkpoint's TimeLineID"])
