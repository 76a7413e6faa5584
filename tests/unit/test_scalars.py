from datetime import UTC, datetime, timedelta, timezone

import pytest

from schema import scalars


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-27T10:00:00Z",
        "2026-11-27T10:00:00.123Z",
        "2026-11-27T10:00:00+01:00",
        "2026-11-27T10:00Z",
    ],
)
def test_datetime_accepts_iso_8601_with_a_zone(text: str) -> None:
    assert scalars.parse_datetime(text).tzinfo is not None


@pytest.mark.parametrize(
    "text", ["2026-11-27T10:00:00", "2026-11-27", "yesterday", "2026-13-40T10:00:00Z", ""]
)
def test_datetime_refuses_the_rest(text: str) -> None:
    with pytest.raises(ValueError, match="AWSDateTime"):
        scalars.parse_datetime(text)


def test_datetime_serializes_as_utc_milliseconds() -> None:
    value = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2)))
    assert scalars.serialize_datetime(value) == "2026-01-02T01:04:05.678Z"
    with pytest.raises(ValueError):
        scalars.serialize_datetime(datetime(2026, 1, 1))
    assert scalars.serialize_datetime(datetime(2026, 1, 1, tzinfo=UTC)).endswith("00.000Z")


@pytest.mark.parametrize("text", ["a@example.com", "first.last+tag@sub.example.co.uk"])
def test_email_accepts(text: str) -> None:
    assert scalars.parse_email(text) == text


@pytest.mark.parametrize("text", ["not-an-email", "a@b", "@example.com", "a b@example.com", 42])
def test_email_refuses(text: object) -> None:
    with pytest.raises(ValueError):
        scalars.parse_email(text)


def test_other_appsync_scalars() -> None:
    assert scalars.parse_json('{"a": [1]}') == {"a": [1]}
    with pytest.raises(ValueError):
        scalars.parse_json("{nope")
    assert scalars.parse_ip_address("10.0.0.1/8") == "10.0.0.1/8"
    assert scalars.parse_ip_address("::1") == "::1"
    with pytest.raises(ValueError):
        scalars.parse_ip_address("999.1.1.1")
    assert scalars.parse_url("https://example.com/x") == "https://example.com/x"
    with pytest.raises(ValueError):
        scalars.parse_url("example.com")
    assert scalars.parse_phone("+1 (555) 010-9999")
    with pytest.raises(ValueError):
        scalars.parse_phone("call me")
    assert scalars.parse_timestamp(1700000000) == 1700000000
    with pytest.raises(ValueError):
        scalars.parse_timestamp(True)
    assert str(scalars.parse_date("2026-11-27")) == "2026-11-27"
    with pytest.raises(ValueError):
        scalars.parse_date("27/11/2026")
    assert scalars.parse_time("10:11:12.123Z").minute == 11


@pytest.mark.parametrize(
    ("parse", "valid"),
    [
        (scalars.parse_email, "a@b.com"),
        (scalars.parse_datetime, "2026-11-27T10:00:00Z"),
        (scalars.parse_date, "2026-11-27"),
        (scalars.parse_time, "10:00:00"),
        (scalars.parse_phone, "+1 555 0100"),
        (scalars.parse_url, "https://example.com/a"),
    ],
)
def test_a_trailing_newline_is_not_part_of_a_valid_value(parse: object, valid: str) -> None:
    """`$` matches before a final newline: `a@b.com\\n` passed and was stored as given."""
    assert callable(parse)
    parse(valid)
    with pytest.raises(ValueError):
        parse(valid + "\n")
