"""What the sagas' activities need: a card provider. (The relational model is reached through
adapters.postgres.saga, one transaction per step.)"""

from __future__ import annotations

from typing import Protocol

from domain.model import Money


class PaymentProvider(Protocol):
    """A card provider's API. Every call carries an idempotency key: the same key returns the
    first call's outcome, so a retried step is never charged twice. Failures raise the
    domain.payments errors."""

    async def authorize(self, *, token: str, amount: Money, idempotency_key: str) -> str:
        """Holds `amount` on the card; returns the authorization id."""
        ...

    async def capture(self, *, authorization_id: str, idempotency_key: str) -> str:
        """Takes the held amount; returns the capture id."""
        ...

    async def void(self, *, authorization_id: str, idempotency_key: str) -> None:
        """Releases a hold that was not captured."""
        ...

    async def refund(self, *, capture_id: str, idempotency_key: str) -> str:
        """Gives a captured amount back; returns the refund id."""
        ...
