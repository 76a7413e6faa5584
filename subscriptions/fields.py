"""The contract's Subscription root: each field listens for the mutations its `@aws_subscribe`
names (the broker channel is the mutation's name) and passes on what subscriptions/delivery.py
lets through. Field and mutation names are the aggregate's (domain.aggregates).

The resolvers are coroutines that return the stream rather than generators, so that a bad
request (a malformed filter, a field the caller may not read, another customer's data) fails
when the client subscribes, not at the first change."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any

import strawberry
from strawberry.extensions import FieldExtension

from domain.aggregates import CUSTOMER, ORDER, PRODUCT, Aggregate
from domain.auth import AuthMode
from schema.auth import RequireAuthModes, require_owner
from schema.directives import AwsSubscribe, auth_directives
from schema.types import IDENTITY_MODES, PUBLIC, PUBLIC_MODES, Customer, Order, Product
from schema.values import OMITTED, given
from subscriptions.delivery import SubscriptionInfo, changes


async def _changes_of(
    aggregate: Aggregate[Any],
    info: SubscriptionInfo,
    arguments: Mapping[str, Any],
    graphql_type: type,
) -> AsyncGenerator[Any, None]:
    """The changes of `aggregate` this subscription passes on: those published on its
    publish mutation's channel, read back from their plain form."""
    return await changes(
        info, aggregate.publish_mutation, arguments, aggregate.from_plain, graphql_type
    )


def _readable_by(modes: tuple[AuthMode, ...]) -> list[FieldExtension]:
    return [RequireAuthModes(frozenset(modes))]


@strawberry.type(name="Subscription", directives=PUBLIC)
class Subscription:
    @strawberry.subscription(
        name=ORDER.subscription,
        directives=[
            AwsSubscribe(mutations=[ORDER.publish_mutation]),
            *auth_directives(*IDENTITY_MODES),
        ],
        extensions=_readable_by(IDENTITY_MODES),
    )
    async def on_order_changed(
        self,
        info: SubscriptionInfo,
        id: strawberry.ID | None = OMITTED,
        customer_id: strawberry.ID | None = OMITTED,
    ) -> AsyncGenerator[Order | None, None]:
        arguments = await _own_orders(info, given(id), given(customer_id))
        return await _changes_of(ORDER, info, arguments, Order)

    @strawberry.subscription(
        name=PRODUCT.subscription,
        # The type-level directives of Subscription hold: the catalog is public.
        directives=[AwsSubscribe(mutations=[PRODUCT.publish_mutation])],
        extensions=_readable_by(PUBLIC_MODES),
    )
    async def on_product_changed(
        self,
        info: SubscriptionInfo,
        id: strawberry.ID | None = OMITTED,
        category: str | None = OMITTED,
    ) -> AsyncGenerator[Product | None, None]:
        arguments = {"id": given(id), "category": given(category)}
        return await _changes_of(PRODUCT, info, arguments, Product)

    @strawberry.subscription(
        name=CUSTOMER.subscription,
        directives=[
            AwsSubscribe(mutations=[CUSTOMER.publish_mutation]),
            *auth_directives(*IDENTITY_MODES),
        ],
        extensions=_readable_by(IDENTITY_MODES),
    )
    async def on_customer_changed(
        self, info: SubscriptionInfo, id: strawberry.ID | None = OMITTED
    ) -> AsyncGenerator[Customer | None, None]:
        # A token caller must name itself; IAM may listen to one customer or to all.
        if info.context.caller.mode is not AuthMode.AWS_IAM:
            require_owner(info, given(id))
        arguments = {"id": given(id)}
        return await _changes_of(CUSTOMER, info, arguments, Customer)


async def _own_orders(
    info: SubscriptionInfo, order_id: str | None, customer_id: str | None
) -> dict[str, Any]:
    """The arguments a subscription to orders listens with. A token caller must give its own
    customerId or the id of one of its orders; its own customer id is then always part of
    the arguments, so that an order id not projected yet (a checkout just answered) can only
    ever deliver the caller's own order. IAM callers listen as they ask."""
    caller = info.context.caller
    if caller.mode is AuthMode.AWS_IAM:
        return {"id": order_id, "customerId": customer_id}
    if caller.customer_id is None or customer_id is not None or order_id is None:
        require_owner(info, customer_id)  # refuses a token without a customer, or no name
    else:
        order = await info.context.loaders.orders.load(order_id)
        if order is not None:
            require_owner(info, order.customer_id)
    return {"id": order_id, "customerId": caller.customer_id}
