"""The named errors of the PostgreSQL cluster stand-in.

PgClusterError
 ├── PgCommandError   a PostgreSQL tool (initdb, pg_basebackup, pg_rewind, psql…) failed
 ├── PgStartError     a server exited or did not become ready; the message quotes its log
 ├── PgTimeoutError   a wait (ready, promoted, following) ran out of time
 └── PgRoleError      the node's data directory has the wrong role for the call
"""

from __future__ import annotations


class PgClusterError(RuntimeError):
    """Base of every error this package raises."""


class PgCommandError(PgClusterError):
    def __init__(self, argv: list[str], returncode: int, stderr: str, stdout: str = "") -> None:
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr
        self.stdout = stdout
        tool = argv[0].rsplit("/", 1)[-1]
        super().__init__(f"{tool} exited with {returncode}: {stderr.strip()[-800:]}")


class PgStartError(PgClusterError):
    pass


class PgTimeoutError(PgClusterError):
    pass


class PgRoleError(PgClusterError):
    pass
