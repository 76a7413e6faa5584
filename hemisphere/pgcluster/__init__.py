"""The local stand-in for an Aurora PostgreSQL global database: one primary and physical
streaming replicas (hot standbys) of the `pgserver` wheel's PostgreSQL, promotion, replicas
that follow a new primary, and an old primary that rejoins with pg_rewind after its
unreplicated writes (the RPO) are reported.

Every call is synchronous (it runs PostgreSQL's tools and psql) and may take seconds: from an
event loop, run it in a thread; but start nodes from a thread that lives as long as they do
(the death signal that ties a server to us follows the thread that started it).

    node = PgNode("us-east-1", data_dir, port)
    init_primary(node)                         # initdb once, start, database "hemisphere"
    make_replica(replica, "127.0.0.1", proxy)  # pg_basebackup -R through a delay proxy
    replication_status(node)                   # PrimaryStatus | StandbyStatus
    kill(node)                                 # a hard outage
    promote(replica)                           # PromotionReport, accepts writes on return
    follow(other, "127.0.0.1", proxy_to_new)   # None, or a RejoinReport if it had to rewind
    rejoin(node, "127.0.0.1", proxy_to_new)    # RejoinReport: what it lost, then a standby
"""

from hemisphere.pgcluster.errors import (
    PgClusterError,
    PgCommandError,
    PgRoleError,
    PgStartError,
    PgTimeoutError,
)
from hemisphere.pgcluster.failover import (
    PromotionReport,
    RejoinReport,
    follow,
    promote,
    rejoin,
    timeline_of,
)
from hemisphere.pgcluster.node import PgNode, has_data, is_standby_on_disk
from hemisphere.pgcluster.process import (
    StopMode,
    is_running,
    kill,
    pid_of,
    postgres_argv,
    start,
    stop,
)
from hemisphere.pgcluster.provision import BaseBackupReport, init_primary, make_replica
from hemisphere.pgcluster.rpo import LostRow
from hemisphere.pgcluster.status import (
    PrimaryStatus,
    ReplicaLag,
    StandbyStatus,
    is_in_recovery,
    replication_status,
    wait_caught_up,
)

__all__ = [
    "BaseBackupReport",
    "LostRow",
    "PgClusterError",
    "PgCommandError",
    "PgNode",
    "PgRoleError",
    "PgStartError",
    "PgTimeoutError",
    "PrimaryStatus",
    "PromotionReport",
    "RejoinReport",
    "ReplicaLag",
    "StandbyStatus",
    "StopMode",
    "follow",
    "has_data",
    "init_primary",
    "is_in_recovery",
    "is_running",
    "is_standby_on_disk",
    "kill",
    "make_replica",
    "pid_of",
    "postgres_argv",
    "promote",
    "rejoin",
    "replication_status",
    "start",
    "stop",
    "timeline_of",
    "wait_caught_up",
]
