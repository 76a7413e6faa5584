"""Who is calling: an API key (`x-api-key`), an IAM principal (SigV4), or the bearer of a
token (OIDC or Cognito user pools: the JWT itself in `Authorization`). Anything else is
refused before the request is read any further (HTTP 401), as AppSync does."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from domain.auth import AuthMode, Caller
from domain.errors import UnauthorizedError
from hemisphere.http.jwt_auth import TokenVerifier, looks_like_a_jwt
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
        tokens: TokenVerifier | None = None,
    ) -> None:
        """`region`: the one SigV4 signatures must be scoped to (this API's region);
        `stream_publisher`: the (akid, secret) the region's change-stream publisher signs
        with (hemisphere.publisher_identity); `tokens`: the issuers whose tokens are
        accepted (None: no token is)."""
        self._api_keys = tuple(k.encode() for k in api_keys)
        self._iam_credentials = dict(iam_credentials)
        self._stream_publisher = stream_publisher[0] if stream_publisher else None
        if stream_publisher is not None:
            self._iam_credentials[stream_publisher[0]] = stream_publisher[1]
        self._region = region
        self._tokens = tokens

    async def authenticate(
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
        if self._tokens is not None and looks_like_a_jwt(authorization):
            assert authorization is not None
            return await self._tokens.verify(authorization.removeprefix("Bearer ").strip())
        api_key = headers.get("x-api-key")
        if api_key is not None and self.is_api_key(api_key):
            return Caller(AuthMode.API_KEY, api_key[:8])
        raise UnauthorizedError(NOT_AUTHORIZED)

    def is_api_key(self, candidate: str) -> bool:
        given = candidate.encode()
        # Compare against every key, in constant time, so timing tells nothing.
        return any([hmac.compare_digest(given, key) for key in self._api_keys])
