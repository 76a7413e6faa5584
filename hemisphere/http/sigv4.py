"""Verify AWS Signature Version 4 on an incoming request, as AppSync does for AWS_IAM callers.

botocore computes the canonical request and the signature; we rebuild the request from the
headers the caller signed and compare signatures in constant time.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from domain.errors import UnauthorizedError

_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<akid>[^/\s]+)/(?P<date>\d{8})/(?P<region>[^/\s]+)/"
    r"(?P<service>[^/\s]+)/aws4_request,\s*SignedHeaders=(?P<signed>[^,\s]+),\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)
# AWS refuses signatures whose time is further than this from its own clock.
MAX_CLOCK_SKEW = timedelta(minutes=15)


def is_sigv4(authorization: str | None) -> bool:
    return authorization is not None and authorization.startswith("AWS4-HMAC-SHA256")


def verify_sigv4(
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: Mapping[str, str],
    now: datetime | None = None,
) -> str:
    """Returns the access key id of a correctly signed request; raises UnauthorizedError."""
    match = _AUTHORIZATION.match(headers.get("authorization", ""))
    if match is None:
        raise UnauthorizedError("Malformed AWS4-HMAC-SHA256 Authorization header.")
    akid = match["akid"]
    secret = credentials.get(akid)
    if secret is None:
        raise UnauthorizedError("The security token included in the request is invalid.")
    amz_date = headers.get("x-amz-date", "")
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise UnauthorizedError("The request has no valid X-Amz-Date header.") from exc
    if abs((now or datetime.now(UTC)) - signed_at) > MAX_CLOCK_SKEW:
        raise UnauthorizedError("Signature expired: the request time is too far from now.")
    if not amz_date.startswith(match["date"]):
        raise UnauthorizedError("The credential scope date does not match X-Amz-Date.")

    signed = match["signed"].split(";")
    if "host" not in signed:
        raise UnauthorizedError("The Host header must be signed.")
    try:
        signed_headers = {name: headers[name] for name in signed}
    except KeyError as exc:
        raise UnauthorizedError(f"Signed header {exc.args[0]} is missing.") from exc

    request = AWSRequest(method=method, url=url, data=body, headers=signed_headers)
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(
        Credentials(akid, secret, headers.get("x-amz-security-token")),
        match["service"],
        match["region"],
    )
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, match["signature"]):
        raise UnauthorizedError(
            "The request signature we calculated does not match the signature you provided."
        )
    return akid
