"""Commands: what a caller asks the write side to do, validated before anything is written."""

from __future__ import annotations

import re
from dataclasses import dataclass

from domain.errors import BadRequestError
from domain.model import Money

_CURRENCY = re.compile(r"^[A-Z]{3}$")
_PRODUCT_ID = re.compile(r"^p-[0-9A-Za-z-]{1,60}$")


@dataclass(frozen=True, slots=True)
class UpsertProduct:
    id: str | None
    sku: str
    name: str
    description: str | None
    category: str
    price: Money
    available: int

    def __post_init__(self) -> None:
        if self.id is not None and not _PRODUCT_ID.match(self.id):
            raise BadRequestError(f"product id {self.id!r} must look like p-0001")
        for name, value in (("sku", self.sku), ("name", self.name), ("category", self.category)):
            if not value.strip():
                raise BadRequestError(f"{name} must not be empty")
            if len(value) > 200:
                raise BadRequestError(f"{name} is longer than 200 characters")
        if self.description is not None and len(self.description) > 4000:
            raise BadRequestError("description is longer than 4000 characters")
        if not _CURRENCY.match(self.price.currency):
            raise BadRequestError(f"currency {self.price.currency!r} is not an ISO 4217 code")
        if self.price.amount < 0:
            raise BadRequestError("price.amount must not be negative")
        if self.available < 0:
            raise BadRequestError("available must not be negative")


MAX_LINES = 50
MAX_QUANTITY = 100
_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _idempotency_key(key: str) -> None:
    if not _KEY.match(key):
        raise BadRequestError(
            "idempotencyKey must be 1 to 128 characters of letters, digits, '.', '_', ':' or '-'"
        )


@dataclass(frozen=True, slots=True)
class CheckoutLine:
    product_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Checkout:
    """A client's checkout, validated for shape; that the customer and products exist is
    checked against the projections by the resolver, and again by the saga's first step."""

    customer_id: str
    lines: tuple[CheckoutLine, ...]
    payment_token: str
    idempotency_key: str

    def __post_init__(self) -> None:
        if not self.lines:
            raise BadRequestError("a checkout needs at least one line")
        if len(self.lines) > MAX_LINES:
            raise BadRequestError(f"a checkout has at most {MAX_LINES} lines")
        seen: set[str] = set()
        for line in self.lines:
            if not 1 <= line.quantity <= MAX_QUANTITY:
                raise BadRequestError(
                    f"quantity of {line.product_id} must be 1 to {MAX_QUANTITY},"
                    f" got {line.quantity}"
                )
            if line.product_id in seen:
                raise BadRequestError(f"product {line.product_id} is on more than one line")
            seen.add(line.product_id)
        if not self.payment_token.strip() or len(self.payment_token) > 256:
            raise BadRequestError("paymentToken must be a card provider's token")
        _idempotency_key(self.idempotency_key)


@dataclass(frozen=True, slots=True)
class CancelOrder:
    order_id: str
    idempotency_key: str

    def __post_init__(self) -> None:
        _idempotency_key(self.idempotency_key)


@dataclass(frozen=True, slots=True)
class UpdateCustomerProfile:
    """Asynchronous: accepted at once, applied by a worker from the event bus's queue."""

    customer_id: str
    name: str | None
    email: str | None
    idempotency_key: str

    def __post_init__(self) -> None:
        if self.name is None and self.email is None:
            raise BadRequestError("give a new name, a new email, or both")
        if self.name is not None and not 1 <= len(self.name.strip()) <= 200:
            raise BadRequestError("name must be 1 to 200 characters")
        _idempotency_key(self.idempotency_key)
