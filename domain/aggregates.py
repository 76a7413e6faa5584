"""Everything the rest of the service knows of each projected aggregate, in one place.

Each entry names the aggregate everywhere it travels, so that no module has to switch on
Product / Customer / Order by type or spell their names again:

    field              Product              used by
    kind               product              the read cache (projections/read_cache)
    name               Product              the contract's type, the `kind` of its events
                                            (domain.events) and of its projection item
    key_prefix         PRODUCT              its item's partition key, PRODUCT#<id>
                                            (adapters/dynamodb/items)
    publish_mutation   publishProduct       the contract's publish* mutation, and the broker
                                            channel its changes reach subscribers on
    subscription       onProductChanged     the Subscription field that `@aws_subscribe`s to it
    to/from_plain      domain.codec         the plain form its snapshot travels in (outbox,
                                            item attributes, publications)

What is not the aggregate's identity stays with the code it belongs to: which secondary
indexes its item is on (adapters/dynamodb/items), its GraphQL type and publication input
(schema/), the lists a change of it invalidates (projections/change_feed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from domain.codec import (
    Plain,
    customer_from_plain,
    customer_to_plain,
    order_from_plain,
    order_to_plain,
    product_from_plain,
    product_to_plain,
)
from domain.events import CustomerChanged, Event, OrderChanged, ProductChanged
from domain.model import Customer, Order, Product

# The snapshot of any projected aggregate.
Snapshot = Product | Customer | Order
S = TypeVar("S", bound=Snapshot)


@dataclass(frozen=True, slots=True)
class Aggregate(Generic[S]):
    kind: str
    name: str
    key_prefix: str
    snapshot_type: type[S]
    publish_mutation: str
    subscription: str
    to_plain: Callable[[S], Plain]
    from_plain: Callable[[Plain], S]


PRODUCT: Aggregate[Product] = Aggregate(
    kind="product",
    name="Product",
    key_prefix="PRODUCT",
    snapshot_type=Product,
    publish_mutation="publishProduct",
    subscription="onProductChanged",
    to_plain=product_to_plain,
    from_plain=product_from_plain,
)
CUSTOMER: Aggregate[Customer] = Aggregate(
    kind="customer",
    name="Customer",
    key_prefix="CUSTOMER",
    snapshot_type=Customer,
    publish_mutation="publishCustomer",
    subscription="onCustomerChanged",
    to_plain=customer_to_plain,
    from_plain=customer_from_plain,
)
ORDER: Aggregate[Order] = Aggregate(
    kind="order",
    name="Order",
    key_prefix="ORDER",
    snapshot_type=Order,
    publish_mutation="publishOrder",
    subscription="onOrderChanged",
    to_plain=order_to_plain,
    from_plain=order_from_plain,
)

AGGREGATES: tuple[Aggregate[Any], ...] = (PRODUCT, CUSTOMER, ORDER)

BY_NAME: Mapping[str, Aggregate[Any]] = {a.name: a for a in AGGREGATES}
BY_PUBLISH_MUTATION: Mapping[str, Aggregate[Any]] = {a.publish_mutation: a for a in AGGREGATES}
_BY_SNAPSHOT_TYPE: Mapping[type, Aggregate[Any]] = {a.snapshot_type: a for a in AGGREGATES}


def of_snapshot(snapshot: Snapshot) -> Aggregate[Any]:
    """The aggregate `snapshot` is a snapshot of."""
    return _BY_SNAPSHOT_TYPE[type(snapshot)]


def snapshot_of(event: Event) -> tuple[Aggregate[Any], Snapshot]:
    """The aggregate an event is about, and its new snapshot."""
    match event:
        case ProductChanged(product=product):
            return PRODUCT, product
        case CustomerChanged(customer=customer):
            return CUSTOMER, customer
        case OrderChanged(order=order):
            return ORDER, order
