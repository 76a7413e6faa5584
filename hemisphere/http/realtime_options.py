"""How the WebSocket endpoints behave, for both protocols (AppSync's and graphql-ws)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from schema.limits import QueryLimits
from subscriptions.root import NO_RULES, FilterRule


@dataclass(frozen=True)
class RealtimeOptions:
    # A `ka` message this often; AppSync clients reconnect after connectionTimeoutMs (300 s)
    # without one, so anything well under that serves.
    keepalive_seconds: float = 60.0
    # How long a new connection may take to send `connection_init`.
    init_timeout_seconds: float = 10.0
    # Messages that may wait for a slow client; past this it is disconnected (it reconnects
    # and resubscribes, as AppSync clients do) instead of the server buffering without bound.
    max_pending_messages: int = 1000
    # Server-side enhanced filters per subscription field (subscriptions/root.py).
    filter_rules: Mapping[str, FilterRule] = field(default_factory=lambda: NO_RULES)
    # The API's query limits (schema.limits), as for HTTP requests.
    limits: QueryLimits = field(default_factory=QueryLimits)
