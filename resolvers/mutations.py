"""Mutation resolvers: build a command and hand it to the write side; the client learns the
outcome from the projections (and by subscription)."""

from __future__ import annotations

import strawberry

from domain.auth import AuthMode
from domain.codec import customer_to_plain, order_to_plain, product_to_plain
from domain.commands import (
    CancelOrder,
    Checkout,
    CheckoutLine,
    UpdateCustomerProfile,
    UpsertProduct,
)
from domain.errors import ReadOnlyRegionError
from domain.model import Money
from resolvers import writes
from resolvers.auth import field_auth, require_owner
from resolvers.context import Info
from resolvers.publications import customer_of, order_of, product_of
from resolvers.values import as_graphql
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
from subscriptions.publication import publish_change

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
            "Asynchronous: put on the event bus; the change arrives through onCustomerChanged."
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
        catalog = info.context.catalog
        if catalog is None:
            raise ReadOnlyRegionError("this region cannot reach the primary's relational model")
        command = UpsertProduct(
            id=None if input.id is None else str(input.id),
            sku=input.sku,
            name=input.name,
            description=input.description,
            category=input.category,
            price=Money(amount=input.price.amount, currency=input.price.currency),
            available=input.available,
        )
        return as_graphql(await catalog.upsert_product(command), Product)

    @strawberry.mutation(
        description=(
            "Called by the change-stream publisher in each region to trigger subscriptions."
        ),
        directives=_IAM.directives,
        extensions=_IAM.extensions,
    )
    async def publish_order(self, info: Info, input: OrderPublication) -> Order | None:
        order = order_of(input)
        await publish_change(info, "publishOrder", order_to_plain(order))
        return as_graphql(order, Order)

    @strawberry.mutation(directives=_IAM.directives, extensions=_IAM.extensions)
    async def publish_product(self, info: Info, input: ProductPublication) -> Product | None:
        product = product_of(input)
        await publish_change(info, "publishProduct", product_to_plain(product))
        return as_graphql(product, Product)

    @strawberry.mutation(directives=_IAM.directives, extensions=_IAM.extensions)
    async def publish_customer(self, info: Info, input: CustomerPublication) -> Customer | None:
        customer = customer_of(input)
        await publish_change(info, "publishCustomer", customer_to_plain(customer))
        return as_graphql(customer, Customer)
