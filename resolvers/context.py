"""The per-request context: who calls, and the ports the resolvers may use."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import strawberry
from strawberry.dataloader import DataLoader

from domain.auth import Caller
from domain.model import Customer, Order, Product
from resolvers.pagination import PageTokens
from resolvers.ports import Catalog, OrderWorkflows, ProfileUpdates, ProjectionReader
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


@dataclass
class Context:
    caller: Caller
    reader: ProjectionReader
    tokens: PageTokens
    topology: Topology
    broker: Broker
    catalog: Catalog | None
    workflows: OrderWorkflows | None = None
    profiles: ProfileUpdates | None = None
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.reader)


Info = strawberry.Info[Context, None]

# The Subscription fields and the publish* mutations read the request through
# subscriptions.context.RequestContext (subscriptions/ does not import resolvers/): mypy
# checks here that Context provides it.
_SUBSCRIPTIONS_READ: type[RequestContext] = Context
