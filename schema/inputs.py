"""Input types of the contract."""

from __future__ import annotations

import strawberry

from domain.model import OrderStatus
from schema.scalars import AWSDateTime, AWSEmail


@strawberry.input
class MoneyInput:
    amount: int
    currency: str


@strawberry.input
class OrderLineInput:
    product_id: strawberry.ID
    quantity: int


@strawberry.input
class CheckoutInput:
    customer_id: strawberry.ID
    lines: list[OrderLineInput]
    payment_token: str = strawberry.field(
        description="A token from the card provider: tok_visa, tok_chargeDeclined, ..."
    )
    idempotency_key: str = strawberry.field(
        description="The same key for the same customer always means the same order."
    )


@strawberry.input
class CustomerProfileInput:
    customer_id: strawberry.ID
    name: str | None
    email: AWSEmail | None
    idempotency_key: str


@strawberry.input
class ProductInput:
    id: strawberry.ID | None
    sku: str
    name: str
    description: str | None
    category: str
    price: MoneyInput
    available: int


@strawberry.input
class OrderLinePublication:
    product_id: strawberry.ID
    product_name: str
    quantity: int
    unit_price: MoneyInput


@strawberry.input
class StatusChangePublication:
    status: OrderStatus
    at: AWSDateTime
    reason: str | None


@strawberry.input
class OrderPublication:
    id: strawberry.ID
    customer_id: strawberry.ID
    customer_name: str
    status: OrderStatus
    lines: list[OrderLinePublication]
    total: MoneyInput
    failure_reason: str | None
    history: list[StatusChangePublication]
    placed_in: str
    created_at: AWSDateTime
    updated_at: AWSDateTime
    version: int


@strawberry.input
class ProductPublication:
    id: strawberry.ID
    sku: str
    name: str
    description: str | None
    category: str
    price: MoneyInput
    available: int
    updated_at: AWSDateTime
    version: int


@strawberry.input
class CustomerPublication:
    id: strawberry.ID
    name: str
    email: AWSEmail
    home_region: str
    loyalty_points: int
    updated_at: AWSDateTime
    version: int
