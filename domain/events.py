"""Events appended to the outbox in the same transaction as the change they describe.

Each event carries the whole new snapshot of its aggregate (event-carried state transfer) and
the aggregate's version, so the projector needs no read-back and can apply events in any
order: a snapshot never replaces a newer one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from domain.model import Customer, Order, Product

AggregateKind = Literal["Product", "Customer", "Order"]


@dataclass(frozen=True, slots=True)
class ProductChanged:
    product: Product

    kind: AggregateKind = "Product"


@dataclass(frozen=True, slots=True)
class CustomerChanged:
    customer: Customer

    kind: AggregateKind = "Customer"


@dataclass(frozen=True, slots=True)
class OrderChanged:
    order: Order

    kind: AggregateKind = "Order"


Event = ProductChanged | CustomerChanged | OrderChanged
