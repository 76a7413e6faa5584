"""The per-request context: who calls, the ports the resolvers may use (shared by every
request, wired once by the composition root), the page tokens and the request's DataLoaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import strawberry
from strawberry.dataloader import DataLoader

from domain.auth import Caller
from domain.model import Customer, Order, Product
from resolvers.pagination import PageTokens
from resolvers.ports import (
    Catalog,
    OrderWorkflows,
    ProfileUpdates,
    ProjectionReader,
    WriteStatus,
)
from subscriptions.context import RequestContext
from subscriptions.ports import Broker


@dataclass(frozen=True, slots=True)
class Topology:
    region: str
    primary_region: str


class Loaders:
    """DataLoaders of one request: every `product(id)` (and alias) of a request is batched into
    one BatchGetItem, and repeated ids are read once."""

    def __init__(self, reader: ProjectionReader) -> None:
        self._reader = reader

    @cached_property
    def products(self) -> DataLoader[str, Product | None]:
        async def load(ids: list[str]) -> list[Product | None]:
            found = await self._reader.products_by_id(ids)
            return [found.get(i) for i in ids]

        return DataLoader(load_fn=load)

    @cached_property
    def customers(self) -> DataLoader[str, Customer | None]:
        async def load(ids: list[str]) -> list[Customer | None]:
            found = await self._reader.customers_by_id(ids)
            return [found.get(i) for i in ids]

        return DataLoader(load_fn=load)

    @cached_property
    def orders(self) -> DataLoader[str, Order | None]:
        async def load(ids: list[str]) -> list[Order | None]:
            found = await self._reader.orders_by_id(ids)
            return [found.get(i) for i in ids]

        return DataLoader(load_fn=load)


@dataclass(frozen=True, slots=True)
class Ports:
    """What the resolvers use, wired once by the composition root (hemisphere.bootstrap) and
    held by every request's Context: a new port is one field here and its value there.
    A region that cannot write has write ports all the same, which answer ReadOnlyRegion
    (regions.routing): no resolver checks for a missing one."""

    reader: ProjectionReader
    broker: Broker
    topology: Topology
    catalog: Catalog
    workflows: OrderWorkflows
    profiles: ProfileUpdates
    # Whether the region's writes would go through now (`region { readOnly }`).
    writes: WriteStatus


@dataclass
class Context:
    caller: Caller
    ports: Ports
    # Signed with the API's secret: the app makes them (a process without an API needs none).
    tokens: PageTokens
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.ports.reader)


Info = strawberry.Info[Context, None]

# The Subscription fields and the publish* mutations read the request through
# subscriptions.context.RequestContext (subscriptions/ does not import resolvers/): mypy
# checks here that Context provides it.
_SUBSCRIPTIONS_READ: type[RequestContext] = Context
