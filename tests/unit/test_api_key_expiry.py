"""API keys that expire, as AppSync's do: `KEY@EXPIRY` in HEMISPHERE_API_KEYS; an expired key
is refused like an unknown one (and logged once); the other keys go on working."""

from __future__ import annotations

import logging

import pytest

from hemisphere.appsync_export.export import regional_template
from hemisphere.http.authn import Authenticator
from hemisphere.settings import Settings, SettingsError

OLD, NEW = "da2-oldoldoldoldoldoldoldold", "da2-newnewnewnewnewnewnewnew"


@pytest.mark.parametrize(
    ("expiry", "epoch"),
    [
        ("2027-01-01", 1798761600.0),
        ("2027-01-01T00:00:00", 1798761600.0),  # no offset: UTC
        ("2027-01-01T00:00:00Z", 1798761600.0),
        ("2027-01-01T01:00:00+01:00", 1798761600.0),
        ("1798761600", 1798761600.0),
    ],
)
def test_an_expiry_is_an_iso_8601_instant_or_epoch_seconds(expiry: str, epoch: float) -> None:
    settings = Settings.from_env({"HEMISPHERE_API_KEYS": f"{OLD}@{expiry}, {NEW}"})
    assert settings.api_keys == (OLD, NEW)
    assert settings.api_key_expiry == {OLD: epoch}


@pytest.mark.parametrize(
    "value",
    [f"{OLD}@tomorrow", f"{OLD}@2027-13-01", f"{OLD}@", "@2027-01-01", f"{OLD}@-5", "short@1"],
)
def test_a_bad_key_or_expiry_is_one_line_naming_the_variable(value: str) -> None:
    with pytest.raises(SettingsError, match=r"^HEMISPHERE_API_KEYS") as refused:
        Settings.from_env({"HEMISPHERE_API_KEYS": value})
    assert "\n" not in str(refused.value)
    assert "oldoldold" not in str(refused.value)  # never the whole key


def authenticator(now: float) -> Authenticator:
    return Authenticator(
        (OLD, NEW),
        {},
        region="us-east-1",
        api_key_expiry={OLD: 2000.0},
        clock=lambda: now,
    )


def test_a_key_works_until_it_expires_and_the_others_after(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert authenticator(1999.0).is_api_key(OLD)
    expired = authenticator(2000.0)
    with caplog.at_level(logging.INFO, logger="hemisphere.http.authn"):
        assert not expired.is_api_key(OLD)
        assert not expired.is_api_key(OLD)
    assert expired.is_api_key(NEW)
    assert not expired.is_api_key("da2-unknownunknownunknownunk")
    [logged] = caplog.records  # once, however often the key is tried
    assert logged.levelno == logging.INFO
    assert logged.getMessage() == "refused API key da2-oldo...: it expired at 1970-01-01T00:33:20Z"


def test_the_appsync_export_gives_its_api_key_an_expiry_parameter() -> None:
    template = regional_template("type Query { a: Int }")
    parameter = template["Parameters"]["ApiKeyExpires"]
    assert parameter["Type"] == "Number" and parameter["Default"] == 0
    expires = template["Resources"]["ApiKey"]["Properties"]["Expires"]
    # 0 (the default) leaves the property out: AppSync's own default of 7 days.
    assert expires == {
        "Fn::If": ["ApiKeyHasExpiry", {"Ref": "ApiKeyExpires"}, {"Ref": "AWS::NoValue"}]
    }
    assert template["Conditions"]["ApiKeyHasExpiry"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ApiKeyExpires"}, "0"]}]
    }
