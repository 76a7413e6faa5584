"""Who is calling, and by which AppSync authorization mode:

    SigV4 `Authorization`                                   ─▶ AWS_IAM
    a JWT whose `iss` is a configured issuer                ─▶ OPENID_CONNECT / Cognito
    any other `Authorization`, with a Lambda authorizer set  ─▶ AWS_LAMBDA
    (no Lambda authorizer: a JWT goes to the token verifier, which refuses an unknown iss)
    otherwise `x-api-key`, unexpired                        ─▶ API_KEY

Anything else is refused before the request is read any further (HTTP 401), as AppSync does.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable, Collection, Mapping

import jwt

from domain.auth import AuthMode, Caller
from domain.errors import UnauthorizedError
from hemisphere.http.jwt_auth import TokenVerifier, looks_like_a_jwt
from hemisphere.http.lambda_authorizer import LambdaAuthorizer
from hemisphere.http.sigv4 import is_sigv4, verify_sigv4

log = logging.getLogger(__name__)

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
        token_issuers: Collection[str] = (),
        lambda_authorizer: LambdaAuthorizer | None = None,
        api_key_expiry: Mapping[str, float] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`region`: the one SigV4 signatures must be scoped to (this API's region);
        `stream_publisher`: the (akid, secret) the region's change-stream publisher signs
        with (hemisphere.publisher_identity); `tokens`: the issuers whose tokens are
        accepted (None: no token is), named in `token_issuers` (a JWT of another issuer goes
        to the Lambda authorizer when there is one); `api_key_expiry`: epoch seconds after
        which a key is refused like an unknown one."""
        self._api_keys = tuple(k.encode() for k in api_keys)
        self._expiry = tuple((api_key_expiry or {}).get(k) for k in api_keys)
        self._expired_logged: set[int] = set()
        self._clock = clock
        self._iam_credentials = dict(iam_credentials)
        self._stream_publisher = stream_publisher[0] if stream_publisher else None
        if stream_publisher is not None:
            self._iam_credentials[stream_publisher[0]] = stream_publisher[1]
        self._region = region
        self._tokens = tokens
        self._token_issuers = frozenset(i.rstrip("/") for i in token_issuers)
        self._lambda = lambda_authorizer

    async def aclose(self) -> None:
        if self._tokens is not None:
            await self._tokens.aclose()
        if self._lambda is not None:
            await self._lambda.aclose()

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
        if authorization:
            if self._tokens is not None and looks_like_a_jwt(authorization):
                token = authorization.removeprefix("Bearer ").strip()
                if self._lambda is None or self._issuer_of(token) in self._token_issuers:
                    return await self._tokens.verify(token)
            if self._lambda is not None:
                return await self._lambda.authorize(authorization, headers=headers, body=body)
        api_key = headers.get("x-api-key")
        if api_key is not None and self.is_api_key(api_key):
            return Caller(AuthMode.API_KEY, api_key[:8])
        raise UnauthorizedError(NOT_AUTHORIZED)

    @staticmethod
    def _issuer_of(token: str) -> str | None:
        """The `iss` a JWT claims (unverified: it only picks the mode; the verifier checks)."""
        try:
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError:
            return None
        return issuer.rstrip("/") if isinstance(issuer, str) else None

    def is_api_key(self, candidate: str) -> bool:
        """Whether `candidate` is one of the keys and unexpired. An expired key is refused
        as an unknown one is (AppSync tells nothing more); it is logged once."""
        given = candidate.encode()
        # Compare against every key, in constant time, so timing tells nothing.
        matches = [hmac.compare_digest(given, key) for key in self._api_keys]
        if not any(matches):
            return False
        index = matches.index(True)
        expiry = self._expiry[index]
        if expiry is None or self._clock() < expiry:
            return True
        if index not in self._expired_logged:
            self._expired_logged.add(index)
            log.info(
                "refused API key %s...: it expired at %s",
                candidate[:8],
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expiry)),
            )
        return False
