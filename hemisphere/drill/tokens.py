"""Who the drill's users are: each acts as a demo customer, with a token of that customer
from the development issuer of the `hemisphere up` whose data directory the drill reads
(hemisphere/local_issuer.py; contract v2: customer data and checkouts need an identity, and a
token acts on its own customer only). Catalog reads and the region probe keep the API key.

A token is made once per customer and used until it nears its expiry
(hemisphere.local_issuer.CustomerTokens)."""

from __future__ import annotations

from pathlib import Path

from hemisphere.local_issuer import ISSUER_FILE, CustomerTokens, issuer_of

__all__ = ["CustomerTokens", "NoIssuerError", "customer_tokens"]


class NoIssuerError(Exception):
    """The data directory has no development issuer; the message says what to do."""


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
