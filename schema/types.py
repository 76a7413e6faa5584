"""Output types of the contract. Resolvers may return the domain snapshots (domain.model) for
these types as they are: Strawberry reads fields by attribute name."""

from __future__ import annotations

import strawberry

from domain.auth import AuthMode
from domain.model import OrderStatus
from schema.directives import auth_directives
from schema.scalars import AWSDateTime, AWSEmail

# Contract v2's two audiences (the type-level directives). The catalog and the region are
# public: every mode reads them, the API key (shipped in every frontend) included. Customer
# data needs an identity: a token, whose caller then sees only its own customer
# (domain.auth.may_act_for), or IAM.
PUBLIC_MODES = (
    AuthMode.API_KEY,
    AuthMode.AWS_IAM,
    AuthMode.OPENID_CONNECT,
    AuthMode.AMAZON_COGNITO_USER_POOLS,
    AuthMode.AWS_LAMBDA,
)
IDENTITY_MODES = PUBLIC_MODES[1:]
PUBLIC = auth_directives(*PUBLIC_MODES)
IDENTIFIED = auth_directives(*IDENTITY_MODES)

# The domain's enum serves as the GraphQL enum (Strawberry only attaches its definition).
strawberry.enum(OrderStatus, name="OrderStatus")


@strawberry.type(directives=PUBLIC)
class Money:
    amount: int
    currency: str


@strawberry.type(directives=PUBLIC)
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


@strawberry.type(directives=PUBLIC)
class ProductConnection:
    items: list[Product]
    next_token: str | None


@strawberry.type(directives=IDENTIFIED)
class Customer:
    id: strawberry.ID
    name: str
    email: AWSEmail
    home_region: str
    loyalty_points: int
    updated_at: AWSDateTime
    version: int


@strawberry.type(directives=IDENTIFIED)
class OrderLine:
    product_id: strawberry.ID
    product_name: str
    quantity: int
    unit_price: Money


@strawberry.type(directives=IDENTIFIED)
class StatusChange:
    status: OrderStatus
    at: AWSDateTime
    reason: str | None


@strawberry.type(directives=IDENTIFIED)
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


@strawberry.type(directives=IDENTIFIED)
class OrderConnection:
    items: list[Order]
    next_token: str | None


@strawberry.type(directives=PUBLIC)
class RegionInfo:
    region: str
    primary_region: str
    read_only: bool
    epoch: int


@strawberry.type(directives=IDENTIFIED)
class AsyncReceipt:
    request_id: strawberry.ID
    accepted_at: AWSDateTime
