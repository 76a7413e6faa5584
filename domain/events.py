"""Events appended to the outbox in the same transaction as the change they describe.

Each event carries the whole new snapshot of its aggregate (event-carried state transfer) and
the aggregate's version, so the projector needs no read-back and can apply events in any
order: a snapshot never replaces a newer one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from domain.model import Customer, Order, Product

AggregateKind = Literal["Product", "Customer", "Order"]
# The W3C trace context of the work that made the change (domain.tracing), carried through
# the outbox and the projection to the stream publication; not part of the change itself.
TraceContext = Mapping[str, str] | None


@dataclass(frozen=True, slots=True)
class ProductChanged:
    product: Product

    kind: AggregateKind = "Product"
    trace_context: TraceContext = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class CustomerChanged:
    customer: Customer

    kind: AggregateKind = "Customer"
    trace_context: TraceContext = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class OrderChanged:
    order: Order

    kind: AggregateKind = "Order"
    trace_context: TraceContext = field(default=None, compare=False)


Event = ProductChanged | CustomerChanged | OrderChanged
