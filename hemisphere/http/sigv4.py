"""Verify AWS Signature Version 4 on an incoming request, as AppSync does for AWS_IAM callers.

botocore computes the canonical request and the signature; we rebuild the request from the
headers the caller signed and compare signatures in constant time. What botocore takes on
trust we check ourselves, as AWS does: the payload hash is the real body's (botocore signs
whatever `x-amz-content-sha256` claims), and the credential scope names this region and the
`appsync` service (a signature made for S3 or for another region is not one for us).
"""

from __future__ import annotations

import hashlib
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
# SigV4 requests must reach AWS within five minutes of their X-Amz-Date (AWS's SigV4
# documentation); a captured request is replayable for no longer than that.
MAX_CLOCK_SKEW = timedelta(minutes=5)
SERVICE = "appsync"


def is_sigv4(authorization: str | None) -> bool:
    return authorization is not None and authorization.startswith("AWS4-HMAC-SHA256")


def verify_sigv4(
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: Mapping[str, str],
    region: str,
    now: datetime | None = None,
) -> str:
    """Returns the access key id of a request correctly signed for `appsync` in `region`;
    raises UnauthorizedError."""
    match = _AUTHORIZATION.match(headers.get("authorization", ""))
    if match is None:
        raise UnauthorizedError("Malformed AWS4-HMAC-SHA256 Authorization header.")
    if match["service"] != SERVICE or match["region"] != region:
        raise UnauthorizedError(
            f"Credential should be scoped to a valid region ({region}) and to the "
            f"'{SERVICE}' service."
        )
    claimed_hash = headers.get("x-amz-content-sha256")
    if claimed_hash is not None and not hmac.compare_digest(
        claimed_hash, hashlib.sha256(body).hexdigest()
    ):
        raise UnauthorizedError(
            "The provided x-amz-content-sha256 header does not match the request body."
        )
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
