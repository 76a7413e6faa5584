"""Writes to the relational model, each followed by its event in the outbox.

Every function runs in the caller's transaction (the seed's, or a saga step's), advances the
aggregate's version, reloads the snapshot as committed and appends it to the outbox, so the
change and its event commit together or not at all.

`at` parameters exist for the seed, whose timestamps must be fixed; everyone else leaves
them out and gets the transaction's time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from adapters.postgres import outbox
from adapters.postgres.pool import Connection
from adapters.postgres.snapshots import load_customer, load_order, load_orders, load_product
from domain.errors import BadRequestError, NotFoundError
from domain.events import CustomerChanged, OrderChanged, ProductChanged
from domain.model import Customer, Money, Order, OrderStatus, Product

# (status, at, reason) of one step of an order's history, oldest first.
HistoryEntry = tuple[OrderStatus, datetime, str | None]

# Serializes "next free p-NNNN" between concurrent writers (held until their commit).
_PRODUCT_ID_LOCK_KEY = 0x68656D70


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise BadRequestError(message)


def _check_money(money: Money) -> None:
    _require(money.amount >= 0, "a price cannot be negative")
    _require(
        len(money.currency) == 3 and money.currency.isalpha() and money.currency.isupper(),
        f"currency {money.currency!r} is not an ISO 4217 code",
    )


# -- events for changes made elsewhere ------------------------------------------------------
# A saga step that changes rows with its own SQL (say, reserving stock) calls these to append
# the new snapshot, after its last change of the aggregate in the transaction.


async def emit_product(conn: Connection, product_id: str) -> Product:
    product = await load_product(conn, product_id)
    if product is None:
        raise NotFoundError(f"product {product_id} not found")
    await outbox.append(conn, [ProductChanged(product)])
    return product


async def emit_customer(conn: Connection, customer_id: str) -> Customer:
    customer = await load_customer(conn, customer_id)
    if customer is None:
        raise NotFoundError(f"customer {customer_id} not found")
    await outbox.append(conn, [CustomerChanged(customer)])
    return customer


async def emit_order(conn: Connection, order_id: str) -> Order:
    order = await load_order(conn, order_id)
    if order is None:
        raise NotFoundError(f"order {order_id} not found")
    await outbox.append(conn, [OrderChanged(order)])
    return order


# -- customers ------------------------------------------------------------------------------


async def upsert_customer(
    conn: Connection,
    customer_id: str,
    name: str,
    email: str,
    home_region: str,
    loyalty_points: int | None = None,
    *,
    at: datetime | None = None,
) -> Customer:
    """Create or replace a customer. `loyalty_points=None` means 0 for a new customer and
    "keep" for an existing one, so editing a profile cannot wipe the points by accident.

    Orders show their customer's name: on a rename, the customer's orders get a new version
    and an event each, or their projections would keep the old name forever.
    """
    _require(bool(name.strip()), "a customer needs a name")
    _require("@" in email.strip("@"), f"{email!r} is not an email address")
    _require(loyalty_points is None or loyalty_points >= 0, "loyalty points cannot be negative")
    old_name = await conn.fetchval(
        "SELECT name FROM customers WHERE id = $1 FOR UPDATE", customer_id
    )
    await conn.execute(
        """
        INSERT INTO customers (id, name, email, home_region, loyalty_points, version, updated_at)
        VALUES ($1, $2, $3, $4, COALESCE($5::integer, 0), 1, COALESCE($6::timestamptz, now()))
        ON CONFLICT (id) DO UPDATE
           SET name = EXCLUDED.name,
               email = EXCLUDED.email,
               home_region = EXCLUDED.home_region,
               loyalty_points = COALESCE($5::integer, customers.loyalty_points),
               version = customers.version + 1,
               updated_at = EXCLUDED.updated_at
        """,
        customer_id,
        name,
        email,
        home_region,
        loyalty_points,
        at,
    )
    customer = await load_customer(conn, customer_id)
    assert customer is not None  # written just above, in this transaction
    orders: list[Order] = []
    if old_name is not None and old_name != name:
        renamed = await conn.fetch(
            "UPDATE orders SET version = version + 1 WHERE customer_id = $1 RETURNING id",
            customer_id,
        )
        orders = await load_orders(conn, [row["id"] for row in renamed])
    await outbox.append(conn, [CustomerChanged(customer), *map(OrderChanged, orders)])
    return customer


# -- products -------------------------------------------------------------------------------


async def _next_product_id(conn: Connection) -> str:
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _PRODUCT_ID_LOCK_KEY)
    number = await conn.fetchval(
        "SELECT COALESCE(max(substring(id FROM 3)::bigint), 0) + 1"
        " FROM products WHERE id ~ '^p-[0-9]+$'"
    )
    return f"p-{int(number):04d}"


async def upsert_product(
    conn: Connection,
    product_id: str | None,
    sku: str,
    name: str,
    description: str | None,
    category: str,
    price: Money,
    available: int,
    *,
    at: datetime | None = None,
) -> Product:
    """Create or replace a product and set its available stock.

    Without an id, the product with this sku is replaced, or a new one gets the next free
    'p-NNNN'. A product whose stock changes too advances its version by two (the inventory
    trigger counts one); versions only need to grow.
    """
    _require(bool(name.strip()), "a product needs a name")
    _require(bool(sku.strip()), "a product needs a sku")
    _require(available >= 0, "available stock cannot be negative")
    _check_money(price)
    if product_id is None:
        product_id = await conn.fetchval("SELECT id FROM products WHERE sku = $1", sku)
        if product_id is None:
            product_id = await _next_product_id(conn)
    owner = await conn.fetchval(
        "SELECT id FROM products WHERE sku = $1 AND id <> $2", sku, product_id
    )
    _require(owner is None, f"sku {sku} already belongs to product {owner}")
    exists = await conn.fetchval("SELECT true FROM products WHERE id = $1 FOR UPDATE", product_id)
    if exists:
        # Stock first: its trigger stamps updated_at with now(), which `at` then replaces.
        await conn.execute(
            """
            INSERT INTO inventory (product_id, available) VALUES ($1, $2)
            ON CONFLICT (product_id) DO UPDATE SET available = EXCLUDED.available
             WHERE inventory.available <> EXCLUDED.available
            """,
            product_id,
            available,
        )
        await conn.execute(
            """
            UPDATE products
               SET sku = $2, name = $3, description = $4, category = $5,
                   price_amount = $6, currency = $7, version = version + 1,
                   updated_at = COALESCE($8::timestamptz, now())
             WHERE id = $1
            """,
            product_id,
            sku,
            name,
            description,
            category,
            price.amount,
            price.currency,
            at,
        )
    else:
        await conn.execute(
            """
            INSERT INTO products
                   (id, sku, name, description, category, price_amount, currency, version,
                    updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, 1, COALESCE($8::timestamptz, now()))
            """,
            product_id,
            sku,
            name,
            description,
            category,
            price.amount,
            price.currency,
            at,
        )
        await conn.execute(
            "INSERT INTO inventory (product_id, available) VALUES ($1, $2)",
            product_id,
            available,
        )
    return await emit_product(conn, product_id)


# -- orders ---------------------------------------------------------------------------------


async def insert_order(
    conn: Connection,
    order_id: str,
    customer_id: str,
    lines: Sequence[tuple[str, int]],
    status: OrderStatus,
    placed_in: str,
    idempotency_key: str,
    history: Sequence[HistoryEntry] = (),
    created_at: datetime | None = None,
    *,
    failure_reason: str | None = None,
) -> Order:
    """Record an order of `lines` ((product id, quantity), in order) at today's catalogue
    names and prices. Stock is not touched: reserving it is a saga step of its own, and the
    seed's past orders were fulfilled long ago.

    `history` defaults to the single entry (status, created_at); its last status must be
    `status`. A FAILED order without `failure_reason` takes the reason of its last entry.
    """
    _require(bool(lines), "an order needs at least one line")
    _require(all(quantity > 0 for _, quantity in lines), "quantities must be positive")
    if created_at is None:
        created_at = await conn.fetchval("SELECT now()")
    if not history:
        history = [(status, created_at, failure_reason)]
    _require(history[-1][0] == status, "the last status of the history must be the status")
    if failure_reason is None and status is OrderStatus.FAILED:
        failure_reason = history[-1][2]

    if not await conn.fetchval("SELECT true FROM customers WHERE id = $1", customer_id):
        raise NotFoundError(f"customer {customer_id} not found")
    product_ids = [product_id for product_id, _ in lines]
    catalogue = {
        row["id"]: row
        for row in await conn.fetch(
            "SELECT id, name, price_amount, currency FROM products WHERE id = ANY($1::text[])",
            product_ids,
        )
    }
    for product_id in product_ids:
        if product_id not in catalogue:
            raise NotFoundError(f"product {product_id} not found")
    currencies = {catalogue[product_id]["currency"] for product_id in product_ids}
    _require(len(currencies) == 1, "all lines of an order must share one currency")
    currency = currencies.pop()
    total = sum(catalogue[pid]["price_amount"] * quantity for pid, quantity in lines)
    updated_at = max([created_at, *(at for _, at, _ in history)])

    await conn.execute(
        """
        INSERT INTO orders (id, customer_id, status, currency, total_amount, failure_reason,
                            placed_in, idempotency_key, created_at, updated_at, version)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1)
        """,
        order_id,
        customer_id,
        status.value,
        currency,
        total,
        failure_reason,
        placed_in,
        idempotency_key,
        created_at,
        updated_at,
    )
    await conn.execute(
        """
        INSERT INTO order_lines (order_id, line_no, product_id, product_name, quantity,
                                 unit_price_amount, currency)
        SELECT $1, line_no, l.product_id, p.name, l.quantity, p.price_amount, p.currency
          FROM unnest($2::text[], $3::integer[]) WITH ORDINALITY
               AS l(product_id, quantity, line_no)
          JOIN products p ON p.id = l.product_id
        """,
        order_id,
        product_ids,
        [quantity for _, quantity in lines],
    )
    await conn.execute(
        """
        INSERT INTO order_status_history (order_id, seq, status, at, reason)
        SELECT $1, seq, status, at, reason
          FROM unnest($2::text[], $3::timestamptz[], $4::text[]) WITH ORDINALITY
               AS h(status, at, reason, seq)
        """,
        order_id,
        [entry_status.value for entry_status, _, _ in history],
        [at for _, at, _ in history],
        [reason for _, _, reason in history],
    )
    return await emit_order(conn, order_id)
