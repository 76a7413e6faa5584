"""What the resolvers need from the read side: the projections, and nothing else.

Queries never touch PostgreSQL: they read the region's DynamoDB projections through this port,
with the eventual consistency that AppSync over DynamoDB has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from domain.commands import CancelOrder, Checkout, UpdateCustomerProfile, UpsertProduct
from domain.model import Customer, Order, Page, Product, RegionControl

# A store's raw position of the next page (DynamoDB's LastEvaluatedKey, in plain form).
Cursor = dict[str, Any]


class ProjectionReader(Protocol):
    async def products_by_id(self, ids: Sequence[str]) -> Mapping[str, Product]: ...

    async def customers_by_id(self, ids: Sequence[str]) -> Mapping[str, Customer]: ...

    async def orders_by_id(self, ids: Sequence[str]) -> Mapping[str, Order]: ...

    async def products_page(
        self, category: str | None, limit: int, cursor: Cursor | None
    ) -> Page[Product]:
        """Products in id order, of one category or of all, `limit` at most per page."""
        ...

    async def orders_page_by_customer(
        self, customer_id: str, limit: int, cursor: Cursor | None
    ) -> Page[Order]:
        """A customer's orders, newest first."""
        ...

    async def region_control(self) -> RegionControl | None: ...


class Catalog(Protocol):
    """Catalog administration on the relational model (the primary region's write side)."""

    async def upsert_product(self, command: UpsertProduct) -> Product:
        """Write the product and its stock in one transaction that also appends the event
        to the outbox; the projection follows through the relay."""
        ...


class OrderWorkflows(Protocol):
    """The sagas, started in the primary region (from a secondary, across regions)."""

    async def start_checkout(self, command: Checkout, placed_in: str) -> bool:
        """Start the checkout saga, or find the one this request started before.
        Returns True when this call is known to be the checkout's first: no step of its
        saga has run, so there is no order to read yet (False: it may be a repeat).
        Raises IdempotencyConflictError when the key was used for another request, and
        ReadOnlyRegionError when the primary region cannot be reached (nothing started)."""
        ...

    async def start_cancellation(self, command: CancelOrder) -> None:
        """Start the cancellation saga (idempotent per key), with the same errors."""
        ...


@runtime_checkable
class CheckoutAdmission(Protocol):
    """OrderWorkflows that refuse new checkouts while the write path is saturated
    (workflows.admission). The checkout resolver asks first, before reading anything, so a
    refusal costs next to nothing."""

    async def admit_checkout(self) -> None:
        """Count one more saga in flight, or raise ThrottledError (retryable, with a hint)."""
        ...


class ProfileUpdates(Protocol):
    """Asynchronous customer profile changes through the event bus."""

    async def submit(self, command: UpdateCustomerProfile) -> tuple[str, datetime]:
        """Put the request on the bus; returns (request id, accepted at). The same
        (customer, key) always gives the same request id."""
        ...


class WriteStatus(Protocol):
    """Whether this region's writes would go through now (regions.write_availability)."""

    def read_only_reason(self) -> str | None:
        """Why they would be refused with ReadOnlyRegion; None when they would go through."""
        ...
