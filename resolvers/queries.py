"""Query resolvers: read the region's projections, never the relational model."""

from __future__ import annotations

import strawberry

from resolvers.context import Info
from resolvers.pagination import page_limit
from schema.auth import field_auth, require_owner
from schema.types import (
    IDENTITY_MODES,
    PUBLIC,
    Customer,
    Order,
    OrderConnection,
    Product,
    ProductConnection,
    RegionInfo,
)
from schema.values import OMITTED, as_graphql, given

# The caller's own customer and orders (any customer for IAM); the API key reads none.
_IDENTIFIED = field_auth(*IDENTITY_MODES)


@strawberry.type(name="Query", directives=PUBLIC)
class Query:
    @strawberry.field
    async def product(self, info: Info, id: strawberry.ID) -> Product | None:
        return as_graphql(await info.context.loaders.products.load(id), Product)

    @strawberry.field
    async def products(
        self,
        info: Info,
        category: str | None = OMITTED,
        limit: int | None = OMITTED,
        next_token: str | None = OMITTED,
    ) -> ProductConnection:
        context = info.context
        scope = f"products:{given(category) or ''}"
        cursor = context.tokens.open(scope, given(next_token))
        page = await context.ports.reader.products_page(
            given(category), page_limit(given(limit)), cursor
        )
        return ProductConnection(
            items=as_graphql(page.items, list[Product]),
            next_token=context.tokens.issue(scope, page.cursor),
        )

    @strawberry.field(directives=_IDENTIFIED.directives, extensions=_IDENTIFIED.extensions)
    async def customer(self, info: Info, id: strawberry.ID) -> Customer | None:
        require_owner(info, id)
        return as_graphql(await info.context.loaders.customers.load(id), Customer)

    @strawberry.field(directives=_IDENTIFIED.directives, extensions=_IDENTIFIED.extensions)
    async def order(self, info: Info, id: strawberry.ID) -> Order | None:
        order = await info.context.loaders.orders.load(id)
        if order is None:
            return None
        require_owner(info, order.customer_id)
        return as_graphql(order, Order)

    @strawberry.field(directives=_IDENTIFIED.directives, extensions=_IDENTIFIED.extensions)
    async def orders_by_customer(
        self,
        info: Info,
        customer_id: strawberry.ID,
        limit: int | None = OMITTED,
        next_token: str | None = OMITTED,
    ) -> OrderConnection:
        require_owner(info, customer_id)
        context = info.context
        scope = f"orders:{customer_id}"
        cursor = context.tokens.open(scope, given(next_token))
        page = await context.ports.reader.orders_page_by_customer(
            customer_id, page_limit(given(limit)), cursor
        )
        return OrderConnection(
            items=as_graphql(page.items, list[Order]),
            next_token=context.tokens.issue(scope, page.cursor),
        )

    @strawberry.field
    async def region(self, info: Info) -> RegionInfo:
        """This region, and who is primary, from the replicated topology record."""
        ports = info.context.ports
        topology = ports.topology
        # Read-only when the operator switched it so in the replicated record, or when this
        # region's writes would be refused now (a superseded primary, an unreachable one).
        refused = ports.writes.read_only_reason() is not None
        control = await ports.reader.region_control()
        if control is None:
            # No record yet (a fresh table): the configured topology holds.
            return RegionInfo(
                region=topology.region,
                primary_region=topology.primary_region,
                read_only=refused,
                epoch=0,
            )
        return RegionInfo(
            region=topology.region,
            primary_region=control.primary_region,
            read_only=control.read_only or refused,
            epoch=control.epoch,
        )
