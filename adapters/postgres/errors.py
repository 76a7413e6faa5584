"""Errors of the PostgreSQL adapter, as the rest of the service sees them."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from domain.errors import BackendUnavailableError


def describe_dsn(dsn: str) -> str:
    """`host:port/database` of a DSN, without user or password: safe to log and to show."""
    parts = urlsplit(dsn)
    host = parts.hostname or parse_qs(parts.query).get("host", ["localhost"])[0]
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}{parts.path or '/'}"


class RelationalStoreUnavailableError(BackendUnavailableError):
    """PostgreSQL could not be reached (refused, timed out, starting up, out of slots)."""

    def __init__(self, dsn: str, cause: BaseException) -> None:
        detail = str(cause) or type(cause).__name__
        super().__init__(
            f"the relational store (PostgreSQL at {describe_dsn(dsn)}) is unavailable: "
            f"{detail}; retry later"
        )


class MigrationError(RuntimeError):
    """The schema in the database disagrees with the migration files: a deployment error that
    must stop start-up, not be retried."""
