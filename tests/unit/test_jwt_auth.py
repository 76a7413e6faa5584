"""Bearer tokens as AppSync checks them (OIDC and Cognito user pools): signature by a key the
issuer publishes, issuer, dates, client id; every failure is the same refusal."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from domain.auth import AuthMode
from domain.errors import UnauthorizedError
from hemisphere.http.jwt_auth import TokenIssuer, TokenVerifier, cognito_issuer
from hemisphere.local_issuer import LocalIssuer

ISSUER = "https://issuer.example"


@pytest.fixture
def issuer(tmp_path: Path) -> LocalIssuer:
    return LocalIssuer(tmp_path, ISSUER)


def serving(keys: Callable[[], dict[str, Any]], log: list[str]) -> httpx.AsyncClient:
    """The issuer's discovery documents, over a fake transport (what a real issuer serves)."""

    def handle(request: httpx.Request) -> httpx.Response:
        log.append(request.url.path)
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(200, json={"issuer": ISSUER, "jwks_uri": f"{ISSUER}/jwks"})
        if request.url.path == "/jwks":
            return httpx.Response(200, json=keys())
        return httpx.Response(404)

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


def verifier(issuer: LocalIssuer, log: list[str] | None = None, **kw: Any) -> TokenVerifier:
    oidc = TokenIssuer(AuthMode.OPENID_CONNECT, ISSUER, **kw)
    return TokenVerifier([oidc], serving(issuer.jwks, log if log is not None else []))


def forged(claims: dict[str, Any], **header: Any) -> str:
    now = int(time.time())
    base = {"iss": ISSUER, "sub": "c-0001", "iat": now, "exp": now + 60}
    return jwt.encode(
        {**base, **claims},
        "not-the-issuers-key-but-long-enough-for-hs256",
        algorithm="HS256",
        headers=header,
    )


async def test_a_token_of_the_issuer_names_its_customer(issuer: LocalIssuer) -> None:
    log: list[str] = []
    tokens = verifier(issuer, log, client_id="hemisphere-local")
    caller = await tokens.verify(issuer.token("c-0007", ["admins"]))
    assert caller.mode is AuthMode.OPENID_CONNECT
    assert caller.principal == "c-0007" and caller.customer_id == "c-0007"
    await tokens.verify(issuer.token("c-0008"))
    # Discovery, then the key set, once: the keys are cached.
    assert log == ["/.well-known/openid-configuration", "/jwks"]


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda i: i.token("c-1", seconds=-60), id="expired"),
        pytest.param(lambda i: LocalIssuer(i._dir2, ISSUER).token("c-1"), id="another key"),
        pytest.param(lambda i: forged({}, kid="x"), id="hmac with a guessed secret"),
        pytest.param(
            lambda i: jwt.encode({"iss": ISSUER, "sub": "c-1"}, None, algorithm="none"),
            id="alg none",
        ),
        pytest.param(lambda i: "not.a.token", id="garbage"),
    ],
)
async def test_anything_else_is_refused_alike(
    issuer: LocalIssuer, tmp_path: Path, make: Callable[[Any], str]
) -> None:
    issuer._dir2 = tmp_path / "other"  # type: ignore[attr-defined]
    with pytest.raises(UnauthorizedError, match="Valid authorization header not provided"):
        await verifier(issuer).verify(make(issuer))


async def test_a_token_for_another_audience_or_issuer_is_refused(
    issuer: LocalIssuer, tmp_path: Path
) -> None:
    with pytest.raises(UnauthorizedError):
        await verifier(issuer, client_id="another-app").verify(issuer.token("c-1"))
    elsewhere = LocalIssuer(tmp_path, "https://elsewhere.example")
    with pytest.raises(UnauthorizedError):
        await verifier(issuer).verify(elsewhere.token("c-1"))


async def test_a_rotated_key_is_fetched_when_a_token_names_it(
    issuer: LocalIssuer, tmp_path: Path
) -> None:
    rotated = LocalIssuer(tmp_path / "rotated", ISSUER)
    published = issuer.jwks
    log: list[str] = []
    clock = [time.time()]
    tokens = TokenVerifier(
        [TokenIssuer(AuthMode.OPENID_CONNECT, ISSUER)],
        serving(lambda: published(), log),
        clock=lambda: clock[0],
    )
    await tokens.verify(issuer.token("c-1"))
    published = rotated.jwks  # the issuer rotates its key
    clock[0] += 31  # past the minimum interval between fetches
    await tokens.verify(rotated.token("c-1"))
    assert log.count("/jwks") == 2


async def test_cognito_tokens_carry_groups_and_the_customer_attribute(
    issuer: LocalIssuer,
) -> None:
    pool = cognito_issuer("us-east-1_Pool1", client_id="app-client", jwks_url=f"{ISSUER}/jwks")
    now = int(time.time())
    claims = {
        "iss": pool.issuer,
        "sub": "user-1",
        "iat": now,
        "exp": now + 60,
        "token_use": "id",
        "aud": "app-client",
        "cognito:groups": ["admins"],
        "custom:customerId": "c-0042",
    }
    key = issuer._key
    kid = issuer.jwks()["keys"][0]["kid"]
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})
    tokens = TokenVerifier([pool], serving(issuer.jwks, []))
    caller = await tokens.verify(token)
    assert caller.mode is AuthMode.AMAZON_COGNITO_USER_POOLS
    assert caller.customer_id == "c-0042" and caller.groups == ("admins",)
    other_client = jwt.encode(
        {**claims, "aud": "other"}, key, algorithm="RS256", headers={"kid": kid}
    )
    with pytest.raises(UnauthorizedError):
        await tokens.verify(other_client)
    refresh = jwt.encode(
        {**claims, "token_use": "refresh"}, key, algorithm="RS256", headers={"kid": kid}
    )
    with pytest.raises(UnauthorizedError):
        await tokens.verify(refresh)


async def test_a_verified_token_is_answered_from_memory_until_it_expires(
    issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [time.time()]
    tokens = TokenVerifier(
        [TokenIssuer(AuthMode.OPENID_CONNECT, ISSUER)],
        serving(issuer.jwks, []),
        clock=lambda: clock[0],
    )
    token = issuer.token("c-0007", seconds=120)
    decoded: list[str] = []
    real_decode = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **kw: decoded.append("") or real_decode(*a, **kw))
    first = await tokens.verify(token)
    checks = len(decoded)
    assert checks > 0
    # The same token again (a client sends it with every request): no verification work.
    assert await tokens.verify(token) == first
    assert len(decoded) == checks
    # Past its `exp` and the leeway, memory has nothing to say: it is verified again
    # (and PyJWT refuses it once the real clock gets there).
    expires = real_decode(token, options={"verify_signature": False})["exp"]
    clock[0] = expires + 5.0
    await tokens.verify(token)
    assert len(decoded) == 2 * checks
