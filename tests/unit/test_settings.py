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


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "notaurl"),
        ("DATABASE_URL", "mysql://db/x"),
        ("DATABASE_URL", "postgresql://host:notaport/db"),
        ("AWS_ENDPOINT_URL", "localhost:4566"),
        ("REDIS_URL", "127.0.0.1:6379"),
        ("HEMISPHERE_PUBLISH_URL", "ftp://x/graphql"),
        ("HEMISPHERE_TABLE", "a"),
        ("HEMISPHERE_LOG_LEVEL", "LOUD"),
        ("HEMISPHERE_SHUTDOWN_TIMEOUT", "soon"),
        ("HEMISPHERE_STARTUP_TIMEOUT", "-1"),
        ("HEMISPHERE_SEED_DEMO_DATA", "maybe"),
    ],
)
def test_malformed_backends_and_process_settings_name_their_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_a_database_url_error_does_not_repeat_its_password() -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env({"DATABASE_URL": "postgresql://u:s3cret@host:port/db"})
    assert "s3cret" not in str(error.value)


def test_process_settings() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://postgres@/hemisphere?host=/tmp/pg",
            "REDIS_URL": "unix:///tmp/redis.sock",
            "HEMISPHERE_SHUTDOWN_TIMEOUT": "4.5",
            "HEMISPHERE_STARTUP_TIMEOUT": "120",
            "HEMISPHERE_SEED_DEMO_DATA": "yes",
            "HEMISPHERE_REBUILD_PROJECTIONS": "1",
        }
    )
    assert settings.shutdown_timeout_seconds == 4.5 and settings.startup_timeout_seconds == 120
    assert settings.seed_demo_data and settings.rebuild_projections
    defaults = Settings.from_env({})
    assert defaults.shutdown_timeout_seconds == 10 and defaults.startup_timeout_seconds == 60
    assert not defaults.seed_demo_data and not defaults.rebuild_projections


def test_every_region_s_database() -> None:
    settings = Settings.from_env(
        {
            "HEMISPHERE_REGION_DATABASE_URLS": (
                "us-east-1=postgresql://u@127.0.0.1:5432/h, eu-west-1=postgresql://u@h:6432/h"
            )
        }
    )
    assert settings.region_database_urls == {
        "us-east-1": "postgresql://u@127.0.0.1:5432/h",
        "eu-west-1": "postgresql://u@h:6432/h",
    }
    for bad in ("us-east-1", "nowhere=postgresql://h/d", "us-east-1=http://h:1"):
        with pytest.raises(SettingsError, match="HEMISPHERE_REGION_DATABASE_URLS"):
            Settings.from_env({"HEMISPHERE_REGION_DATABASE_URLS": bad})
    with pytest.raises(SettingsError) as error:
        Settings.from_env({"HEMISPHERE_REGION_DATABASE_URLS": "us-east-1=postgresql://u:s3cret@"})
    assert "s3cret" not in str(error.value)
