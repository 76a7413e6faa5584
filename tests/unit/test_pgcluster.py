"""The RPO arithmetic of the PostgreSQL stand-in: LSNs, timeline histories, pg_waldump's
output, and which rows count as lost; what a node may be called."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from hemisphere.pgcluster.node import PgNode
from hemisphere.pgcluster.rpo import (
    LostRow,
    fork_point,
    int_to_lsn,
    lost_rows,
    lsn_to_int,
    parse_waldump,
)

# pg_waldump output past a fork point: an insert and its commit, then a shutdown checkpoint.
WALDUMP = """\
rmgr: Standby     len (rec/tot):     50/    50, tx:          0, lsn: 0/03000028, prev 0/03000000, desc: RUNNING_XACTS nextXid 732 latestCompletedXid 731 oldestRunningXid 732
rmgr: Heap        len (rec/tot):     59/    59, tx:        732, lsn: 0/03000060, prev 0/03000028, desc: INSERT+INIT off: 1, flags: 0x00, blkref #0: rel 1663/5/16385 blk 0
rmgr: Transaction len (rec/tot):     34/    34, tx:        732, lsn: 0/030000A0, prev 0/03000060, desc: COMMIT 2026-12-02 16:27:17.469941 UTC
rmgr: Heap        len (rec/tot):     53/  7925, tx:        733, lsn: 0/030000C8, prev 0/030000A0, desc: UPDATE off: 2 xmax: 733, blkref #0: rel 1663/5/16385 blk 0 FPW
rmgr: Transaction len (rec/tot):    405/   405, tx:        733, lsn: 0/03001FC0, prev 0/030000C8, desc: COMMIT 2026-12-02 16:27:18.000001 UTC; inval msgs: catcache 80
rmgr: XLOG        len (rec/tot):    114/   114, tx:          0, lsn: 0/03002158, prev 0/03001FC0, desc: CHECKPOINT_SHUTDOWN redo 0/3002158; tli 1; prev tli 1; fpw true; shutdown
"""  # noqa: E501


def test_lsns_round_trip() -> None:
    assert lsn_to_int("0/3000148") == 0x3000148
    assert lsn_to_int("1/0") == 1 << 32
    assert int_to_lsn(lsn_to_int("2A/DEADBEEF")) == "2A/DEADBEEF"


def test_the_fork_point_of_a_timeline_comes_from_the_history_file() -> None:
    history = "1\t0/3000148\tno recovery target specified\n\n2\t0/5000000\tno recovery target\n"
    assert fork_point(history, 1) == 0x3000148
    assert fork_point(history, 2) == 0x5000000
    assert fork_point(history, 3) is None
    assert fork_point("", 1) is None


def test_the_wal_past_the_fork_counts_data_and_commits_not_bookkeeping() -> None:
    tail = parse_waldump(WALDUMP, start=0x03000028)
    assert tail.transactions == 2
    assert tail.data_bytes == 59 + 34 + 7925 + 405
    assert tail.end_lsn == int_to_lsn(0x03002158 + 114)
    assert tail.first_commit_at == datetime(2026, 12, 2, 16, 27, 17, 469941, tzinfo=UTC)
    assert tail.last_commit_at == datetime(2026, 12, 2, 16, 27, 18, 1, tzinfo=UTC)


def test_nothing_past_the_fork_is_no_loss() -> None:
    tail = parse_waldump("", start=0x03000028)
    assert (tail.transactions, tail.data_bytes, tail.end_lsn) == (0, 0, "0/3000028")
    assert tail.first_commit_at is None


def test_rows_missing_or_older_on_the_new_primary_are_lost_newer_ones_are_not() -> None:
    old = {
        "orders": {"o-missing": 1, "o-older": 3, "o-same": 2, "o-newer": 1},
        "payments": {"pay-missing": 0, "pay-there": 0},
    }
    new = {
        "orders": {"o-older": 2, "o-same": 2, "o-newer": 5, "o-only-new": 1},
        "payments": {"pay-there": 0},
    }
    assert lost_rows(old, new) == (
        LostRow("orders", "o-missing", 1, None),
        LostRow("orders", "o-older", 3, 2),
        LostRow("payments", "pay-missing", None, None),
    )


def test_a_node_name_must_fit_in_a_connection_string() -> None:
    with pytest.raises(ValueError, match="letters, digits"):
        PgNode("us east", Path("/tmp/x"), 5432)
    with pytest.raises(ValueError, match="not a TCP port"):
        PgNode("us-east-1", Path("/tmp/x"), 70000)
    assert PgNode("us-east-1", Path("rel"), 5432).data_dir.is_absolute()
