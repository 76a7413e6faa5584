"""Bearer tokens, as AppSync checks them for OPENID_CONNECT and AMAZON_COGNITO_USER_POOLS: the
raw JWT in the `Authorization` header (over HTTP and both real-time protocols), signed by a
key the issuer publishes, for this API's client id when one is configured, and in date.

    token ─▶ header: an asymmetric `alg` (never `none`, never HMAC: the key set is public)
          ─▶ `iss` names a configured issuer (OIDC, or the Cognito user pool's)
          ─▶ the issuer's key set (discovered through .well-known/openid-configuration,
             cached; an unknown `kid` fetches it again, at most every MIN_REFRESH seconds,
             so a rotated key is picked up and a flood of forged kids is not an amplifier)
          ─▶ signature, exp / nbf / iat (LEEWAY seconds of clock skew), aud / client_id
          ─▶ Caller(mode, subject, customer id from the configured claim, groups)

A token verified once is answered from memory until it expires (at most VERIFIED_TTL, at most
VERIFIED_MAX tokens, the least recently used first): a client sends the same token with every
request, and its signature and claims cannot change. A key withdrawn from the issuer's set is
trusted that much longer, as it is until the set is next fetched anyway.

Any failure is UnauthorizedError with one message for all of them (what failed is logged at
DEBUG): AppSync tells a caller no more than that it is not authorized.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from jwt import PyJWK, PyJWKSet

from domain.auth import AuthMode, Caller
from domain.errors import UnauthorizedError
from hemisphere.http.expiring_lru import ExpiringLru

log = logging.getLogger(__name__)

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
# Clock skew allowed on exp, nbf and iat.
LEEWAY = 5.0
# A key set is trusted this long, then fetched again; an unknown kid refetches sooner.
KEYS_TTL = 3600.0
MIN_REFRESH = 30.0
REFUSED = "Valid authorization header not provided."
# Verified tokens kept: for how long at most, and how many (about 1 KB each).
VERIFIED_TTL = 300.0
VERIFIED_MAX = 4096


@dataclass(frozen=True, slots=True)
class TokenIssuer:
    """One issuer this API accepts tokens from."""

    mode: AuthMode  # OPENID_CONNECT or AMAZON_COGNITO_USER_POOLS
    issuer: str
    client_id: str | None = None
    customer_claim: str = "sub"
    groups_claim: str | None = None
    # Where the keys are, when not where discovery says (Cognito: `<issuer>/.well-known/
    # jwks.json`; an override for tests and private networks).
    jwks_url: str | None = None
    # The key set itself, when this process is the issuer (hemisphere.local_issuer).
    jwks: Mapping[str, Any] | None = None


def cognito_issuer(
    user_pool_id: str, client_id: str | None, jwks_url: str | None = None
) -> TokenIssuer:
    region = user_pool_id.split("_", 1)[0]
    issuer = f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"
    return TokenIssuer(
        mode=AuthMode.AMAZON_COGNITO_USER_POOLS,
        issuer=issuer,
        client_id=client_id,
        customer_claim="custom:customerId",
        groups_claim="cognito:groups",
        jwks_url=jwks_url or f"{issuer}/.well-known/jwks.json",
    )


@dataclass
class _KeySet:
    keys: dict[str, PyJWK] = field(default_factory=dict)
    fetched_at: float = float("-inf")


def looks_like_a_jwt(authorization: str | None) -> bool:
    return authorization is not None and authorization.count(".") == 2


class TokenVerifier:
    def __init__(
        self,
        issuers: Sequence[TokenIssuer],
        http: httpx.AsyncClient | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`http`: the client that fetches key sets (made on first use when not given)."""
        self._issuers = {i.issuer.rstrip("/"): i for i in issuers}
        self._http = http
        self._own_http = http is None
        self._clock = clock
        self._keys: dict[str, _KeySet] = {}
        self._verified: ExpiringLru[str, Caller] = ExpiringLru(VERIFIED_MAX, clock)

    async def aclose(self) -> None:
        if self._own_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=5.0)
        return self._http

    async def verify(self, token: str) -> Caller:
        known = self._verified.get(token)
        if known is not None:
            return known
        try:
            caller, expires_at = await self._verify(token)
        except (jwt.PyJWTError, KeyError, ValueError, httpx.HTTPError) as error:
            log.debug("token refused: %s", error)
            raise UnauthorizedError(REFUSED) from None
        # Until the instant the check of `exp` would refuse it.
        self._verified.put(token, caller, min(VERIFIED_TTL, expires_at + LEEWAY - self._clock()))
        return caller

    async def _verify(self, token: str) -> tuple[Caller, float]:
        """The token's caller and its expiry (`exp`, seconds since the epoch)."""
        header = jwt.get_unverified_header(token)
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm {algorithm!r} is not accepted")
        unverified = jwt.decode(token, options={"verify_signature": False})
        issuer = self._issuers.get(str(unverified.get("iss", "")).rstrip("/"))
        if issuer is None:
            raise ValueError(f"issuer {unverified.get('iss')!r} is not configured")
        key = await self._key(issuer, header.get("kid"))
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[algorithm],
            issuer=unverified["iss"],
            leeway=LEEWAY,
            options={"require": ["exp", "iat", "iss", "sub"], "verify_aud": False},
        )
        self._check_client(issuer, claims)
        if claims["iat"] > self._clock() + LEEWAY:
            raise ValueError("issued in the future")
        customer = claims.get(issuer.customer_claim)
        groups = claims.get(issuer.groups_claim, ()) if issuer.groups_claim else ()
        caller = Caller(
            issuer.mode,
            str(claims["sub"]),
            customer_id=str(customer) if customer is not None else None,
            groups=tuple(str(g) for g in groups) if isinstance(groups, list) else (),
        )
        return caller, float(claims["exp"])

    @staticmethod
    def _check_client(issuer: TokenIssuer, claims: Mapping[str, Any]) -> None:
        if issuer.mode is AuthMode.AMAZON_COGNITO_USER_POOLS:
            use = claims.get("token_use")
            if use not in ("id", "access"):
                raise ValueError(f"token_use {use!r}")
            client = claims.get("aud") if use == "id" else claims.get("client_id")
            if issuer.client_id is not None and client != issuer.client_id:
                raise ValueError("issued for another client")
            return
        if issuer.client_id is None:
            return
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if issuer.client_id not in audiences:
            raise ValueError("issued for another audience")

    async def _key(self, issuer: TokenIssuer, kid: object) -> PyJWK:
        keys = self._keys.setdefault(issuer.issuer, _KeySet())
        age = self._clock() - keys.fetched_at
        if age > KEYS_TTL or (kid not in keys.keys and age > MIN_REFRESH):
            keys.keys = await self._fetch(issuer)
            keys.fetched_at = self._clock()
        if not isinstance(kid, str) or kid not in keys.keys:
            raise ValueError(f"no key {kid!r} in the issuer's key set")
        return keys.keys[kid]

    async def _fetch(self, issuer: TokenIssuer) -> dict[str, PyJWK]:
        if issuer.jwks is not None:
            return _keys_by_id(dict(issuer.jwks))
        url = issuer.jwks_url
        if url is None:
            discovery = await self._client().get(
                issuer.issuer.rstrip("/") + "/.well-known/openid-configuration"
            )
            discovery.raise_for_status()
            url = str(discovery.json()["jwks_uri"])
        response = await self._client().get(url)
        response.raise_for_status()
        return _keys_by_id(response.json())


def _keys_by_id(jwks: dict[str, Any]) -> dict[str, PyJWK]:
    return {key.key_id: key for key in PyJWKSet.from_dict(jwks).keys if key.key_id}


def token_issuers(
    *,
    oidc_issuer: str | None,
    oidc_client_id: str | None,
    oidc_customer_claim: str,
    cognito_user_pool_id: str | None,
    cognito_client_id: str | None,
    cognito_jwks_url: str | None,
    local_jwks: Mapping[str, Any] | None = None,
) -> list[TokenIssuer]:
    """The issuers a configuration names (settings' HEMISPHERE_OIDC_* and _COGNITO_*)."""
    issuers = []
    if oidc_issuer is not None:
        issuers.append(
            TokenIssuer(
                AuthMode.OPENID_CONNECT,
                oidc_issuer,
                client_id=oidc_client_id,
                customer_claim=oidc_customer_claim,
                jwks=local_jwks,
            )
        )
    if cognito_user_pool_id is not None:
        issuers.append(cognito_issuer(cognito_user_pool_id, cognito_client_id, cognito_jwks_url))
    return issuers
