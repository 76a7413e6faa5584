"""The region's read cache: what DAX is to DynamoDB, fed by the change stream instead of a TTL.

Three kinds of entries, one invalidation clock:

- **items** (`product`, `customer`, `order` by id): the newest snapshot this instance knows.
  The change stream brings every change's full snapshot with its `version`; a snapshot is
  stored only if its version is higher than the one held, so a slow read that returns an
  older item can never replace a newer one (never older over newer). An id the store did
  not have is remembered as absent until the stream says otherwise.
- **tagged entries** (pages of a list, whole responses): a value with the tags of what it was
  built from (`("product", id)`, `PRODUCT_PAGES`, `("orders-of", customer)`...). A change
  invalidates its tags. A value computed while one of its tags changed is refused: every
  reader takes `clock()` before it starts and hands it to `put_entry`; the cache remembers
  when each tag was last invalidated.
- **absence of a feed**: the cache is only as good as the change feed that keeps it exact.
  `liveness()` is asked on every lookup: None means the feed is not listening (not yet
  subscribed, the broker's connection is down), and then nothing is served from the cache
  nor stored in it; a new value (the feed re-subscribed after a gap, in which changes may
  have been missed) empties the cache first.

Memory is bounded: least recently used items and entries go first; entries also count their
bytes. Pure: no I/O, no clock but the cache's own counter, so it is tested in memory.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

# Who changed: tags of the entries built from an item, and of list pages.
Tag = Hashable
ItemKey = tuple[str, str]  # (kind, id)

# Every page of the product lists, whatever the category: a product that changes its
# category leaves one list and joins another, and its old category is not in the change.
PRODUCT_PAGES: Tag = ("pages", "product")


def orders_of(customer_id: str) -> Tag:
    """The pages of one customer's orders."""
    return ("orders-of", customer_id)


