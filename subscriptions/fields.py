"""The contract's Subscription root: each field listens for the mutations its
`@aws_subscribe` names, and passes on the results whose fields equal its arguments."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any, TypeVar

import strawberry

from domain.codec import customer_from_plain, order_from_plain, product_from_plain
from resolvers.context import Info
from resolvers.values import OMITTED, as_graphql, given
from schema.directives import AwsSubscribe
from schema.types import READABLE, Customer, Order, Product
from subscriptions.triggers import arguments_match

T = TypeVar("T")


async def _changes(
    info: Info, mutation: str, arguments: Mapping[str, Any], decode: Callable[[Any], T]
) -> AsyncGenerator[T, None]:
    async for payload in info.context.broker.subscribe(mutation):
        if arguments_match(arguments, payload):
            yield decode(payload)


@strawberry.type(name="Subscription", directives=READABLE)
class Subscription:
    @strawberry.subscription(directives=[AwsSubscribe(mutations=["publishOrder"])])
    async def on_order_changed(
        self,
        info: Info,
        id: strawberry.ID | None = OMITTED,
        customer_id: strawberry.ID | None = OMITTED,
    ) -> AsyncGenerator[Order | None, None]:
        arguments = {"id": given(id), "customerId": given(customer_id)}
        async for order in _changes(info, "publishOrder", arguments, order_from_plain):
            yield as_graphql(order, Order)

    @strawberry.subscription(directives=[AwsSubscribe(mutations=["publishProduct"])])
    async def on_product_changed(
        self, info: Info, id: strawberry.ID | None = OMITTED, category: str | None = OMITTED
    ) -> AsyncGenerator[Product | None, None]:
        arguments = {"id": given(id), "category": given(category)}
        async for product in _changes(info, "publishProduct", arguments, product_from_plain):
            yield as_graphql(product, Product)

    @strawberry.subscription(directives=[AwsSubscribe(mutations=["publishCustomer"])])
    async def on_customer_changed(
        self, info: Info, id: strawberry.ID | None = OMITTED
    ) -> AsyncGenerator[Customer | None, None]:
        arguments = {"id": given(id)}
        async for customer in _changes(info, "publishCustomer", arguments, customer_from_plain):
            yield as_graphql(customer, Customer)
