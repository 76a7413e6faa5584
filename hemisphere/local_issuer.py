"""A token issuer for development: `hemisphere serve` signs tokens with a key kept in its data
directory and publishes the key set on its own port, as an OpenID Connect provider would
(`/.well-known/openid-configuration`, `/.well-known/jwks.json`); `hemisphere token CUSTOMER`
prints a token for a demo customer. In production it is off: HEMISPHERE_OIDC_ISSUER names
the real issuer instead."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

# The development issuer stands in for both token providers AppSync knows: an OpenID Connect
# provider at its URL, and a Cognito user pool (whose tokens carry groups) at URL/userpool.
USER_POOL_PATH = "/userpool"
DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/.well-known/jwks.json"
KEY_FILE = "issuer-key.pem"
ISSUER_FILE = "issuer.json"
AUDIENCE = "hemisphere-local"
TOKEN_SECONDS = 3600


class LocalIssuer:
    def __init__(self, data_dir: Path, issuer_url: str) -> None:
        self.issuer = issuer_url.rstrip("/")
        self.user_pool_issuer = self.issuer + USER_POOL_PATH
        self._key = _kept_key(data_dir / KEY_FILE)
        numbers = self._key.public_key().public_numbers()
        self._public = {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "n": _b64(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
            "e": _b64(numbers.e.to_bytes(3, "big").lstrip(b"\0")),
        }
        # RFC 7638 thumbprint: the same key always has the same kid.
        canonical = json.dumps(
            {k: self._public[k] for k in ("e", "kty", "n")}, separators=(",", ":")
        )
        self._public["kid"] = _b64(hashlib.sha256(canonical.encode()).digest())

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self._public]}

    def openid_configuration(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}{JWKS_PATH}",
            "id_token_signing_alg_values_supported": ["RS256"],
            "subject_types_supported": ["public"],
            "response_types_supported": ["id_token"],
        }

    def documents(self) -> dict[str, dict[str, Any]]:
        """What the issuer publishes, by path under its URL: the OpenID Connect discovery
        document and key set, and the user pool's key set where Cognito publishes it
        (<pool issuer>/.well-known/jwks.json). Whoever serves the issuer serves these."""
        return {
            DISCOVERY_PATH: self.openid_configuration(),
            JWKS_PATH: self.jwks(),
            USER_POOL_PATH + JWKS_PATH: self.jwks(),
        }

    def token(
        self,
        customer_id: str,
        groups: Sequence[str] = (),
        seconds: int = TOKEN_SECONDS,
        *,
        user_pool: bool = False,
    ) -> str:
        """An OIDC token for `customer_id`; with `user_pool`, a Cognito user pool ID token
        instead (AMAZON_COGNITO_USER_POOLS, its `cognito:groups` read as groups)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.user_pool_issuer if user_pool else self.issuer,
            "sub": customer_id,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + seconds,
            "jti": uuid.uuid4().hex,
            "custom:customerId": customer_id,
            "cognito:groups": list(groups),
        }
        if user_pool:
            claims["token_use"] = "id"
        return jwt.encode(
            claims, self._key, algorithm="RS256", headers={"kid": self._public["kid"]}
        )

    def remember(self, data_dir: Path) -> None:
        """Where this issuer is, for `hemisphere token` beside a running serve."""
        (data_dir / ISSUER_FILE).write_text(json.dumps({"issuer": self.issuer}))


# A token is replaced when less than this is left of it (a request may be slow).
RENEW_BEFORE_S = 300.0


class CustomerTokens:
    """Tokens of one issuer for the customers a client acts as (the drill's users, the
    benchmarks' clients): one per customer, kept until it nears its expiry (signing is an RSA
    operation, which a real client does not pay per request either)."""

    def __init__(
        self,
        issuer: LocalIssuer,
        *,
        seconds: int = TOKEN_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._issuer = issuer
        self._seconds = seconds
        self._clock = clock
        self._made: dict[str, tuple[str, float]] = {}

    def token(self, customer_id: str) -> str:
        """The raw JWT (no "Bearer"), as AppSync's OPENID_CONNECT mode takes it."""
        made = self._made.get(customer_id)
        now = self._clock()
        if made is None or made[1] - now < min(RENEW_BEFORE_S, self._seconds / 2):
            made = (self._issuer.token(customer_id, seconds=self._seconds), now + self._seconds)
            self._made[customer_id] = made
        return made[0]

    def headers(self, customer_id: str) -> dict[str, str]:
        """The HTTP headers of a request made as `customer_id`."""
        return {"authorization": self.token(customer_id)}


def issuer_of(data_dir: Path) -> LocalIssuer | None:
    """The issuer a serve with data in `data_dir` runs, or None."""
    path = data_dir / ISSUER_FILE
    if not path.exists() or not (data_dir / KEY_FILE).exists():
        return None
    return LocalIssuer(data_dir, json.loads(path.read_text())["issuer"])


def _kept_key(path: Path) -> rsa.RSAPrivateKey:
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return key


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
