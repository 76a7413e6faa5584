import pytest

from hemisphere.settings import Settings, SettingsError


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.region == settings.primary_region == "us-east-1"
    assert settings.database_url is None and settings.api_keys == ()


def test_reads_the_environment() -> None:
    settings = Settings.from_env(
        {
            "HEMISPHERE_REGION": "eu-west-1",
            "HEMISPHERE_PRIMARY_REGION": "us-east-1",
            "HEMISPHERE_API_KEYS": "da2-aaaaaaaaaa, da2-bbbbbbbbbb",
            "HEMISPHERE_IAM_CREDENTIALS": "AKIA1:s1,AKIA2:s2",
            "DATABASE_URL": "postgresql://x/y",
        }
    )
    assert settings.region == "eu-west-1" and settings.primary_region == "us-east-1"
    assert settings.api_keys == ("da2-aaaaaaaaaa", "da2-bbbbbbbbbb")
    assert settings.iam_credentials == {"AKIA1": "s1", "AKIA2": "s2"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HEMISPHERE_REGION", "mars"),
        ("HEMISPHERE_IAM_CREDENTIALS", "no-colon"),
        ("HEMISPHERE_API_KEYS", "short"),
    ],
)
def test_malformed_settings_name_their_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})
