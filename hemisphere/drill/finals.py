"""The end of a drill: what became of every acknowledged order, and whether every region holds
the same copy of them. Reads go to each region's own API (no edge, no injected latency)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime

import httpx

from hemisphere.drill.graphql import execute
from hemisphere.drill.records import FINAL_STATUSES, FinalOrder, Json

BATCH = 40  # order(id) aliases per request: one BatchGetItem behind them
POLL_S = 1.0


def _query(order_ids: Sequence[str]) -> str:
    fields = "id status version history { status at }"
    aliases = " ".join(
        f'o{index}: order(id: "{order_id}") {{ {fields} }}'
        for index, order_id in enumerate(order_ids)
    )
    return f"{{ {aliases} }}"


async def read_orders(
    http: httpx.AsyncClient, url: str, order_ids: Sequence[str]
) -> dict[str, Json]:
    """{order id: order} for those the region knows; raises RuntimeError if it cannot answer."""
    found: dict[str, Json] = {}
    for start in range(0, len(order_ids), BATCH):
        chunk = order_ids[start : start + BATCH]
        answer = await execute(http, url, _query(chunk))
        if answer.data is None:
            raise RuntimeError(f"{url} did not answer the order reads: {answer.error}")
        for order in answer.data.values():
            if isinstance(order, dict):
                found[str(order["id"])] = order
    return found


def final_order(order_id: str, order: Json | None) -> FinalOrder:
    if order is None:
        return FinalOrder(order_id, found=False)
    final_at = next(
        (
            datetime.fromisoformat(str(change["at"]).replace("Z", "+00:00")).timestamp()
            for change in order.get("history") or []
            if change.get("status") in FINAL_STATUSES
        ),
        None,
    )
    return FinalOrder(order_id, True, str(order.get("status")), final_at)


async def settle_orders(
    http: httpx.AsyncClient,
    url: str,
    order_ids: Sequence[str],
    deadline: float,
    clock: Callable[[], float],
) -> dict[str, FinalOrder]:
    """Reads the orders until every one is final or `deadline` passes; the last answer holds."""
    finals: dict[str, FinalOrder] = {}
    while True:
        try:
            orders = await read_orders(http, url, order_ids)
            finals = {oid: final_order(oid, orders.get(oid)) for oid in order_ids}
        except RuntimeError:
            pass
        settled = finals and all(o.found and o.final_at is not None for o in finals.values())
        if settled or clock() >= deadline:
            return finals or {oid: FinalOrder(oid, found=False) for oid in order_ids}
        await asyncio.sleep(POLL_S)


async def compare_regions(
    http: httpx.AsyncClient,
    primary_url: str,
    region_urls: dict[str, str],
    order_ids: Sequence[str],
    deadline: float,
    clock: Callable[[], float],
) -> dict[str, bool]:
    """Per region: whether it holds each order at the primary's status and version (retried
    until `deadline`, for what replication still carries)."""

    def summary(orders: dict[str, Json]) -> dict[str, tuple[object, object]]:
        return {oid: (o.get("status"), o.get("version")) for oid, o in orders.items()}

    result: dict[str, bool] = {}
    for region, url in region_urls.items():
        equal = False
        while not equal:
            try:
                reference = summary(await read_orders(http, primary_url, order_ids))
                equal = summary(await read_orders(http, url, order_ids)) == reference
            except RuntimeError:
                equal = False
            if equal or clock() >= deadline:
                break
            await asyncio.sleep(POLL_S)
        result[region] = equal
    return result
