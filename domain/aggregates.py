"""What the read side knows of each projected aggregate, in one place: its kind, the event
that carries its snapshot, the plain form its snapshot travels in, and the contract's publish
mutation (the channel its changes are announced on to subscribers)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True, slots=True)
class Aggregate:
    kind: str  # "product": the read cache's and the items' name for it
    publish_mutation: str  # the contract's publish* mutation: its subscribers' channel
    to_plain: Callable[[Any], Plain]
    from_plain: Callable[[Plain], Any]


PRODUCT = Aggregate("product", "publishProduct", product_to_plain, product_from_plain)
CUSTOMER = Aggregate("customer", "publishCustomer", customer_to_plain, customer_from_plain)
ORDER = Aggregate("order", "publishOrder", order_to_plain, order_from_plain)

BY_PUBLISH_MUTATION: Mapping[str, Aggregate] = {
    a.publish_mutation: a for a in (PRODUCT, CUSTOMER, ORDER)
}


def snapshot_of(event: Event) -> tuple[Aggregate, Any]:
    """The aggregate an event is about, and its new snapshot."""
    match event:
        case ProductChanged(product=product):
            return PRODUCT, product
        case CustomerChanged(customer=customer):
            return CUSTOMER, customer
        case OrderChanged(order=order):
            return ORDER, order
