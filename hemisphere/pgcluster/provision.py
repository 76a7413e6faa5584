"""Creating nodes: the first primary (initdb) and streaming replicas (pg_basebackup -R).

Both are idempotent: an existing data directory is reused, so the next `hemisphere up` keeps
the data (and the roles the nodes had when it stopped).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from hemisphere.pgcluster.errors import PgCommandError, PgRoleError, PgStartError
from hemisphere.pgcluster.failover import RejoinReport, follow, timeline_of
from hemisphere.pgcluster.node import (
    SUPERUSER,
    PgNode,
    has_data,
    is_standby_on_disk,
    prepare_dir,
    query,
    quote_ident,
    quote_literal,
    run_tool,
    tool,
    write_file,
)
from hemisphere.pgcluster.process import start
from hemisphere.pgcluster.standby import base_backup, set_standby_conf
from hemisphere.pgcluster.status import is_in_recovery, timeline_of_primary

# NO_SYNC_WHY: initdb, pg_basebackup and pg_rewind skip their final fsync of the whole data
# directory (seconds on a busy shared disk). What the stand-in simulates is a region's
# processes dying (SIGKILL), after which the kernel still holds every written page; the
# server itself keeps fsync on, so a commit is as durable as in production. Only a crash of
# the machine itself could tear a freshly copied directory, and that takes every region.

# Appended to postgresql.conf at initdb; base backups and rewinds copy it to every node.
SERVER_SETTINGS = """
# --- hemisphere pgcluster: a primary with streaming replicas that can be promoted/rewound
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
# No replication slots (a region down for long would pin WAL forever): keep enough WAL for a
# replica that was away for a while to catch up by streaming; beyond it, a fresh base backup.
wal_keep_size = '512MB'
hot_standby = on
hot_standby_feedback = on
# pg_rewind needs hint-bit changes WAL-logged (data checksums are on as well).
wal_log_hints = on
recovery_target_timeline = 'latest'
# Replicas report their progress every second (lag figures) and a dead link is noticed in 10 s.
wal_receiver_status_interval = '1s'
wal_receiver_timeout = '10s'
wal_sender_timeout = '10s'
wal_retrieve_retry_interval = '1s'
# After a crash (a killed region) or from a base backup, a server fsyncs its whole data
# directory before recovery, file by file by default: seconds on a busy disk. One syncfs()
# of the file system does the same job.
recovery_init_sync_method = 'syncfs'
# Several regions share one machine: keep each server small.
shared_buffers = '32MB'
max_connections = 100
log_line_prefix = '%m [%p] '
"""

HBA = """# hemisphere pgcluster: trust on loopback only (local stand-in, no password to manage)
host all all 127.0.0.1/32 trust
host replication all 127.0.0.1/32 trust
local all all trust
local replication all trust
"""


@dataclass(frozen=True, slots=True)
class BaseBackupReport:
    """What make_replica did: `copied` is False when an existing replica was reused;
    `rejoined` says what it lost if it could not start on its primary's timeline and had to
    be rewound (see failover.follow)."""

    node: str
    copied: bool
    seconds: float
    rejoined: RejoinReport | None = None


def init_primary(
    node: PgNode, database: str = "hemisphere", *, peers: Sequence[tuple[str, int]] = ()
) -> bool:
    """Make `node` a running primary with `database`; True if it was created just now.

    An existing data directory is reused as it is; one that is a standby raises PgRoleError
    (it follows another primary: start it with `start`, or promote it). `peers` (host, port)
    are the other nodes (or the proxies to them): if one that answers is a primary on a newer
    timeline, this node is a former primary and starting it would make two, so PgRoleError
    (it must `rejoin`). Peers that do not answer are skipped (they may be down)."""
    created = not has_data(node)
    if not created:
        _refuse_if_superseded(node, peers)
    if created:
        prepare_dir(node.data_dir)
        run_tool(
            [
                tool("initdb"),
                "-D",
                str(node.data_dir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--data-checksums",
                "--no-sync",  # see NO_SYNC_WHY
            ]
        )
        conf = node.data_dir / "postgresql.conf"
        write_file(conf, conf.read_text() + SERVER_SETTINGS)
        write_file(node.data_dir / "pg_hba.conf", HBA)
    elif is_standby_on_disk(node):
        raise PgRoleError(f"{node.name}: {node.data_dir} is a standby, not a primary")
    start(node)
    if not query(node.port, f"SELECT 1 FROM pg_database WHERE datname = {quote_literal(database)}"):
        query(node.port, f"CREATE DATABASE {quote_ident(database)}")
    return created


def _refuse_if_superseded(node: PgNode, peers: Sequence[tuple[str, int]]) -> None:
    if not peers:
        return
    own = timeline_of(node)
    for host, port in peers:
        try:
            if is_in_recovery(port, host):
                continue
            newer = timeline_of_primary(port, host)
        except PgCommandError:
            continue  # down or unreachable: it cannot be taking writes through this link
        if newer > own:
            raise PgRoleError(
                f"{node.name} is a former primary (timeline {own}): {host}:{port} is the "
                f"primary on timeline {newer}; rejoin it instead"
            )


def make_replica(
    node: PgNode, primary_host: str, primary_port: int, *, timeout: float = 120.0
) -> BaseBackupReport:
    """Make `node` a running hot standby streaming from primary_host:primary_port (a delay
    proxy in front of the primary, or the primary itself). A data directory that already is a
    standby is reused and re-pointed; a missing one is copied with pg_basebackup -R. A data
    directory that is a primary raises PgRoleError: it must `rejoin` (its unreplicated writes
    are reported first). A standby that was down while another node was promoted is better
    brought back with `follow`, which starts it and rewinds it if it cannot follow."""
    began = time.monotonic()
    if has_data(node):
        if not is_standby_on_disk(node):
            raise PgRoleError(f"{node.name}: {node.data_dir} is a primary; rejoin it instead")
        set_standby_conf(node, primary_host, primary_port)
        try:
            start(node, timeout=timeout)
        except PgStartError:
            # It had gone past the fork of a timeline it fetched before going down.
            rejoined = follow(node, primary_host, primary_port)
            return BaseBackupReport(node.name, False, time.monotonic() - began, rejoined)
        return BaseBackupReport(node.name, False, time.monotonic() - began)
    base_backup(node, primary_host, primary_port, timeout=timeout)
    set_standby_conf(node, primary_host, primary_port)
    start(node, timeout=timeout)
    return BaseBackupReport(node.name, True, time.monotonic() - began)
