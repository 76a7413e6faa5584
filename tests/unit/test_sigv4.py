import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from domain.errors import UnauthorizedError
from hemisphere.http.sigv4 import verify_sigv4

URL = "https://api.example.com/graphql"
CREDENTIALS = {"AKIAEXAMPLE": "secret-key"}


def signed(
    body: bytes,
    secret: str = "secret-key",
    token: str | None = None,
    *,
    service: str = "appsync",
    region: str = "eu-west-1",
    content_sha256: str | None = None,
) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if content_sha256 is not None:
        headers["x-amz-content-sha256"] = content_sha256
    request = AWSRequest(method="POST", url=URL, data=body, headers=headers)
    SigV4Auth(Credentials("AKIAEXAMPLE", secret, token), service, region).add_auth(request)
    return {k.lower(): v for k, v in request.headers.items()} | {"host": "api.example.com"}


def verify(headers: dict[str, str], body: bytes, **kw: object) -> str:
    return verify_sigv4(
        method="POST",
        url=URL,
        headers=headers,
        body=body,
        credentials=CREDENTIALS,
        region="eu-west-1",
        **kw,  # type: ignore[arg-type]
    )


def test_a_correct_signature_names_its_key() -> None:
    body = b'{"query":"{ region { region } }"}'
    assert verify(signed(body), body) == "AKIAEXAMPLE"
    assert verify(signed(body, token="session-token"), body) == "AKIAEXAMPLE"


@pytest.mark.parametrize("change", ["body", "secret", "akid", "date", "unsigned-host"])
def test_anything_else_is_refused(change: str) -> None:
    body = b'{"query":"{ region { region } }"}'
    headers = signed(body, secret="wrong" if change == "secret" else "secret-key")
    if change == "body":
        body = body.replace(b"region }", b"epoch }")
    if change == "akid":
        headers["authorization"] = headers["authorization"].replace("AKIAEXAMPLE", "AKIAOTHER")
    if change == "date":
        headers["x-amz-date"] = "20200101T000000Z"
    if change == "unsigned-host":
        headers["authorization"] = headers["authorization"].replace("host;", "")
    with pytest.raises(UnauthorizedError):
        verify(headers, body)


def test_old_signatures_expire() -> None:
    body = b"{}"
    headers = signed(body)
    later = datetime.now(UTC) + timedelta(minutes=20)
    with pytest.raises(UnauthorizedError, match="expired"):
        verify(headers, body, now=later)


QUERY = b'{"query":"{ region { region } }"}'
MUTATION = b'{"query":"mutation { upsertProduct(input: {sku: \\"X\\"}) { id } }"}'


@pytest.mark.parametrize("claimed", ["body-hash", "UNSIGNED-PAYLOAD"])
def test_a_signed_payload_hash_must_be_the_bodys(claimed: str) -> None:
    """One captured request must not run another body: the hash botocore would take on trust
    from x-amz-content-sha256 is checked against the body actually sent."""
    value = hashlib.sha256(QUERY).hexdigest() if claimed == "body-hash" else claimed
    headers = signed(QUERY, content_sha256=value)
    if claimed == "body-hash":
        assert verify(headers, QUERY) == "AKIAEXAMPLE"  # the honest request passes
    with pytest.raises(UnauthorizedError, match="x-amz-content-sha256"):
        verify(headers, MUTATION)


@pytest.mark.parametrize(
    ("service", "region"),
    [("s3", "eu-west-1"), ("execute-api", "eu-west-1"), ("appsync", "us-east-1")],
)
def test_the_credential_scope_must_be_this_region_and_appsync(service: str, region: str) -> None:
    headers = signed(QUERY, service=service, region=region)
    with pytest.raises(UnauthorizedError, match="scoped"):
        verify(headers, QUERY)


def test_the_clock_skew_window_is_five_minutes() -> None:
    headers = signed(QUERY)
    assert verify(headers, QUERY, now=datetime.now(UTC) + timedelta(minutes=4)) == "AKIAEXAMPLE"
    with pytest.raises(UnauthorizedError, match="expired"):
        verify(headers, QUERY, now=datetime.now(UTC) + timedelta(minutes=6))
