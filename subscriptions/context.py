"""What subscriptions/ reads of a request's context: who calls, the region's broker (among
its ports), and the orders loader (a subscription to an order checks whose it is).

The context itself is the resolvers' (resolvers/context.Context: the read side's ports, the
DataLoaders, the page tokens): the resolvers compose the API, Subscription root included, so
subscriptions/ never imports them. It declares here the part it uses, as a port; Context
provides it, and mypy checks that where resolvers/context.py names it.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol

from domain.auth import Caller
from domain.model import Order
from subscriptions.ports import Broker


class OrderLoader(Protocol):
    def load(self, key: str, /) -> Awaitable[Order | None]: ...


class SubscriptionLoaders(Protocol):
    @property
    def orders(self) -> OrderLoader: ...


class SubscriptionPorts(Protocol):
    @property
    def broker(self) -> Broker: ...


class RequestContext(Protocol):
    @property
    def caller(self) -> Caller: ...

    @property
    def ports(self) -> SubscriptionPorts: ...

    @property
    def loaders(self) -> SubscriptionLoaders: ...
