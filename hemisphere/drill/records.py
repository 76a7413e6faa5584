"""What a drill observes, as plain records: every request a simulated user made, every
subscription delivery, every status poll and every control action. The runner appends them
(the I/O); the timeline, the phases and the report read them (pure).

Times are seconds on one wall clock (`Clock`), shared with the servers' timestamps: every
process of `hemisphere up` runs on this machine, so an order's `updatedAt` written by
PostgreSQL and the moment a subscriber here received it can be subtracted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

Json = dict[str, Any]
FINAL_STATUSES = frozenset({"CONFIRMED", "FAILED", "CANCELLED"})


class Clock:
    """The wall clock, advanced by the monotonic counter so that durations never jump."""

    def __init__(self) -> None:
        self._offset = time.time() - time.perf_counter()

    def __call__(self) -> float:
        return self._offset + time.perf_counter()


@dataclass(frozen=True, slots=True)
class Request:
    """One GraphQL request a simulated user sent. `error` is the AppSync errorType of the first
    error (or a transport failure: `ClientConnectorError`, `Timeout`, `HTTP 502`…), None on
    success."""

    location: str
    kind: Literal["read", "checkout", "probe"]
    started: float
    ended: float
    error: str | None = None
    # The region that answered, when the request asked for it (probes).
    region: str | None = None

    @property
    def latency_ms(self) -> float:
        return (self.ended - self.started) * 1000.0

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """A checkout the API acknowledged: the order exists as far as the user knows."""

    order_id: str
    location: str
    at: float
    # Whose order it is: reading it back needs that customer's token.
    customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """A subscription `data` message: which order change reached which location, and when.
    `changed_at` is the order's updatedAt (the primary's PostgreSQL clock)."""

    location: str
    order_id: str
    status: str
    version: int
    changed_at: float
    received_at: float


@dataclass(frozen=True, slots=True)
class Connection:
    """A subscriber's connection changed state: `established` once `start_ack` arrived,
    `lost` when the socket closed or failed."""

    location: str
    at: float
    state: Literal["established", "lost"]


@dataclass(frozen=True, slots=True)
class StatusPoll:
    """One answer of the control endpoint's GET /status (None when it did not answer)."""

    at: float
    status: Json | None


@dataclass(frozen=True, slots=True)
class Action:
    """A control action the drill took: stop, start or promote of a region."""

    name: Literal["stop", "start", "promote"]
    region: str
    requested: float
    answered: float
    ok: bool
    detail: str = ""
    answer: Json | None = None
    # For a stop: the scenario it starts (secondary-loss or primary-loss).
    scenario: str = ""


@dataclass(frozen=True, slots=True)
class ResyncCheck:
    """A returning region's copy of the latest acknowledged orders compared with the
    primary's: `equal` when it holds each at the primary's status and version."""

    region: str
    at: float
    equal: bool


@dataclass(frozen=True, slots=True)
class FinalOrder:
    """An acknowledged order as the current primary reports it at the end of the drill:
    `found` False when the primary answered without it, None when it never answered about it.
    `final_at` is when its history reached a final status (None if it has not)."""

    order_id: str
    found: bool | None
    status: str | None = None
    final_at: float | None = None


@dataclass
class Observations:
    """Everything one drill run saw, in arrival order."""

    started: float
    locations: tuple[str, ...]
    primary: str
    # When the steady stretch before the first kill began, after the warm-up (None: at the
    # start): what comes before it is not measured.
    steady_from: float | None = None
    requests: list[Request] = field(default_factory=list)
    acknowledged: list[Acknowledged] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    connections: list[Connection] = field(default_factory=list)
    status: list[StatusPoll] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    resync_checks: list[ResyncCheck] = field(default_factory=list)
    final_orders: dict[str, FinalOrder] = field(default_factory=dict)
    # Per region: its copy of the acknowledged orders vs the primary's at the end
    # ("equal", "different", "unreadable").
    data_equal: dict[str, str] = field(default_factory=dict)
    # The machine's 1-minute load average, sampled with the status polls.
    load: list[tuple[float, float]] = field(default_factory=list)
    ended: float = 0.0