class _Absent:
    """The store answered that this id has no item (a cached negative answer)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()


@dataclass(frozen=True, slots=True)
class _Entry:
    value: Any
    tags: frozenset[Tag]
    size: int


@dataclass(frozen=True, slots=True)
class CacheStats:
    items: int
    entries: int
    entry_bytes: int
    hits: int
    misses: int
    refused: int  # values computed while something they read changed
    resets: int  # the feed was interrupted: everything dropped


class ReadCache:
    def __init__(
        self,
        liveness: Callable[[], object | None],
        *,
        max_items: int = 50_000,
        max_entries: int = 20_000,
        max_entry_bytes: int = 64 * 1024 * 1024,
        max_versions: int = 200_000,
    ) -> None:
        self._liveness = liveness
        self._live_as: object | None = None
        self._max_items = max_items
        self._max_entries = max_entries
        self._max_entry_bytes = max_entry_bytes
        self._max_versions = max_versions
        self._items: OrderedDict[ItemKey, Any] = OrderedDict()
        # The highest version the stream announced per item, kept after the item itself
        # is evicted, so that a late read of an older version is still refused.
        self._versions: OrderedDict[ItemKey, int] = OrderedDict()
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._entry_bytes = 0
        self._tagged: dict[Tag, set[Hashable]] = {}
        # When each tag was last invalidated, by the clock; values begun before `_horizon`
        # are refused outright (what came before it was forgotten to bound this map).
        self._invalidated: dict[Tag, int] = {}
        self._horizon = 0
        self._clock = 0
        self._hits = self._misses = self._refused = self._resets = 0

    # --- the feed ---------------------------------------------------------------------------

    def live(self) -> bool:
        """Whether the change feed keeps the cache exact now (see the module's docstring)."""
        state = self._liveness()
        if state is None:
            return False
        if state != self._live_as:
            if self._live_as is not None:
                # Listening again after a gap: what changed meanwhile was not heard.
                self._reset()
            self._live_as = state
        return True

    def changed(
        self, kind: str, item_id: str, version: int, snapshot: Any | None, tags: Iterable[Tag] = ()
    ) -> None:
        """The change stream says item (kind, id) is at `version` now: `snapshot` is its full
        new state (None when the change did not carry all of it). Invalidates the entries
        built from the item and `tags` (its lists)."""
        key = (kind, item_id)
        known = self._versions.get(key)
        if known is None or version > known:
            self._versions[key] = version
            self._versions.move_to_end(key)
            if len(self._versions) > self._max_versions:
                self._versions.popitem(last=False)
        held = self._items.get(key)
        if snapshot is not None and _version_of(held) < version:
            self._store_item(key, snapshot)
        elif held is not None and _version_of(held) < version:
            del self._items[key]
        self.invalidate([key, *tags])

    def invalidate(self, tags: Iterable[Tag]) -> None:
        self._clock += 1
        for tag in tags:
            self._invalidated[tag] = self._clock
            for entry_key in self._tagged.pop(tag, ()):
                self._drop_entry(entry_key)
        if len(self._invalidated) > 4 * self._max_entries:
            # Forget old invalidations; a value begun before now can no longer be checked
            # against them, so it is refused (it is only a miss more).
            self._invalidated.clear()
            self._horizon = self._clock

    # --- items ------------------------------------------------------------------------------

    def item(self, kind: str, item_id: str) -> Any | None:
        """The cached snapshot, ABSENT for a known missing id, None when not cached."""
        if not self.live():
            return None
        key = (kind, item_id)
        found = self._items.get(key)
        if found is None:
            self._misses += 1
            return None
        self._hits += 1
        self._items.move_to_end(key)
        return found

    def offer_item(self, kind: str, item_id: str, snapshot: Any | None, since: int) -> None:
        """What a read of the store returned (None: no such item), read from `since` (the
        clock when the read began). Kept unless something newer is known."""
        if not self.live():
            return
        key = (kind, item_id)
        announced = self._versions.get(key)
        if snapshot is None:
            # Absent: trust it only if nothing was announced for the id and nothing about
            # it changed while it was read (it may have been created meanwhile).
            if announced is None and key not in self._items and self._unchanged([key], since):
                self._store_item(key, ABSENT)
            return
        version = _version_of(snapshot)
        if announced is not None and version < announced:
            return
        if _version_of(self._items.get(key)) < version:
            self._store_item(key, snapshot)

    def _store_item(self, key: ItemKey, value: Any) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        if len(self._items) > self._max_items:
            self._items.popitem(last=False)

    # --- tagged entries ---------------------------------------------------------------------

    def clock(self) -> int:
        return self._clock

    def entry(self, key: Hashable) -> Any | None:
        if not self.live():
            return None
        found = self._entries.get(key)
        if found is None:
            self._misses += 1
            return None
        self._hits += 1
        self._entries.move_to_end(key)
        return found.value

    def put_entry(
        self, key: Hashable, value: Any, tags: Iterable[Tag], since: int, size: int = 0
    ) -> bool:
        """Keep `value`, built from `tags` by a computation that began at clock `since`;
        refused (False) if one of the tags changed since then, or the feed is not live."""
        tags = frozenset(tags)
        if not self.live():
            return False
        if not self._unchanged(tags, since):
            self._refused += 1
            return False
        if size > self._max_entry_bytes // 8:
            return False
        self._drop_entry(key)
        self._entries[key] = _Entry(value, tags, size)
        self._entry_bytes += size
        for tag in tags:
            self._tagged.setdefault(tag, set()).add(key)
        while self._entries and (
            len(self._entries) > self._max_entries or self._entry_bytes > self._max_entry_bytes
        ):
            self._drop_entry(next(iter(self._entries)))
        return True

    def _unchanged(self, tags: Iterable[Tag], since: int) -> bool:
        if since < self._horizon:
            return False
        return all(self._invalidated.get(tag, -1) <= since for tag in tags)

    def _drop_entry(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self._entry_bytes -= entry.size
        for tag in entry.tags:
            keys = self._tagged.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._tagged[tag]

    # --- everything -------------------------------------------------------------------------

    def _reset(self) -> None:
        self._resets += 1
        self._items.clear()
        self._versions.clear()
        self._entries.clear()
        self._tagged.clear()
        self._entry_bytes = 0
        # Whatever was being computed when the feed broke is refused too.
        self._clock += 1
        self._invalidated.clear()
        self._horizon = self._clock

    def stats(self) -> CacheStats:
        return CacheStats(
            items=len(self._items),
            entries=len(self._entries),
            entry_bytes=self._entry_bytes,
            hits=self._hits,
            misses=self._misses,
            refused=self._refused,
            resets=self._resets,
        )


def _version_of(value: Any) -> int:
    """An item's version; -1 for nothing or ABSENT (any real version is newer)."""
    version = getattr(value, "version", None)
    return version if isinstance(version, int) else -1
