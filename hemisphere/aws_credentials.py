"""The AWS credentials every client of this process signs with, read from the settings once
here (the API's tables and sagas, the primary's clients, the Lambda authorizer, the
replicator, `projections rebuild`)."""

from __future__ import annotations

from adapters.aws import StaticCredentials
from hemisphere.settings import Settings


def aws_credentials(settings: Settings) -> StaticCredentials | None:
    """Explicit credentials when configured; otherwise botocore's default chain (a task role)."""
    if settings.aws_access_key_id and settings.aws_secret_access_key:
        return StaticCredentials(settings.aws_access_key_id, settings.aws_secret_access_key)
    return None
