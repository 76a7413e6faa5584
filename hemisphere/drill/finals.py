"""The end of a drill: what became of every acknowledged order, and whether every region holds
the same copy of them. Reads go to each region's own API (no edge, no injected latency), a few
orders per request, each request allowed FINAL_READ_TIMEOUT_S: a loaded region answers slowly,
and a request that fails leaves its orders *unknown*, never *lost*.

Each request reads the orders of one customer with that customer's token (contract v2: a
token reads its own customer's orders only; the API key reads none): `OrderReader` knows
whose each order is."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import aiohttp

from hemisphere.drill.graphql import execute
from hemisphere.drill.records import FINAL_STATUSES, Acknowledged, FinalOrder, Json
from hemisphere.drill.tokens import CustomerTokens

BATCH = 10  # order(id) aliases per request: one BatchGetItem behind them
POLL_S = 1.0
FINAL_READ_TIMEOUT_S = 30.0
Comparison = Literal["equal", "different", "unreadable", "no final orders"]


def _query(order_ids: Sequence[str]) -> str:
    fields = "id status version history { status at }"
    aliases = " ".join(
        f'o{index}: order(id: "{order_id}") {{ {fields} }}'
        for index, order_id in enumerate(order_ids)
    )
    return f"{{ {aliases} }}"


@dataclass(frozen=True, slots=True)
class OrderReader:
    """Reads orders as their customers: `owners` maps an order id to its customer."""

    http: aiohttp.ClientSession
    tokens: CustomerTokens
    owners: Mapping[str, str]

    @classmethod
    def of(
        cls,
        http: aiohttp.ClientSession,
        tokens: CustomerTokens,
        acknowledged: Sequence[Acknowledged],
    ) -> OrderReader:
        owners = {a.order_id: a.customer_id for a in acknowledged if a.customer_id is not None}
        return cls(http, tokens, owners)

    def chunks(self, order_ids: Sequence[str]) -> Iterator[tuple[str, Sequence[str]]]:
        """(customer, up to BATCH of its orders); an order of no known customer is left out
        (unreadable: it stays unknown)."""
        by_owner: dict[str, list[str]] = defaultdict(list)
        for order_id in order_ids:
            owner = self.owners.get(order_id)
            if owner is not None:
                by_owner[owner].append(order_id)
        for owner, ids in by_owner.items():
            for start in range(0, len(ids), BATCH):
                yield owner, ids[start : start + BATCH]

    async def read(self, url: str, customer: str, order_ids: Sequence[str]) -> dict[str, Json]:
        """{order id: order} for those of `customer`'s orders the region knows; RuntimeError
        if it does not answer."""
        headers = self.tokens.headers(customer)
        answer = await execute(self.http, url, _query(order_ids), headers=headers)
        if answer.data is None:
            raise RuntimeError(f"{url} did not answer the order reads: {answer.error}")
        return {str(o["id"]): o for o in answer.data.values() if isinstance(o, dict)}


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
    reader: OrderReader,
    url: str,
    order_ids: Sequence[str],
    deadline: float,
    clock: Callable[[], float],
) -> dict[str, FinalOrder]:
    """Reads the orders that are not yet final until all are or `deadline` passes. An order the
    region never answered about stays unknown (found None)."""
    finals = {order_id: FinalOrder(order_id, found=None) for order_id in order_ids}
    while True:
        pending = [o for o, final in finals.items() if not final.found or final.final_at is None]
        if not pending or clock() >= deadline:
            return finals
        for customer, chunk in reader.chunks(pending):
            try:
                orders = await reader.read(url, customer, chunk)
            except RuntimeError:
                continue
            finals.update({o: final_order(o, orders.get(o)) for o in chunk})
        await asyncio.sleep(POLL_S)


async def compare_regions(
    reader: OrderReader,
    primary_url: str,
    region_urls: dict[str, str],
    order_ids: Sequence[str],
    deadline: float,
    clock: Callable[[], float],
    latest: int | None = None,
) -> dict[str, Comparison]:
    """Per region: whether it holds the orders that are final in the primary (the `latest`
    of them in `order_ids`' order, when given) at the primary's status and version (retried
    until `deadline`, for what replication still carries). Orders still moving are left out:
    their copies differ by the replication lag, rightly."""

    async def summary(url: str, ids: Sequence[str]) -> dict[str, tuple[object, object]]:
        found: dict[str, tuple[object, object]] = {}
        for customer, chunk in reader.chunks(ids):
            orders = await reader.read(url, customer, chunk)
            found.update({o: (v.get("status"), v.get("version")) for o, v in orders.items()})
        return found

    result: dict[str, Comparison] = {}
    for region, url in region_urls.items():
        while True:
            try:
                reference = await summary(primary_url, order_ids)
                final_ids = [o for o in order_ids if o in reference]
                final_ids = [o for o in final_ids if reference[o][0] in FINAL_STATUSES]
                if latest is not None:
                    final_ids = final_ids[-latest:]
                final = {o: reference[o] for o in final_ids}
                copy = await summary(url, list(final))
                verdict: Comparison = (
                    "no final orders" if not final else "equal" if copy == final else "different"
                )
            except RuntimeError:
                verdict = "unreadable"
            if verdict == "equal" or clock() >= deadline:
                break
            await asyncio.sleep(POLL_S)
        result[region] = verdict
    return result
