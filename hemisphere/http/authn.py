"""Who is calling: an API key (`x-api-key`) or an IAM principal (SigV4). Anything else is
refused before the request is read any further (HTTP 401), as AppSync does."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from domain.auth import AuthMode, Caller
from domain.errors import UnauthorizedError
from hemisphere.http.sigv4 import is_sigv4, verify_sigv4

NOT_AUTHORIZED = "You are not authorized to make this call."


class Authenticator:
    def __init__(
        self,
        api_keys: tuple[str, ...],
        iam_credentials: Mapping[str, str],
        *,
        region: str,
        stream_publisher: tuple[str, str] | None = None,
    ) -> None:
        """`region`: the one SigV4 signatures must be scoped to (this API's region);
        `stream_publisher`: the (akid, secret) the region's change-stream publisher signs
        with (hemisphere.publisher_identity)."""
        self._api_keys = tuple(k.encode() for k in api_keys)
        self._iam_credentials = dict(iam_credentials)
        self._stream_publisher = stream_publisher[0] if stream_publisher else None
        if stream_publisher is not None:
            self._iam_credentials[stream_publisher[0]] = stream_publisher[1]
        self._region = region

    def authenticate(
        self, *, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> Caller:
        """`headers` must have lower-case names."""
        authorization = headers.get("authorization")
        if is_sigv4(authorization):
            akid = verify_sigv4(
                method=method,
                url=url,
                headers=headers,
                body=body,
                credentials=self._iam_credentials,
                region=self._region,
            )
            return Caller(AuthMode.AWS_IAM, akid, stream_publisher=akid == self._stream_publisher)
        api_key = headers.get("x-api-key")
        if api_key is not None and self.is_api_key(api_key):
            return Caller(AuthMode.API_KEY, api_key[:8])
        raise UnauthorizedError(NOT_AUTHORIZED)

    def is_api_key(self, candidate: str) -> bool:
        given = candidate.encode()
        # Compare against every key, in constant time, so timing tells nothing.
        return any([hmac.compare_digest(given, key) for key in self._api_keys])
