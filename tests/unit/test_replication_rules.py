"""The global table stand-in's rules, pure: what a region sends on, last writer wins by
version, origin marks, and the lag figures."""

from __future__ import annotations

from regions.ports import ORIGIN_REGION, ORIGIN_TIME, StreamRecord, WireItem
from regions.replication_rules import (
    Delete,
    LagStats,
    Put,
    latest_per_key,
    marked,
    origin_of,
    replication_action,
    version_of,
)

KEY = {"pk": {"S": "ORDER#1"}, "sk": {"S": "A"}}


def _item(
    version: int | None, origin: str | None = None, **extra: str
) -> dict[str, dict[str, str]]:
    item = {**KEY, **{name: {"S": value} for name, value in extra.items()}}
    if version is not None:
        item["version"] = {"N": str(version)}
    if origin is not None:
        item[ORIGIN_REGION] = {"S": origin}
        item[ORIGIN_TIME] = {"N": "1.000"}
    return item


def _record(
    new: WireItem | None, old: WireItem | None = None, at: float = 100.0, seq: str = "1"
) -> StreamRecord:
    return StreamRecord(seq, KEY, new, old, at)


def test_a_local_change_is_sent_marked_with_its_region_and_time() -> None:
    action = replication_action(_record(_item(3, status="PAID"), at=123.4567), "us-east-1")
    assert isinstance(action, Put)
    assert action.version == 3
    assert action.item[ORIGIN_REGION] == {"S": "us-east-1"}
    assert action.item[ORIGIN_TIME] == {"N": "123.457"}
    assert action.item["status"] == {"S": "PAID"}


def test_a_replicated_change_is_not_sent_on() -> None:
    assert replication_action(_record(_item(3, origin="eu-west-1")), "us-east-1") is None


def test_a_local_rewrite_of_a_replicated_item_is_sent_again() -> None:
    # The local writer put the whole item: the mark of the earlier replicated version is gone.
    old = _item(3, origin="eu-west-1")
    action = replication_action(_record(_item(4), old), "us-east-1")
    assert isinstance(action, Put) and action.version == 4


def test_bookkeeping_items_without_a_version_are_never_replicated() -> None:
    lease = {"pk": {"S": "LEASE#x"}, "sk": {"S": "LEASE"}, "holder": {"S": "h"}}
    assert replication_action(_record(lease), "us-east-1") is None
    assert replication_action(_record(None, lease), "us-east-1") is None
    assert replication_action(_record(_item(None)), "us-east-1") is None


def test_a_removal_is_sent_with_the_removed_version_whatever_its_origin() -> None:
    action = replication_action(_record(None, _item(5, origin="eu-west-1")), "us-east-1")
    assert action == Delete(KEY, 5, 100.0)


def test_a_non_numeric_version_counts_as_none() -> None:
    assert version_of({"version": {"S": "3"}}) is None
    assert version_of({"version": {"N": "x"}}) is None
    assert version_of({"version": {"N": "12"}}) == 12


def test_marking_keeps_the_item_and_replaces_an_older_mark() -> None:
    item = marked(_item(2, origin="ap-southeast-2"), "us-east-1", 5.0)
    assert origin_of(item) == "us-east-1"
    assert item["version"] == {"N": "2"}


def test_only_the_last_change_of_each_item_in_a_batch_is_sent_in_stream_order() -> None:
    other = {"pk": {"S": "ORDER#2"}, "sk": {"S": "A"}}
    first = Put(KEY, _item(1), 1, 1.0)
    second = Put(other, {**other, "version": {"N": "1"}}, 1, 2.0)
    third = Put(KEY, _item(2), 2, 3.0)
    removal = Delete(other, 1, 4.0)
    assert latest_per_key([first, second, third, removal]) == [third, removal]


def test_lag_percentiles() -> None:
    lag = LagStats()
    assert lag.as_ms()["p99"] is None
    for ms in range(1, 101):
        lag.record(ms / 1000)
    figures = lag.as_ms()
    assert figures["p50"] == 50.0
    assert figures["p99"] == 99.0
    assert figures["max"] == 100.0
    assert figures["last"] == 100.0
    assert figures["samples"] == 100
    lag.record(-0.5)  # clocks of two hosts disagree: never a negative lag
    assert lag.last == 0.0


def test_the_lag_now_is_the_recent_changes_only_and_none_when_idle() -> None:
    now = [0.0]
    lag = LagStats(monotonic=lambda: now[0], recent_seconds=30.0)
    lag.record(20.0)  # a slow change during an outage
    now[0] = 40.0
    for _ in range(10):
        lag.record(0.1)
    figures = lag.as_ms()
    assert figures["p99"] == 20_000.0  # every change kept since start-up
    assert figures["recent_p99"] == 100.0  # the last 30 s only: the outage is past
    now[0] = 80.0
    assert lag.as_ms()["recent_p99"] is None  # nothing replicated lately: no lag to show
