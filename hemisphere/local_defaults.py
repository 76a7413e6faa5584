"""Secrets the embedded defaults need, made once and kept in the data directory so a restart
keeps the same API key (GraphiQL remembers it) and valid pagination tokens."""

from __future__ import annotations

import json
import secrets
import string
from dataclasses import replace
from pathlib import Path

from hemisphere.settings import Settings

_KEY_ALPHABET = string.ascii_lowercase + string.digits
STACK_FILE = "stack.json"


def _kept(path: Path, make: str) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(make + "\n")
    path.chmod(0o600)
    return make


def new_api_key() -> str:
    """An AppSync-shaped API key: `da2-` and 26 lower-case letters and digits."""
    return "da2-" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(26))


def with_local_secrets(settings: Settings) -> Settings:
    data = settings.data_dir
    api_keys = settings.api_keys or (_kept(data / "api-key", new_api_key()),)
    iam = settings.iam_credentials or dict(
        [
            _kept(
                data / "iam-credentials",
                "AKIAHEMISPHERE" + secrets.token_hex(3).upper() + ":" + secrets.token_urlsafe(30),
            ).split(":", 1)
        ]
    )
    token_secret = settings.token_secret or _kept(data / "token-secret", secrets.token_urlsafe(32))
    return replace(settings, api_keys=api_keys, iam_credentials=iam, token_secret=token_secret)


def write_stack_file(data_dir: Path, settings: Settings) -> None:
    """Where a running `serve` keeps its backends, for `projections rebuild` beside it."""
    (data_dir / STACK_FILE).write_text(
        json.dumps(
            {
                "DATABASE_URL": settings.database_url,
                "AWS_ENDPOINT_URL": settings.aws_endpoint_url,
                "AWS_ACCESS_KEY_ID": settings.aws_access_key_id,
                "AWS_SECRET_ACCESS_KEY": settings.aws_secret_access_key,
                "HEMISPHERE_TABLE": settings.table_name,
            }
        )
    )


def read_stack_file(data_dir: Path) -> dict[str, str] | None:
    path = data_dir / STACK_FILE
    if not path.exists():
        return None
    loaded: dict[str, str] = json.loads(path.read_text())
    return {k: v for k, v in loaded.items() if v}


def remove_stack_file(data_dir: Path) -> None:
    (data_dir / STACK_FILE).unlink(missing_ok=True)
