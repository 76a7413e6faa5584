"""What every region of `up` shares: the API keys, the IAM pair, the token secret (a
pagination token made in one region is valid in the next), and the persisted state (which
region is primary, at which epoch; each PostgreSQL data dir says itself what its node was)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hemisphere.local_defaults import with_local_secrets
from hemisphere.settings import Settings, current_api_key

STATE_FILE = "up-state.json"


@dataclass(frozen=True)
class SharedSecrets:
    api_keys: tuple[str, ...]
    iam_akid: str
    iam_secret: str
    token_secret: str
    # Keys that expire (HEMISPHERE_API_KEYS' KEY@EXPIRY): epoch seconds, passed on as given.
    api_key_expiry: Mapping[str, float] = field(default_factory=dict)

    @property
    def api_key(self) -> str:
        """The first key that has not expired: what `up` prints and probes with."""
        return current_api_key(self.api_keys, self.api_key_expiry)

    @property
    def iam(self) -> str:
        return f"{self.iam_akid}:{self.iam_secret}"

    def environment(self) -> dict[str, str]:
        return {
            "HEMISPHERE_API_KEYS": ",".join(
                f"{key}@{self.api_key_expiry[key]:.0f}" if key in self.api_key_expiry else key
                for key in self.api_keys
            ),
            "HEMISPHERE_IAM_CREDENTIALS": self.iam,
            "HEMISPHERE_TOKEN_SECRET": self.token_secret,
        }


def shared_secrets(data_dir: Path, env: Mapping[str, str]) -> SharedSecrets:
    """HEMISPHERE_API_KEYS / HEMISPHERE_IAM_CREDENTIALS / HEMISPHERE_TOKEN_SECRET when set (as
    for `serve`), otherwise made once and kept in the data dir."""
    settings = replace(Settings.from_env(env), data_dir=data_dir)
    settings = with_local_secrets(settings)
    akid, secret = next(iter(settings.iam_credentials.items()))
    assert settings.token_secret is not None
    return SharedSecrets(
        settings.api_keys, akid, secret, settings.token_secret, dict(settings.api_key_expiry)
    )


@dataclass
class UpState:
    """Survives restarts of `up`: promotions are not undone by a restart."""

    primary: str
    epoch: int = 1

    @classmethod
    def load(cls, data_dir: Path) -> UpState | None:
        path = data_dir / STATE_FILE
        if not path.exists():
            return None
        document: dict[str, Any] = json.loads(path.read_text())
        return cls(
            primary=str(document["primary"]),
            epoch=int(document["epoch"]),
        )

    def save(self, data_dir: Path) -> None:
        path = data_dir / STATE_FILE
        temporary = path.with_suffix(".tmp")
        temporary.write_text(
            json.dumps({"primary": self.primary, "epoch": self.epoch}, indent=2) + "\n"
        )
        os.replace(temporary, path)
