"""Who the drill's users are: each acts as a demo customer, with a token of that customer
from the development issuer of the `hemisphere up` whose data directory the drill reads
(hemisphere/local_issuer.py; contract v2: customer data and checkouts need an identity, and a
token acts on its own customer only). Catalog reads and the region probe keep the API key.

A token is made once per customer and used until it nears its expiry (signing is an RSA
operation: not one per request)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from hemisphere.local_issuer import ISSUER_FILE, LocalIssuer, issuer_of

TOKEN_SECONDS = 3600
# A token is replaced when less than this is left of it (a drill's request may be slow).
RENEW_BEFORE_S = 300.0


class NoIssuerError(Exception):
    """The data directory has no development issuer; the message says what to do."""


class CustomerTokens:
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
        made = self._made.get(customer_id)
        now = self._clock()
        if made is None or made[1] - now < min(RENEW_BEFORE_S, self._seconds / 2):
            made = (self._issuer.token(customer_id, seconds=self._seconds), now + self._seconds)
            self._made[customer_id] = made
        return made[0]

    def headers(self, customer_id: str) -> dict[str, str]:
        """The HTTP headers of a request made as `customer_id` (the raw JWT, as AppSync's
        OPENID_CONNECT mode takes it)."""
        return {"authorization": self.token(customer_id)}


def customer_tokens(data_dir: Path) -> CustomerTokens:
    """The tokens of the issuer `hemisphere up` runs with data in `data_dir`."""
    issuer = issuer_of(data_dir)
    if issuer is None:
        raise NoIssuerError(
            f"no development token issuer in {data_dir} ({data_dir / ISSUER_FILE} is missing): "
            "the drill acts as customers with its tokens; run a `hemisphere up` that has one "
            "(restart it after an upgrade)"
        )
    return CustomerTokens(issuer)
