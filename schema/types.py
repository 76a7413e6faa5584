"""Output types of the contract. Resolvers may return the domain snapshots (domain.model) for
these types as they are: Strawberry reads fields by attribute name."""

from __future__ import annotations

import strawberry

from domain.auth import AuthMode
from domain.model import OrderStatus
from schema.directives import auth_directives
from schema.scalars import AWSDateTime, AWSEmail

# Every mode that may read the shop's types (the contract's type-level directives).
READ_MODES = (AuthMode.API_KEY, AuthMode.AWS_IAM, AuthMode.OPENID_CONNECT)
READABLE = auth_directives(*READ_MODES)

# The domain's enum serves as the GraphQL enum (Strawberry only attaches its definition).
strawberry.enum(OrderStatus, name="OrderStatus")


@strawberry.type(directives=READABLE)
class Money:
    amount: int
    currency: str


@strawberry.type(directives=READABLE)
class Product:
    id: strawberry.ID
    sku: str
    name: str
    description: str | None
    category: str
    price: Money
    available: int
    updated_at: AWSDateTime
    version: int


@strawberry.type(directives=READABLE)
class ProductConnection:
    items: list[Product]
    next_token: str | None


@strawberry.type(directives=READABLE)
class Customer:
    id: strawberry.ID
    name: str
    email: AWSEmail
    home_region: str
    loyalty_points: int
    updated_at: AWSDateTime
    version: int


@strawberry.type(directives=READABLE)
class OrderLine:
    product_id: strawberry.ID
    product_name: str
    quantity: int
    unit_price: Money


@strawberry.type(directives=READABLE)
class StatusChange:
    status: OrderStatus
    at: AWSDateTime
    reason: str | None


@strawberry.type(directives=READABLE)
class Order:
    id: strawberry.ID
    customer_id: strawberry.ID
    customer_name: str
    status: OrderStatus
    lines: list[OrderLine]
    total: Money
    failure_reason: str | None = strawberry.field(
        description="Why the order failed or was cancelled: PAYMENT_DECLINED, OUT_OF_STOCK, ..."
    )
    history: list[StatusChange]
    placed_in: str = strawberry.field(
        description="The region in which the client placed the order."
    )
    created_at: AWSDateTime
    updated_at: AWSDateTime
    version: int


@strawberry.type(directives=READABLE)
class OrderConnection:
    items: list[Order]
    next_token: str | None


@strawberry.type(directives=READABLE)
class RegionInfo:
    region: str
    primary_region: str
    read_only: bool
    epoch: int


@strawberry.type(directives=READABLE)
class AsyncReceipt:
    request_id: strawberry.ID
    accepted_at: AWSDateTime
