"""Fill an empty shop with the demo data of seed_data, through the repositories.

Going through the repositories (not bulk COPY) puts every aggregate's event in the outbox,
so the projections fill up the normal way: the relay drains the outbox.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg

from adapters.postgres import seed_data
from adapters.postgres.repositories import insert_order, upsert_customer, upsert_product

log = logging.getLogger(__name__)

# Two instances starting on an empty database must not both seed it.
_SEED_LOCK_KEY = 0x68656D73


async def seed_demo_data(pool: asyncpg.Pool[Any]) -> bool:
    """Seed products, customers and past orders in one transaction if there are no products
    yet; returns whether it seeded. Safe to call on every start."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _SEED_LOCK_KEY)
        if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM products)"):
            return False
        for p in seed_data.products():
            await upsert_product(
                conn,
                p.id,
                p.sku,
                p.name,
                p.description,
                p.category,
                p.price,
                p.available,
                at=seed_data.BASE_DATE,
            )
        for c in seed_data.customers():
            await upsert_customer(
                conn, c.id, c.name, c.email, c.home_region, c.loyalty_points, at=c.updated_at
            )
        for o in seed_data.orders():
            await insert_order(
                conn,
                o.id,
                o.customer_id,
                o.lines,
                o.status,
                o.placed_in,
                o.idempotency_key,
                o.history,
                o.created_at,
            )
    log.info(
        "seeded the demo shop: %d products, %d customers, %d orders",
        seed_data.PRODUCT_COUNT,
        seed_data.CUSTOMER_COUNT,
        seed_data.ORDER_COUNT,
    )
    return True
