"""The ProjectionReader that answers from the region's read cache and reads the store on a miss.

Every read also notes what it was built from in the request's `ReadTrace` (when one is open),
so that a whole response can be cached with exact invalidation: the items and the lists it
read. A read that must not be cached (the region control item, read strongly consistent
because it decides where writes go) marks the trace uncacheable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

from domain.model import Customer, Order, Page, Product, RegionControl
from projections.read_cache import ABSENT, PRODUCT_PAGES, ReadCache, Tag, orders_of
from resolvers.ports import Cursor, ProjectionReader

T = TypeVar("T")


@dataclass(slots=True)
class ReadTrace:
    """What one request read: its tags, whether it may be cached, and the cache's clock when
    it began (a value built from tags that changed since is refused)."""

    since: int
    tags: set[Tag] = field(default_factory=set)
    cacheable: bool = True


_trace: ContextVar[ReadTrace | None] = ContextVar("hemisphere_read_trace", default=None)


def open_trace(cache: ReadCache) -> tuple[ReadTrace, object]:
    """Start recording the reads of this request (and of the tasks it starts); returns the
    trace and the token to give `close_trace`."""
    trace = ReadTrace(since=cache.clock())
    return trace, _trace.set(trace)


def close_trace(token: object) -> None:
    _trace.reset(token)  # type: ignore[arg-type]  # the token open_trace returned


def _note(tags: Sequence[Tag] | set[Tag]) -> None:
    trace = _trace.get()
    if trace is not None:
        trace.tags.update(tags)


def _uncacheable() -> None:
    trace = _trace.get()
    if trace is not None:
        trace.cacheable = False


class CachedProjectionReader:
    def __init__(self, store: ProjectionReader, cache: ReadCache) -> None:
        self._store = store
        self._cache = cache

    # --- by id ------------------------------------------------------------------------------

    async def products_by_id(self, ids: Sequence[str]) -> Mapping[str, Product]:
        return await self._by_id("product", ids, self._store.products_by_id)

    async def customers_by_id(self, ids: Sequence[str]) -> Mapping[str, Customer]:
        return await self._by_id("customer", ids, self._store.customers_by_id)

    async def orders_by_id(self, ids: Sequence[str]) -> Mapping[str, Order]:
        return await self._by_id("order", ids, self._store.orders_by_id)

    async def _by_id(
        self,
        kind: str,
        ids: Sequence[str],
        read: Callable[[Sequence[str]], Any],
    ) -> dict[str, T]:
        _note([(kind, i) for i in ids])
        found: dict[str, T] = {}
        missing: list[str] = []
        for item_id in dict.fromkeys(ids):
            cached = self._cache.item(kind, item_id)
            if cached is None:
                missing.append(item_id)
            elif cached is not ABSENT:
                found[item_id] = cached
        if missing:
            since = self._cache.clock()
            read_now: Mapping[str, T] = await read(missing)
            for item_id in missing:
                snapshot = read_now.get(item_id)
                self._cache.offer_item(kind, item_id, snapshot, since)
                if snapshot is not None:
                    found[item_id] = snapshot
        return found

    # --- pages ------------------------------------------------------------------------------

    async def products_page(
        self, category: str | None, limit: int, cursor: Cursor | None
    ) -> Page[Product]:
        key = ("products-page", category, limit, _frozen(cursor))
        return await self._page(
            key,
            PRODUCT_PAGES,
            lambda: self._store.products_page(category, limit, cursor),
        )

    async def orders_page_by_customer(
        self, customer_id: str, limit: int, cursor: Cursor | None
    ) -> Page[Order]:
        key = ("orders-page", customer_id, limit, _frozen(cursor))
        return await self._page(
            key,
            orders_of(customer_id),
            lambda: self._store.orders_page_by_customer(customer_id, limit, cursor),
        )

    async def _page(self, key: tuple[Any, ...], tag: Tag, read: Callable[[], Any]) -> Page[T]:
        _note([tag])
        cached = self._cache.entry(key)
        if cached is not None:
            page: Page[T] = cached
            return page
        since = self._cache.clock()
        page = await read()
        # The page holds the items as they were: any change to one of them (or to the list)
        # invalidates the list's tag, so the page is dropped with it.
        self._cache.put_entry(key, page, [tag], since)
        return page

    async def region_control(self) -> RegionControl | None:
        _uncacheable()
        return await self._store.region_control()


def _frozen(cursor: Cursor | None) -> tuple[tuple[str, Any], ...] | None:
    return None if cursor is None else tuple(sorted(cursor.items()))
