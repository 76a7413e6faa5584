"""Mutation resolvers: build a command and hand it to the write side; the client learns the
outcome from the projections (and by subscription)."""

from __future__ import annotations

from typing import TypeVar

import strawberry

from domain.aggregates import CUSTOMER, ORDER, PRODUCT, Aggregate, Snapshot
from domain.auth import AuthMode
from domain.commands import (
    CancelOrder,
    Checkout,
    CheckoutLine,
    UpdateCustomerProfile,
    UpsertProduct,
)
from domain.model import Money
from resolvers import writes
from resolvers.context import Info
from resolvers.publications import customer_of, order_of, product_of
from schema.auth import field_auth, require_owner
from schema.inputs import (
    CheckoutInput,
    CustomerProfileInput,
    CustomerPublication,
    OrderPublication,
    ProductInput,
    ProductPublication,
)
from schema.scalars import AWSDateTime
from schema.types import IDENTITY_MODES, AsyncReceipt, Customer, Order, Product
from schema.values import as_graphql
from subscriptions.publication import publish_change

S = TypeVar("S", bound=Snapshot)

# Contract v2: a customer's writes need an identity (its own token, or IAM); the catalog's,
# IAM or a Cognito user in the "admins" group; the publish* mutations, IAM only.
_CUSTOMER = field_auth(*IDENTITY_MODES)
_CATALOG = field_auth(
    AuthMode.AWS_IAM, AuthMode.AMAZON_COGNITO_USER_POOLS, cognito_groups=("admins",)
)
_IAM = field_auth(AuthMode.AWS_IAM)


@strawberry.type(name="Mutation")
class Mutation:
    @strawberry.mutation(
        description="Starts the checkout saga in the primary region; returns the order as PENDING.",
        directives=_CUSTOMER.directives,
        extensions=_CUSTOMER.extensions,
    )
    async def checkout(self, info: Info, input: CheckoutInput) -> Order | None:
        require_owner(info, input.customer_id)
        command = Checkout(
            customer_id=str(input.customer_id),
            lines=tuple(CheckoutLine(str(ln.product_id), ln.quantity) for ln in input.lines),
            payment_token=input.payment_token,
            idempotency_key=input.idempotency_key,
        )
        return as_graphql(await writes.checkout(info.context, command), Order)

    @strawberry.mutation(
        description="Starts the cancellation saga: refund, release stock, revert loyalty points.",
        directives=_CUSTOMER.directives,
        extensions=_CUSTOMER.extensions,
    )
    async def cancel_order(
        self, info: Info, id: strawberry.ID, idempotency_key: str
    ) -> Order | None:
        command = CancelOrder(order_id=str(id), idempotency_key=idempotency_key)
        order = await writes.cancel_order(
            info.context, command, authorize=lambda order: require_owner(info, order.customer_id)
        )
        return as_graphql(order, Order)

    @strawberry.mutation(
        description=(
            "Asynchronous: put on the event bus; the change arrives through "
            f"{CUSTOMER.subscription}."
        ),
        directives=_CUSTOMER.directives,
        extensions=_CUSTOMER.extensions,
    )
    async def update_customer_profile(
        self, info: Info, input: CustomerProfileInput
    ) -> AsyncReceipt | None:
        require_owner(info, input.customer_id)
        command = UpdateCustomerProfile(
            customer_id=str(input.customer_id),
            name=input.name,
            email=input.email,
            idempotency_key=input.idempotency_key,
        )
        request_id, accepted_at = await writes.update_customer_profile(info.context, command)
        return AsyncReceipt(
            request_id=strawberry.ID(request_id), accepted_at=AWSDateTime(accepted_at)
        )

    @strawberry.mutation(
        description="Catalog administration.",
        directives=_CATALOG.directives,
        extensions=_CATALOG.extensions,
    )
    async def upsert_product(self, info: Info, input: ProductInput) -> Product | None:
        command = UpsertProduct(
            id=None if input.id is None else str(input.id),
            sku=input.sku,
            name=input.name,
            description=input.description,
            category=input.category,
            price=Money(amount=input.price.amount, currency=input.price.currency),
            available=input.available,
        )
        return as_graphql(await info.context.ports.catalog.upsert_product(command), Product)

    @strawberry.mutation(
        name=ORDER.publish_mutation,
        description=(
            "Called by the change-stream publisher in each region to trigger subscriptions."
        ),
        directives=_IAM.directives,
        extensions=_IAM.extensions,
    )
    async def publish_order(self, info: Info, input: OrderPublication) -> Order | None:
        return as_graphql(await _publish(info, ORDER, order_of(input)), Order)

    @strawberry.mutation(
        name=PRODUCT.publish_mutation, directives=_IAM.directives, extensions=_IAM.extensions
    )
    async def publish_product(self, info: Info, input: ProductPublication) -> Product | None:
        return as_graphql(await _publish(info, PRODUCT, product_of(input)), Product)

    @strawberry.mutation(
        name=CUSTOMER.publish_mutation, directives=_IAM.directives, extensions=_IAM.extensions
    )
    async def publish_customer(self, info: Info, input: CustomerPublication) -> Customer | None:
        return as_graphql(await _publish(info, CUSTOMER, customer_of(input)), Customer)


async def _publish(info: Info, aggregate: Aggregate[S], snapshot: S) -> S:
    """Put a publish* mutation's snapshot on its channel for the subscriptions it triggers."""
    await publish_change(info, aggregate.publish_mutation, aggregate.to_plain(snapshot))
    return snapshot
