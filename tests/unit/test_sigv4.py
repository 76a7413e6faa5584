from datetime import UTC, datetime, timedelta

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from domain.errors import UnauthorizedError
from hemisphere.http.sigv4 import verify_sigv4

URL = "https://api.example.com/graphql"
CREDENTIALS = {"AKIAEXAMPLE": "secret-key"}


def signed(body: bytes, secret: str = "secret-key", token: str | None = None) -> dict[str, str]:
    request = AWSRequest(
        method="POST", url=URL, data=body, headers={"content-type": "application/json"}
    )
    SigV4Auth(Credentials("AKIAEXAMPLE", secret, token), "appsync", "eu-west-1").add_auth(request)
    return {k.lower(): v for k, v in request.headers.items()} | {"host": "api.example.com"}


def verify(headers: dict[str, str], body: bytes, **kw: object) -> str:
    return verify_sigv4(
        method="POST", url=URL, headers=headers, body=body, credentials=CREDENTIALS, **kw
    )  # type: ignore[arg-type]


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
