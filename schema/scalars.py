"""AppSync's scalars, with AppSync's validation and serialization.

They are *used* in the exported SDL, never declared (AppSync knows them). A value that does not
parse is a GraphQL validation error, as in AppSync.
"""

from __future__ import annotations

import ipaddress
import json
import re
from datetime import UTC, date, datetime, time
from typing import Any, NewType
from urllib.parse import urlsplit

import strawberry
from strawberry.types.scalar import ScalarDefinition

_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
_PHONE = re.compile(r"^\+?[0-9][0-9 ()\-.]{3,30}[0-9]$")
# AppSync's AWSDateTime is ISO 8601 "YYYY-MM-DDThh:mm:ss.sssZ" with a mandatory offset.
_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}(?::\d{2})?)$"
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:Z|[+-]\d{2}:\d{2}(?::\d{2})?)?$")
_TIME = re.compile(r"^\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}(?::\d{2})?)?$")


def _require_str(value: Any, scalar: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"Expected a string for {scalar}, got {type(value).__name__}")
    return value


def parse_datetime(value: Any) -> datetime:
    text = _require_str(value, "AWSDateTime")
    if not _DATETIME.fullmatch(text):
        raise ValueError(f"'{text}' is not a valid AWSDateTime (ISO 8601 with a time zone)")
    try:
        # Python < 3.11 had no 'Z'; fromisoformat takes it from 3.11 on.
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"'{text}' is not a valid AWSDateTime: {exc}") from exc


def serialize_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("AWSDateTime needs a time zone")
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_date(value: Any) -> date:
    text = _require_str(value, "AWSDate")
    if not _DATE.fullmatch(text):
        raise ValueError(f"'{text}' is not a valid AWSDate (YYYY-MM-DD)")
    return date.fromisoformat(text[:10])


def parse_time(value: Any) -> time:
    text = _require_str(value, "AWSTime")
    if not _TIME.fullmatch(text):
        raise ValueError(f"'{text}' is not a valid AWSTime (hh:mm:ss.sss)")
    return time.fromisoformat(text.replace("Z", "+00:00"))


def parse_email(value: Any) -> str:
    text = _require_str(value, "AWSEmail")
    if len(text) > 254 or not _EMAIL.fullmatch(text):
        raise ValueError(f"'{text}' is not a valid AWSEmail")
    return text


def parse_timestamp(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("AWSTimestamp is a whole number of seconds since the epoch")
    return value


def parse_json(value: Any) -> Any:
    text = _require_str(value, "AWSJSON")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"AWSJSON is not valid JSON: {exc.msg}") from exc


def parse_phone(value: Any) -> str:
    text = _require_str(value, "AWSPhone")
    if not _PHONE.fullmatch(text):
        raise ValueError(f"'{text}' is not a valid AWSPhone")
    return text


def parse_url(value: Any) -> str:
    text = _require_str(value, "AWSURL")
    parts = urlsplit(text)
    # urlsplit drops tabs and newlines anywhere in a URL (WHATWG); a stored value must not
    # carry them.
    if (
        any(c.isspace() for c in text)
        or not parts.scheme
        or not (parts.netloc or parts.scheme == "mailto")
    ):
        raise ValueError(f"'{text}' is not a valid AWSURL (scheme://host...)")
    return text


def parse_ip_address(value: Any) -> str:
    text = _require_str(value, "AWSIPAddress")
    try:
        ipaddress.ip_interface(text)
    except ValueError as exc:
        raise ValueError(f"'{text}' is not a valid AWSIPAddress") from exc
    return text


# The Python types the schema names; SCALAR_MAP tells Strawberry how each one travels.
AWSDateTime = NewType("AWSDateTime", datetime)
AWSDate = NewType("AWSDate", date)
AWSTime = NewType("AWSTime", time)
AWSTimestamp = NewType("AWSTimestamp", int)
AWSEmail = NewType("AWSEmail", str)
AWSJSON = NewType("AWSJSON", object)
AWSPhone = NewType("AWSPhone", str)
AWSURL = NewType("AWSURL", str)
AWSIPAddress = NewType("AWSIPAddress", str)


def _json_text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _scalar(name: str, serialize: Any, parse_value: Any) -> ScalarDefinition:
    definition: ScalarDefinition = strawberry.scalar(
        name=name, serialize=serialize, parse_value=parse_value
    )
    return definition


SCALAR_MAP: dict[object, ScalarDefinition] = {
    AWSDateTime: _scalar("AWSDateTime", serialize_datetime, parse_datetime),
    AWSDate: _scalar("AWSDate", date.isoformat, parse_date),
    AWSTime: _scalar("AWSTime", time.isoformat, parse_time),
    AWSTimestamp: _scalar("AWSTimestamp", int, parse_timestamp),
    AWSEmail: _scalar("AWSEmail", str, parse_email),
    AWSJSON: _scalar("AWSJSON", _json_text, parse_json),
    AWSPhone: _scalar("AWSPhone", str, parse_phone),
    AWSURL: _scalar("AWSURL", str, parse_url),
    AWSIPAddress: _scalar("AWSIPAddress", str, parse_ip_address),
}

APPSYNC_SCALARS = frozenset(
    {
        "AWSDate",
        "AWSTime",
        "AWSDateTime",
        "AWSTimestamp",
        "AWSEmail",
        "AWSJSON",
        "AWSPhone",
        "AWSURL",
        "AWSIPAddress",
    }
)
