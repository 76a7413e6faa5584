"""The root value a WebSocket transport hands the Subscription fields.

It carries what only the server decides, so a client cannot set it: the per-field filter
rules, and a callback by which a field says its subscription is established (the AppSync
protocol answers `start_ack` then, not before, so a client that waits for the ack misses no
change published after it)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from domain.auth import Caller

FilterRule = Callable[[Mapping[str, Any], Caller], Mapping[str, Any] | None]
"""A server-side enhanced filter for one subscription field, as AppSync's subscription
resolvers set one with `extensions.setSubscriptionFilter`: from the subscription's arguments
(omitted ones are None) and the caller, an AppSync filterJsonObject, or None for no filter."""

NO_RULES: Mapping[str, FilterRule] = MappingProxyType({})


@dataclass(frozen=True)
class SubscriptionRoot:
    # Keyed by subscription field name (`onOrderChanged`).
    rules: Mapping[str, FilterRule] = field(default_factory=lambda: NO_RULES)
    on_established: Callable[[], None] | None = None
