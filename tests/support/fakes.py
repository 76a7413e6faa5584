"""In-memory fakes of the ports, for functional tests (no sockets)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.commands import CancelOrder, Checkout, UpdateCustomerProfile, UpsertProduct
from domain.errors import IdempotencyConflictError, ReadOnlyRegionError
from domain.model import (
    Customer,
    Money,
    Order,
    OrderLine,
    OrderStatus,
    Page,
    Product,
    RegionControl,
    StatusChange,
)
from domain.saga import checkout_request, order_id_for

BASE = datetime(2026, 1, 1, tzinfo=UTC)
CATEGORIES = ("books", "garden", "music")


def make_products(n: int = 45) -> list[Product]:
    return [
        Product(
            id=f"p-{i:04d}",
            sku=f"SKU-{i:04d}",
            name=f"Product {i}",
            description=None,
            category=CATEGORIES[i % len(CATEGORIES)],
            price=Money(100 * i, "USD"),
            available=i,
            updated_at=BASE,
            version=1,
        )
        for i in range(1, n + 1)
    ]


def make_customer(i: int = 1) -> Customer:
    return Customer(
        id=f"c-{i:04d}",
        name=f"Customer {i}",
        email=f"customer{i}@example.com",
        home_region="us-east-1",
        loyalty_points=10 * i,
        updated_at=BASE,
        version=1,
    )


def make_order(i: int, customer: Customer, product: Product) -> Order:
    at = BASE + timedelta(hours=i)
    return Order(
        id=f"o-{i:04d}",
        customer_id=customer.id,
        customer_name=customer.name,
        status=OrderStatus.CONFIRMED,
        lines=(OrderLine(product.id, product.name, 2, product.price),),
        total=Money(product.price.amount * 2, "USD"),
        failure_reason=None,
        history=(StatusChange(OrderStatus.PENDING, at), StatusChange(OrderStatus.CONFIRMED, at)),
        placed_in="us-east-1",
        created_at=at,
        updated_at=at,
        version=2,
    )


class InMemoryReader:
    """The ProjectionReader port over dicts; counts calls so tests can see batching."""

    def __init__(
        self,
        products: Sequence[Product] = (),
        customers: Sequence[Customer] = (),
        orders: Sequence[Order] = (),
        control: RegionControl | None = None,
    ) -> None:
        self.products = {p.id: p for p in products}
        self.customers = {c.id: c for c in customers}
        self.orders = {o.id: o for o in orders}
        self.control = control
        self.calls: list[tuple[str, Any]] = []

    async def products_by_id(self, ids: Sequence[str]) -> Mapping[str, Product]:
        self.calls.append(("products_by_id", list(ids)))
        return {i: self.products[i] for i in ids if i in self.products}

    async def customers_by_id(self, ids: Sequence[str]) -> Mapping[str, Customer]:
        self.calls.append(("customers_by_id", list(ids)))
        return {i: self.customers[i] for i in ids if i in self.customers}

    async def orders_by_id(self, ids: Sequence[str]) -> Mapping[str, Order]:
        self.calls.append(("orders_by_id", list(ids)))
        return {i: self.orders[i] for i in ids if i in self.orders}

    async def products_page(
        self, category: str | None, limit: int, cursor: dict[str, Any] | None
    ) -> Page[Product]:
        self.calls.append(("products_page", (category, limit, cursor)))
        items = sorted(
            (p for p in self.products.values() if category is None or p.category == category),
            key=lambda p: p.id,
        )
        return _page(items, limit, cursor)

    async def orders_page_by_customer(
        self, customer_id: str, limit: int, cursor: dict[str, Any] | None
    ) -> Page[Order]:
        self.calls.append(("orders_page_by_customer", (customer_id, limit, cursor)))
        items = sorted(
            (o for o in self.orders.values() if o.customer_id == customer_id),
            key=lambda o: o.created_at,
            reverse=True,
        )
        return _page(items, limit, cursor)

    async def region_control(self) -> RegionControl | None:
        return self.control


def _page(items: list[Any], limit: int, cursor: dict[str, Any] | None) -> Page[Any]:
    start = int(cursor["offset"]) if cursor else 0
    chunk = items[start : start + limit]
    more = start + limit < len(items)
    return Page(items=chunk, cursor={"offset": start + limit} if more else None)


class InMemoryCatalog:
    def __init__(self, reader: InMemoryReader) -> None:
        self.reader = reader

    async def upsert_product(self, command: UpsertProduct) -> Product:
        existing = self.reader.products.get(command.id or "")
        product_id = command.id or f"p-{len(self.reader.products) + 1:04d}"
        product = Product(
            id=product_id,
            sku=command.sku,
            name=command.name,
            description=command.description,
            category=command.category,
            price=command.price,
            available=command.available,
            updated_at=BASE,
            version=(existing.version + 1) if existing else 1,
        )
        self.reader.products[product_id] = replace(product)
        return product


class FakeWorkflows:
    """The OrderWorkflows port as Step Functions behaves: one execution per name; the same
    name with another request is a conflict."""

    def __init__(self, *, reachable: bool = True) -> None:
        self.reachable = reachable
        self.checkouts: dict[str, dict[str, Any]] = {}
        self.cancellations: list[CancelOrder] = []

    async def start_checkout(self, command: Checkout, placed_in: str) -> bool:
        if not self.reachable:
            raise ReadOnlyRegionError("the primary region us-east-1 cannot be reached")
        order_id = order_id_for(command.customer_id, command.idempotency_key)
        request = checkout_request(command)
        first = order_id not in self.checkouts
        if self.checkouts.setdefault(order_id, request) != request:
            raise IdempotencyConflictError("this idempotencyKey was used for another checkout")
        return first

    async def start_cancellation(self, command: CancelOrder) -> None:
        if not self.reachable:
            raise ReadOnlyRegionError("the primary region us-east-1 cannot be reached")
        self.cancellations.append(command)


class FakeProfileUpdates:
    def __init__(self) -> None:
        self.submitted: list[UpdateCustomerProfile] = []

    async def submit(self, command: UpdateCustomerProfile) -> tuple[str, datetime]:
        self.submitted.append(command)
        return f"req-{command.customer_id}-{command.idempotency_key}", BASE


class AlwaysWritable:
    """resolvers.ports.WriteStatus of a region that knows no reason to refuse a write."""

    def read_only_reason(self) -> str | None:
        return None
