"""Reading the relational model back as the domain's snapshots.

The writers (repositories) call `load_*` inside their transaction right after a change, so
the event they append carries exactly what the transaction committed. The rebuild reads every
aggregate through `PostgresSnapshotSource`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg

from adapters.postgres.pool import Connection
from domain.events import CustomerChanged, Event, OrderChanged, ProductChanged
from domain.model import Customer, Money, Order, OrderLine, OrderStatus, Product, StatusChange

T = TypeVar("T")

_PRODUCTS = """
    SELECT p.id, p.sku, p.name, p.description, p.category, p.price_amount, p.currency,
           COALESCE(i.available, 0) AS available, p.updated_at, p.version
      FROM products p
      LEFT JOIN inventory i ON i.product_id = p.id
"""

_CUSTOMERS = """
    SELECT id, name, email, home_region, loyalty_points, updated_at, version
      FROM customers
"""

_ORDERS = """
    SELECT o.id, o.customer_id, c.name AS customer_name, o.status, o.currency,
           o.total_amount, o.failure_reason, o.placed_in, o.created_at, o.updated_at,
           o.version
      FROM orders o
      JOIN customers c ON c.id = o.customer_id
"""


def product_from_row(row: asyncpg.Record) -> Product:
    return Product(
        id=row["id"],
        sku=row["sku"],
        name=row["name"],
        description=row["description"],
        category=row["category"],
        price=Money(amount=row["price_amount"], currency=row["currency"]),
        available=row["available"],
        updated_at=row["updated_at"],
        version=row["version"],
    )


def customer_from_row(row: asyncpg.Record) -> Customer:
    return Customer(
        id=row["id"],
        name=row["name"],
        email=row["email"],
        home_region=row["home_region"],
        loyalty_points=row["loyalty_points"],
        updated_at=row["updated_at"],
        version=row["version"],
    )


async def _assemble_orders(conn: Connection, rows: Sequence[asyncpg.Record]) -> list[Order]:
    """Orders with their lines and history: two more queries per batch, not per order."""
    if not rows:
        return []
    ids = [row["id"] for row in rows]
    lines: dict[str, list[OrderLine]] = defaultdict(list)
    for line in await conn.fetch(
        """
        SELECT order_id, product_id, product_name, quantity, unit_price_amount, currency
          FROM order_lines WHERE order_id = ANY($1::text[]) ORDER BY order_id, line_no
        """,
        ids,
    ):
        lines[line["order_id"]].append(
            OrderLine(
                product_id=line["product_id"],
                product_name=line["product_name"],
                quantity=line["quantity"],
                unit_price=Money(amount=line["unit_price_amount"], currency=line["currency"]),
            )
        )
    history: dict[str, list[StatusChange]] = defaultdict(list)
    for change in await conn.fetch(
        """
        SELECT order_id, status, at, reason
          FROM order_status_history WHERE order_id = ANY($1::text[]) ORDER BY order_id, seq
        """,
        ids,
    ):
        history[change["order_id"]].append(
            StatusChange(
                status=OrderStatus(change["status"]), at=change["at"], reason=change["reason"]
            )
        )
    return [
        Order(
            id=row["id"],
            customer_id=row["customer_id"],
            customer_name=row["customer_name"],
            status=OrderStatus(row["status"]),
            lines=tuple(lines[row["id"]]),
            total=Money(amount=row["total_amount"], currency=row["currency"]),
            failure_reason=row["failure_reason"],
            history=tuple(history[row["id"]]),
            placed_in=row["placed_in"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            version=row["version"],
        )
        for row in rows
    ]


async def load_product(conn: Connection, product_id: str) -> Product | None:
    row = await conn.fetchrow(_PRODUCTS + " WHERE p.id = $1", product_id)
    return product_from_row(row) if row is not None else None


async def load_customer(conn: Connection, customer_id: str) -> Customer | None:
    row = await conn.fetchrow(_CUSTOMERS + " WHERE id = $1", customer_id)
    return customer_from_row(row) if row is not None else None


async def load_order(conn: Connection, order_id: str) -> Order | None:
    orders = await load_orders(conn, [order_id])
    return orders[0] if orders else None


async def load_orders(conn: Connection, order_ids: Sequence[str]) -> list[Order]:
    """The orders of `order_ids` that exist, ordered by id."""
    rows = await conn.fetch(
        _ORDERS + " WHERE o.id = ANY($1::text[]) ORDER BY o.id", list(order_ids)
    )
    return await _assemble_orders(conn, rows)


# Keyset pages ("the next `limit` after this id"): each page is a short query on an index,
# where OFFSET would rescan everything before it and a cursor would pin one transaction
# (and one connection) for the whole rebuild. Starting after '' starts at the first id.


async def product_page(conn: Connection, after: str, limit: int) -> list[Product]:
    rows = await conn.fetch(_PRODUCTS + " WHERE p.id > $1 ORDER BY p.id LIMIT $2", after, limit)
    return [product_from_row(row) for row in rows]


async def customer_page(conn: Connection, after: str, limit: int) -> list[Customer]:
    rows = await conn.fetch(_CUSTOMERS + " WHERE id > $1 ORDER BY id LIMIT $2", after, limit)
    return [customer_from_row(row) for row in rows]


async def order_page(conn: Connection, after: str, limit: int) -> list[Order]:
    rows = await conn.fetch(_ORDERS + " WHERE o.id > $1 ORDER BY o.id LIMIT $2", after, limit)
    return await _assemble_orders(conn, rows)


class PostgresSnapshotSource:
    """projections.ports.SnapshotSource over the relational model, for rebuilds.

    Pages are read one at a time, each on a connection held only for that query: a slow
    consumer (writing to DynamoDB) never pins a pool connection or a long transaction.
    An aggregate that changes during the rebuild is yielded as of its page, and its newer
    event follows through the outbox; the projector keeps whichever version is newer.
    """

    def __init__(self, pool: asyncpg.Pool[Any], batch_size: int = 500) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._pool = pool
        self._batch_size = batch_size

    async def count(self) -> int:
        async with self._pool.acquire() as conn:
            total = await conn.fetchval(
                "SELECT (SELECT count(*) FROM products) + (SELECT count(*) FROM customers)"
                " + (SELECT count(*) FROM orders)"
            )
        return int(total)

    async def snapshots(self) -> AsyncIterator[Event]:
        async for product in self._pages(product_page, lambda p: p.id):
            yield ProductChanged(product)
        async for customer in self._pages(customer_page, lambda c: c.id):
            yield CustomerChanged(customer)
        async for order in self._pages(order_page, lambda o: o.id):
            yield OrderChanged(order)

    async def _pages(
        self,
        page: Callable[[Connection, str, int], Awaitable[list[T]]],
        key: Callable[[T], str],
    ) -> AsyncIterator[T]:
        after = ""
        while True:
            async with self._pool.acquire() as conn:
                items = await page(conn, after, self._batch_size)
            for item in items:
                yield item
            if len(items) < self._batch_size:
                return
            after = key(items[-1])
