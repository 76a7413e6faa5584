"""The shop's aggregates as the read side sees them.

These dataclasses are the denormalized *snapshots* that travel in outbox events, that the
projector stores as DynamoDB items, and that the GraphQL types resolve from (Strawberry reads
attributes by name, so a resolver can return them as they are: no copy per request).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

T = TypeVar("T")


class OrderStatus(enum.Enum):
    PENDING = "PENDING"
    RESERVED = "RESERVED"
    AUTHORIZED = "AUTHORIZED"
    CAPTURED = "CAPTURED"
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"

    @property
    def is_final(self) -> bool:
        return self in (OrderStatus.CONFIRMED, OrderStatus.CANCELLED, OrderStatus.FAILED)


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in minor units (cents) of an ISO 4217 currency."""

    amount: int
    currency: str


@dataclass(frozen=True, slots=True)
class Product:
    id: str
    sku: str
    name: str
    description: str | None
    category: str
    price: Money
    available: int
    updated_at: datetime
    version: int


@dataclass(frozen=True, slots=True)
class Customer:
    id: str
    name: str
    email: str
    home_region: str
    loyalty_points: int
    updated_at: datetime
    version: int


@dataclass(frozen=True, slots=True)
class OrderLine:
    product_id: str
    product_name: str
    quantity: int
    unit_price: Money


@dataclass(frozen=True, slots=True)
class StatusChange:
    status: OrderStatus
    at: datetime
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    customer_id: str
    customer_name: str
    status: OrderStatus
    lines: tuple[OrderLine, ...]
    total: Money
    failure_reason: str | None
    history: tuple[StatusChange, ...]
    placed_in: str
    created_at: datetime
    updated_at: datetime
    version: int


@dataclass(frozen=True, slots=True)
class RegionControl:
    """The replicated topology record: who is primary, since which epoch."""

    primary_region: str
    epoch: int
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list read; `cursor` is the store's raw position of the next page."""

    items: list[T] = field(default_factory=list)
    cursor: dict[str, object] | None = None
