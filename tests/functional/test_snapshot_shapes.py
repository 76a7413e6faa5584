"""Resolvers hand domain snapshots to Strawberry as the GraphQL types: every field of every
output type must resolve from a snapshot, with the value the codec gives it."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLList, GraphQLNonNull, GraphQLObjectType, GraphQLOutputType

from domain.auth import AuthMode, Caller
from domain.codec import customer_to_plain, order_to_plain, product_to_plain
from resolvers.context import Context
from resolvers.schema import build_schema
from tests.support.app import TOKENS, fake_runtime
from tests.support.fakes import InMemoryReader, make_customer, make_order, make_products

SCHEMA = build_schema()


def selection(type_: GraphQLOutputType) -> str:
    """Every field of `type_`, recursively: `{ a b { c } }`."""
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        type_ = type_.of_type
    if not isinstance(type_, GraphQLObjectType):
        return ""
    return "{ " + " ".join(f"{name} {selection(f.type)}" for name, f in type_.fields.items()) + " }"


def without_times(value: Any) -> Any:
    """The codec keeps microseconds, AWSDateTime prints milliseconds: compare the rest."""
    if isinstance(value, dict):
        return {
            k: without_times(v)
            for k, v in value.items()
            if k not in {"at", "updatedAt", "createdAt"}
        }
    if isinstance(value, list):
        return [without_times(v) for v in value]
    return value


async def test_every_field_resolves_from_the_snapshots() -> None:
    [product] = make_products(1)
    customer = make_customer(3)
    order = make_order(1, customer, product)
    reader = InMemoryReader(products=[product], customers=[customer], orders=[order])
    # IAM reads every type of the contract.
    context = Context(Caller(AuthMode.AWS_IAM, "test"), fake_runtime(reader).ports, TOKENS)
    core = SCHEMA._schema
    query = (
        f'{{ product(id: "{product.id}") {selection(core.get_type("Product"))}'
        f' customer(id: "{customer.id}") {selection(core.get_type("Customer"))}'
        f' order(id: "{order.id}") {selection(core.get_type("Order"))} }}'
    )
    result = await SCHEMA.execute(query, context_value=context)
    assert result.errors is None
    assert result.data is not None
    assert without_times(result.data["product"]) == without_times(product_to_plain(product))
    assert without_times(result.data["customer"]) == without_times(customer_to_plain(customer))
    assert without_times(result.data["order"]) == without_times(order_to_plain(order))
    assert result.data["order"]["history"][0]["at"] == "2026-01-01T01:00:00.000Z"
