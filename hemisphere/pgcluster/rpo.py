"""What a returning node had committed that the new primary does not have (the RPO).

Two views, both taken before the node is rewound (the rewind throws these writes away):
- WAL: the records of its old timeline past the point where the new primary's timeline
  forked off (the new primary's timeline history file), read with pg_waldump: bytes and
  committed transactions, with the commit times of the first and last one lost.
- Rows: the shop's aggregates (tables with an `id`, most with a `version` that only grows)
  read from the node started alone, read-only, on a spare port, compared with the new
  primary: a row missing there, or there with an older version, was lost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from hemisphere.pgcluster.errors import PgCommandError
from hemisphere.pgcluster.node import LOCALHOST, PgNode, query, run_tool, tool

# Table -> its version column (None: the row's presence is all that is compared).
TRACKED_TABLES: dict[str, str | None] = {
    "orders": "version",
    "customers": "version",
    "products": "version",
    "payments": None,
}

# Records that carry no data: checkpoints, WAL switches, snapshots of running transactions.
_BOOKKEEPING = re.compile(
    r"rmgr: (XLOG|Standby)\s.*desc: (CHECKPOINT_\w+|SWITCH|RUNNING_XACTS|END_OF_RECOVERY|"
    r"BACKUP_END|PARAMETER_CHANGE|NEXTOID|OVERWRITE_CONTRECORD)"
)
_RECORD = re.compile(r"len \(rec/tot\):\s*\d+/\s*(\d+), tx:\s*\d+, lsn: ([0-9A-F]+/[0-9A-F]+)")
_COMMIT = re.compile(r"rmgr: Transaction .*desc: COMMIT (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \w+)")


@dataclass(frozen=True, slots=True)
class WalTail:
    """The node's WAL past the fork point."""

    end_lsn: str
    data_bytes: int
    transactions: int
    first_commit_at: datetime | None
    last_commit_at: datetime | None


@dataclass(frozen=True, slots=True)
class LostRow:
    """A row the old primary had that the new one lacks (new_version None) or has older."""

    table: str
    id: str
    old_version: int | None
    new_version: int | None


def lsn_to_int(lsn: str) -> int:
    high, low = lsn.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def int_to_lsn(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def history_file(port: int, timeline: int, host: str = LOCALHOST) -> str:
    """The timeline history file of a primary's timeline ("" for timeline 1, which has none)."""
    if timeline <= 1:
        return ""
    name = f"pg_wal/{timeline:08X}.history"
    return query(port, f"SELECT pg_read_file('{name}')", host=host)[0][0]


def fork_point(history: str, timeline: int) -> int | None:
    """Where `timeline` ended in this history (the switch point to its successor), or None if
    the history does not go through it."""
    for line in history.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0].isdigit() and int(fields[0]) == timeline:
            return lsn_to_int(fields[1])
    return None


def wal_after(node: PgNode, timeline: int, start: int) -> WalTail | None:
    """The stopped node's WAL records on `timeline` from `start` to its end; None if the
    segment holding `start` is gone (recycled), so the loss cannot be measured in WAL."""
    argv = [
        tool("pg_waldump"),
        "--path",
        str(node.data_dir / "pg_wal"),
        "--timeline",
        str(timeline),
        "--start",
        int_to_lsn(start),
    ]
    try:
        out = run_tool(argv)
    except PgCommandError as exc:
        # pg_waldump reads until the WAL ends and says so as an error; what it printed stands.
        if "could not find" in exc.stderr or "could not open" in exc.stderr:
            return None
        out = exc.stdout
    return parse_waldump(out, start)


def parse_waldump(out: str, start: int) -> WalTail:
    """The WalTail of pg_waldump's output for records from `start` on."""
    end = start
    data_bytes = 0
    commits: list[datetime] = []
    for line in out.splitlines():
        record = _RECORD.search(line)
        if record is None:
            continue
        total, lsn = int(record.group(1)), lsn_to_int(record.group(2))
        end = max(end, lsn + total)
        if not _BOOKKEEPING.search(line):
            data_bytes += total
        commit = _COMMIT.search(line)
        if commit is not None:
            commits.append(_commit_time(commit.group(1)))
    return WalTail(
        end_lsn=int_to_lsn(end),
        data_bytes=data_bytes,
        transactions=len(commits),
        first_commit_at=min(commits) if commits else None,
        last_commit_at=max(commits) if commits else None,
    )


def snapshot_rows(port: int, database: str, host: str = LOCALHOST) -> dict[str, dict[str, int]]:
    """id -> version (0 for unversioned tables) of each tracked table that exists."""
    rows: dict[str, dict[str, int]] = {}
    present = query(
        port,
        "SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = "
        "'public'::regnamespace",
        host=host,
        database=database,
    )
    tables = {row[0] for row in present}
    for table, version in TRACKED_TABLES.items():
        if table not in tables:
            continue
        column = version or "0"
        result = query(port, f"SELECT id, {column} FROM {table}", host=host, database=database)
        rows[table] = {row[0]: int(row[1]) for row in result}
    return rows


def lost_rows(
    old: dict[str, dict[str, int]], new: dict[str, dict[str, int]]
) -> tuple[LostRow, ...]:
    """Rows of `old` missing in `new` or there with an older version, table by table."""
    lost: list[LostRow] = []
    for table, old_rows in old.items():
        new_rows = new.get(table, {})
        versioned = TRACKED_TABLES.get(table) is not None
        for row_id, old_version in sorted(old_rows.items()):
            new_version = new_rows.get(row_id)
            if new_version is None or new_version < old_version:
                lost.append(
                    LostRow(
                        table=table,
                        id=row_id,
                        old_version=old_version if versioned else None,
                        new_version=new_version if versioned else None,
                    )
                )
    return tuple(lost)


def _commit_time(text: str) -> datetime:
    """pg_waldump prints commit times in its own time zone (ours): read them back in it."""
    stamp, _, zone = text.rpartition(" ")
    parsed = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f")
    return parsed.replace(tzinfo=UTC) if zone in ("UTC", "GMT") else parsed.astimezone()
