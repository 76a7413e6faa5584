"""The contract's Subscription root: each field listens for the mutations its `@aws_subscribe`
names (the broker channel is the mutation's name) and passes on what subscriptions/delivery.py
lets through.

The resolvers are coroutines that return the stream rather than generators, so that a bad
request (a malformed filter, a field the caller may not read) fails when the client subscribes,
not at the first change."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry.extensions import FieldExtension

from domain.codec import customer_from_plain, order_from_plain, product_from_plain
from resolvers.auth import RequireAuthModes
from resolvers.values import OMITTED, given
from schema.directives import AwsSubscribe
from schema.types import READ_MODES, READABLE, Customer, Order, Product
from subscriptions.delivery import SubscriptionInfo, changes


def _readable() -> list[FieldExtension]:
    # The type-level `@aws_api_key @aws_iam @aws_oidc` of Subscription, enforced per field as
    # for queries. No directives here: the contract shows them on the type only.
    return [RequireAuthModes(frozenset(READ_MODES))]


@strawberry.type(name="Subscription", directives=READABLE)
class Subscription:
    @strawberry.subscription(
        directives=[AwsSubscribe(mutations=["publishOrder"])], extensions=_readable()
    )
    async def on_order_changed(
        self,
        info: SubscriptionInfo,
        id: strawberry.ID | None = OMITTED,
        customer_id: strawberry.ID | None = OMITTED,
    ) -> AsyncGenerator[Order | None, None]:
        arguments = {"id": given(id), "customerId": given(customer_id)}
        return await changes(info, "publishOrder", arguments, order_from_plain, Order)

    @strawberry.subscription(
        directives=[AwsSubscribe(mutations=["publishProduct"])], extensions=_readable()
    )
    async def on_product_changed(
        self,
        info: SubscriptionInfo,
        id: strawberry.ID | None = OMITTED,
        category: str | None = OMITTED,
    ) -> AsyncGenerator[Product | None, None]:
        arguments = {"id": given(id), "category": given(category)}
        return await changes(info, "publishProduct", arguments, product_from_plain, Product)

    @strawberry.subscription(
        directives=[AwsSubscribe(mutations=["publishCustomer"])], extensions=_readable()
    )
    async def on_customer_changed(
        self, info: SubscriptionInfo, id: strawberry.ID | None = OMITTED
    ) -> AsyncGenerator[Customer | None, None]:
        arguments = {"id": given(id)}
        return await changes(info, "publishCustomer", arguments, customer_from_plain, Customer)
