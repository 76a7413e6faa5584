"""`up` hands every region the API keys it was given, expiries included."""

from __future__ import annotations

from pathlib import Path

from hemisphere.settings import Settings
from hemisphere.up.secrets import shared_secrets


def test_the_regions_get_the_keys_with_their_expiry(tmp_path: Path) -> None:
    given = {"HEMISPHERE_API_KEYS": "da2-rotatedoutkey@2030-01-01T00:00:00Z,da2-currentkey01"}
    secrets = shared_secrets(tmp_path, given)
    region = Settings.from_env(secrets.environment())
    assert region.api_keys == ("da2-rotatedoutkey", "da2-currentkey01")
    assert region.api_key_expiry == Settings.from_env(given).api_key_expiry
    assert set(region.api_key_expiry) == {"da2-rotatedoutkey"}


def test_what_is_printed_and_probed_with_is_a_key_that_has_not_expired(tmp_path: Path) -> None:
    given = {"HEMISPHERE_API_KEYS": "da2-rotatedoutkey@2020-01-01,da2-currentkey01"}
    assert shared_secrets(tmp_path, given).api_key == "da2-currentkey01"
    assert Settings.from_env(given).current_api_key() == "da2-currentkey01"
    expired = Settings.from_env({"HEMISPHERE_API_KEYS": "da2-rotatedoutkey@2020-01-01"})
    assert expired.current_api_key() == "da2-rotatedoutkey"  # refused, and says so
