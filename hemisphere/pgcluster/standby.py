"""A node's data directory as a standby: a fresh copy of a primary, and the settings that
make it start as a hot standby of a given upstream."""

from __future__ import annotations

import shutil

from hemisphere.pgcluster.node import (
    PgNode,
    conninfo,
    prepare_dir,
    run_tool,
    set_auto_conf,
    tool,
    write_file,
)


def base_backup(node: PgNode, host: str, port: int, *, timeout: float = 120.0) -> None:
    """A fresh copy of the primary at host:port replaces the node's data directory. It is
    copied beside it first: a copy cut short must not look like a data directory later."""
    partial = node.data_dir.with_name(f"{node.data_dir.name}.partial")
    if partial.exists():
        shutil.rmtree(partial)
    prepare_dir(partial)
    run_tool(
        [
            tool("pg_basebackup"),
            "-D",
            str(partial),
            "-d",
            conninfo(host, port, application_name=f"{node.name}-basebackup"),
            "--wal-method=stream",
            "--checkpoint=fast",
            "--write-recovery-conf",
            "--no-sync",  # see provision.NO_SYNC_WHY
        ],
        timeout=timeout,
    )
    if node.data_dir.exists():
        shutil.rmtree(node.data_dir)
    partial.rename(node.data_dir)


def set_standby_conf(node: PgNode, host: str, port: int) -> None:
    """Make the stopped node's data directory start as a standby of host:port."""
    write_file(node.data_dir / "standby.signal", "")
    set_auto_conf(
        node,
        {
            "primary_conninfo": conninfo(host, port, application_name=node.name),
            "recovery_target_timeline": "latest",
        },
    )
