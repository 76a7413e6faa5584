"""The drill's pure parts: percentiles per phase, the timeline, the RPO, subscriptions."""

from __future__ import annotations

from typing import Any

from hemisphere.drill.conditions import all_healthy, read_only_everywhere, served, write_accepted
from hemisphere.drill.phases import error_windows, latency_by_phase, percentile, phases
from hemisphere.drill.propagation import delivery_by_location, reconnections
from hemisphere.drill.records import (
    Acknowledged,
    Action,
    Connection,
    Delivery,
    FinalOrder,
    Json,
    Observations,
    Request,
    ResyncCheck,
    StatusPoll,
)
from hemisphere.drill.rpo import recovery_point
from hemisphere.drill.timeline import Fault, assemble

LOCATIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")


def status(health: dict[str, str], lag_ms: float = 100.0, pg_ms: float | None = 20.0) -> Json:
    return {
        "primary": "us-east-1",
        "regions": {
            region: {
                "role": "down" if state == "down" else "secondary",
                "health": "unhealthy" if state == "down" else "healthy",
                "dynamodb_replication_lag_ms": {
                    other: lag_ms for other in health if other != region
                },
                "postgres_replay_lag_ms": pg_ms,
            }
            for region, state in health.items()
        },
    }


def healthy(lag_ms: float = 100.0, pg_ms: float | None = 20.0) -> Json:
    return status(dict.fromkeys(LOCATIONS, "up"), lag_ms, pg_ms)


def down(region: str) -> Json:
    return status({r: "down" if r == region else "up" for r in LOCATIONS})


def probe(location: str, at: float, region: str | None, error: str | None = None) -> Request:
    return Request(location, "probe", at, at + 0.01, error, region)


def checkout(location: str, at: float, error: str | None = None) -> Request:
    return Request(location, "checkout", at, at + 0.1, error)


def primary_loss() -> Observations:
    """us-east-1 (the primary) killed at 10, eu-west-1 promoted at 14.1 (answers at 16), the old
    primary restarted at 30, serving again at 40, its copy of the orders equal at 45."""
    obs = Observations(started=0.0, locations=LOCATIONS, primary="us-east-1", ended=60.0)
    obs.actions += [
        Action("stop", "us-east-1", 10.0, 10.2, True),
        Action("promote", "eu-west-1", 14.1, 16.0, True),
        Action("start", "us-east-1", 30.0, 33.0, True),
    ]
    obs.status += [
        StatusPoll(9.5, healthy(pg_ms=250.0)),
        StatusPoll(11.0, healthy()),
        StatusPoll(13.0, down("us-east-1")),
        StatusPoll(42.0, healthy(lag_ms=5000.0)),
        StatusPoll(45.0, healthy(lag_ms=80.0)),
    ]
    obs.resync_checks += [
        ResyncCheck("us-east-1", 41.0, False),
        ResyncCheck("eu-west-1", 44.0, True),  # another region: not this fault's
        ResyncCheck("us-east-1", 45.0, True),
    ]
    obs.requests += [
        checkout("us-east-1", 5.0),
        checkout("eu-west-1", 12.0, "ReadOnlyRegion"),
        checkout("ap-southeast-2", 13.4, "ReadOnlyRegion"),
        checkout("us-east-1", 13.9, "ReadOnlyRegion"),
        checkout("eu-west-1", 15.0, "ReadOnlyRegion"),
        checkout("eu-west-1", 16.5),
        probe("us-east-1", 11.0, None, "ConnectError"),
        probe("us-east-1", 15.0, "eu-west-1"),
        probe("us-east-1", 35.0, "eu-west-1"),
        probe("us-east-1", 40.0, "us-east-1"),
    ]
    return obs


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


def test_primary_loss_timeline() -> None:
    (fault,) = assemble(primary_loss())
    assert fault.scenario == "primary-loss" and fault.region == "us-east-1"
    assert fault.killed == 10.0
    assert fault.detected == 13.0  # the first poll that reports it unhealthy
    assert fault.traffic_moved == 15.01  # its location answered by eu-west-1
    # Every location saw ReadOnlyRegion: the last of the three firsts.
    assert fault.read_only == 14.0 and fault.read_only_locations == 3
    assert (fault.promoted_region, fault.promote_requested, fault.promoted) == (
        "eu-west-1",
        14.1,
        16.0,
    )
    assert fault.first_write == 16.6
    assert fault.restarted == 30.0
    assert fault.back == 40.01  # not the probe at 35, still served by eu-west-1
    assert fault.resynced == 45.0  # at 41 its copy still differed
    names = [event.name for event in fault.events()]
    assert names == [
        "kill",
        "detected",
        "read-only entered",
        "promote sent",
        "traffic moved",
        "promoted",
        "first write accepted",
        "restart sent",
        "region back",
        "resynced",
    ]


def test_secondary_loss_has_no_promotion_and_faults_split_the_run() -> None:
    obs = Observations(started=0.0, locations=LOCATIONS, primary="us-east-1", ended=100.0)
    obs.actions += [
        Action("stop", "ap-southeast-2", 10.0, 10.1, True),
        Action("start", "ap-southeast-2", 20.0, 21.0, True),
        Action("stop", "us-east-1", 50.0, 50.1, True),
        Action("promote", "eu-west-1", 55.0, 56.0, True),
    ]
    obs.requests += [
        probe("ap-southeast-2", 12.0, "us-east-1"),
        probe("ap-southeast-2", 25.0, "ap-southeast-2"),
        checkout("ap-southeast-2", 13.0),
        # A returning secondary may answer ReadOnlyRegion: no "read-only entered" for it.
        checkout("eu-west-1", 22.0, "ReadOnlyRegion"),
    ]
    first, second = assemble(obs)
    assert first.scenario == "secondary-loss" and first.until == 50.0
    assert first.first_write is None and first.read_only is None
    assert first.traffic_moved == 12.01 and first.back == 25.01
    assert second.scenario == "primary-loss" and second.until == 100.0
    assert second.back is None and second.restarted is None
    names = [p.name for p in phases(0.0, 100.0, [first, second])]
    assert names == [
        "before",
        "during secondary-loss",
        "after secondary-loss",
        "during primary-loss",
    ]


def test_intended_scenario_and_failed_actions() -> None:
    """A primary loss whose promotion failed is still a primary loss; the failure is an event;
    two faults of one scenario get phases of their own."""
    obs = Observations(started=0.0, locations=LOCATIONS, primary="us-east-1", ended=100.0)
    obs.actions += [
        Action("stop", "us-east-1", 10.0, 10.1, True, scenario="primary-loss"),
        Action("promote", "eu-west-1", 20.0, 25.0, False, "HTTP 500: timeout"),
        Action("start", "us-east-1", 30.0, 31.0, True),
        Action("stop", "us-east-1", 50.0, 50.1, True, scenario="primary-loss"),
    ]
    first, second = assemble(obs)
    assert first.scenario == second.scenario == "primary-loss"
    assert first.promoted is None and first.promoted_region == "eu-west-1"
    failed = [e for e in first.events() if e.name == "promote FAILED"]
    assert [(e.at, e.region, e.detail) for e in failed] == [
        (25.0, "eu-west-1", "HTTP 500: timeout")
    ]
    names = [p.name for p in phases(0.0, 100.0, [first, second])]
    assert names == ["before", "during primary-loss 1", "during primary-loss 2"]
    # The promotion answered an error, yet /status names eu-west-1 primary: it happened then.
    obs.status.append(StatusPoll(27.0, {**healthy(), "primary": "eu-west-1"}))
    assert assemble(obs)[0].promoted == 27.0


def test_failed_stop_is_no_fault() -> None:
    obs = Observations(started=0.0, locations=LOCATIONS, primary="us-east-1", ended=10.0)
    obs.actions.append(Action("stop", "eu-west-1", 1.0, 1.1, False, "HTTP 404"))
    assert assemble(obs) == []
    assert [p.name for p in phases(0.0, 10.0, [])] == ["steady"]


def test_latency_per_phase_by_start_time_with_errors_apart() -> None:
    fault = Fault("secondary-loss", "eu-west-1", killed=10.0, back=20.0, until=30.0)
    requests = [
        Request("eu-west-1", "read", 1.0, 1.010),
        Request("eu-west-1", "read", 2.0, 2.030),
        Request("eu-west-1", "read", 9.99, 10.5),  # started before the kill: "before"
        Request("eu-west-1", "read", 11.0, 11.0, "ConnectError"),
        Request("eu-west-1", "read", 12.0, 12.080),
        Request("eu-west-1", "read", 25.0, 25.012),
        Request("eu-west-1", "checkout", 25.0, 25.5),  # not a read
    ]
    table = latency_by_phase(requests, phases(0.0, 30.0, [fault]))
    before, during, after = (table["eu-west-1"][name] for name in ("before", "during", "after"))
    assert (before.count, before.errors) == (3, 0)
    assert round(before.p50_ms or 0) == 30 and round(before.p99_ms or 0) == 510
    assert (during.count, during.errors, round(during.p50_ms or 0)) == (2, 1, 80)
    assert (after.count, round(after.p99_ms or 0)) == (1, 12)


def test_error_windows_per_location_and_kind() -> None:
    fault = Fault("secondary-loss", "eu-west-1", killed=10.0, until=30.0)
    requests = [
        Request("eu-west-1", "read", 9.0, 9.5, "Timeout"),  # before the kill
        Request("eu-west-1", "read", 10.5, 10.6, "ConnectError"),
        Request("eu-west-1", "read", 11.0, 11.2, "HTTP 502"),
        Request("eu-west-1", "read", 11.5, 11.6),  # served elsewhere: the first outage ends
        Request("eu-west-1", "read", 13.0, 13.4, "ConnectError"),
        Request("eu-west-1", "checkout", 12.0, 12.5, "ServiceUnavailable"),
        Request("us-east-1", "read", 12.0, 12.01),
    ]
    windows = error_windows(requests, fault).windows
    assert [(w.location, w.kind) for w in windows] == [
        ("eu-west-1", "checkout"),
        ("eu-west-1", "read"),
    ]
    reads = windows[1]
    assert reads.by_type == {"ConnectError": 2, "HTTP 502": 1}
    assert (reads.first, reads.last) == (10.5, 13.4)
    assert round(reads.seconds, 3) == 2.9
    assert round(reads.burst_s, 3) == 0.7  # 10.5 → 11.2, before the success at 11.5
    assert windows[0].burst_s == 0.5  # never succeeded again: every error counts


def test_recovery_point_counts_lost_and_in_flight_orders() -> None:
    obs = primary_loss()
    obs.acknowledged += [
        Acknowledged("o-done", "us-east-1", 2.0),
        Acknowledged("o-lost", "us-east-1", 9.8),
        Acknowledged("o-late", "eu-west-1", 9.0),
        Acknowledged("o-stuck", "eu-west-1", 9.5),
        Acknowledged("o-after", "eu-west-1", 16.6),
    ]
    obs.final_orders = {
        "o-done": FinalOrder("o-done", True, "CONFIRMED", 4.0),
        "o-lost": FinalOrder("o-lost", False),
        "o-late": FinalOrder("o-late", True, "CONFIRMED", 36.0),  # 20 s after the promotion
        "o-stuck": FinalOrder("o-stuck", True, "AUTHORIZED", None),
        "o-after": FinalOrder("o-after", True, "CONFIRMED", 20.0),
        "o-unread": FinalOrder("o-unread", None),  # the primary never answered about it
    }
    obs.acknowledged.append(Acknowledged("o-unread", "us-east-1", 8.0))
    (fault,) = assemble(obs)
    point = recovery_point(obs, fault)
    assert point.acknowledged_before_kill == 5
    assert point.lost == ["o-lost"] and point.lost_acknowledged_after_kill == []
    assert point.unknown == 1
    assert point.in_flight == 2  # o-late and o-stuck; o-done was final before the kill
    assert point.final_in_time == 1 and point.not_final == ["o-stuck"]
    assert point.slowest_final_s == 20.0
    # The last poll before the kill: 250 ms replay lag on every standby.
    assert set(point.postgres_lag_at_kill_ms.values()) == {250.0}
    assert point.dynamodb_lag_at_kill_ms == 100.0


def test_deliveries_per_location_and_after_the_primary() -> None:
    deliveries = [
        Delivery("us-east-1", "o-1", "PENDING", 1, 1.000, 1.050),
        Delivery("eu-west-1", "o-1", "PENDING", 1, 1.000, 1.200),
        Delivery("eu-west-1", "o-1", "PENDING", 1, 1.000, 9.000),  # re-delivered: ignored
        Delivery("us-east-1", "o-1", "CONFIRMED", 2, 2.000, 2.040),
        Delivery("eu-west-1", "o-1", "CONFIRMED", 2, 2.000, 2.140),
    ]
    summary = {d.location: d for d in delivery_by_location(deliveries, "us-east-1")}
    assert summary["eu-west-1"].changes == 2
    assert round(summary["eu-west-1"].p99_ms or 0) == 200
    assert round(summary["eu-west-1"].extra_p99_ms or 0) == 150
    assert round(summary["us-east-1"].extra_p99_ms or 0) == 0


def test_reconnections_per_fault() -> None:
    fault = Fault("secondary-loss", "eu-west-1", killed=10.0, until=30.0)
    connections = [
        Connection("eu-west-1", 1.0, "established"),
        Connection("eu-west-1", 10.4, "lost"),
        Connection("eu-west-1", 11.9, "established"),
        Connection("us-east-1", 1.0, "established"),
        Connection("ap-southeast-2", 12.0, "lost"),
    ]
    found = reconnections(connections, [fault])
    assert [(r.location, r.gap_s) for r in found] == [
        ("ap-southeast-2", None),
        ("eu-west-1", 11.9 - 10.4),
    ]


def test_what_the_runner_waits_for() -> None:
    obs = primary_loss()
    assert served(obs, "us-east-1", 10.0, lambda region: region != "us-east-1")
    assert not served(obs, "us-east-1", 36.0, lambda region: region != "us-east-1")
    assert served(obs, "us-east-1", 36.0, "us-east-1".__eq__)
    assert read_only_everywhere(obs, 10.0)
    assert not read_only_everywhere(obs, 14.0)  # only eu-west-1 saw one after 14
    assert write_accepted(obs, 14.1) and not write_accepted(obs, 17.0)
    assert all_healthy(obs, LOCATIONS)  # the last poll
    assert not all_healthy(Observations(0.0, LOCATIONS, "us-east-1"), LOCATIONS)


def with_histograms(status_: Json, histograms: dict[str, dict[str, list[int]]]) -> Json:
    """`status_` with us-east-1's pipelines reporting these lag histograms (by target)."""
    status_["regions"]["us-east-1"]["dynamodb_replication_lag_histogram"] = histograms
    return status_


def test_a_phases_lag_p99_is_of_the_changes_written_in_it_not_of_the_polled_figures() -> None:
    from hemisphere.drill.phases import Phase
    from hemisphere.drill.report import lag_summary

    def histogram(at_40_ms: int, at_900_ms: int) -> dict[str, list[int]]:
        counts = [0] * 5
        counts[3], counts[4] = at_40_ms, at_900_ms
        return {"le_ms": [10, 20, 30, 40], "counts": counts}

    obs = Observations(started=0.0, locations=LOCATIONS, primary="us-east-1", ended=60.0)
    obs.status += [
        # Before the phase: one slow change to eu-west-1 (a 30 s figure that stays high).
        StatusPoll(9.0, with_histograms(healthy(900.0), {"eu-west-1": histogram(0, 1)})),
        StatusPoll(15.0, with_histograms(healthy(900.0), {"eu-west-1": histogram(50, 1)})),
        StatusPoll(25.0, with_histograms(healthy(900.0), {"eu-west-1": histogram(200, 1)})),
        StatusPoll(35.0, with_histograms(healthy(900.0), {"eu-west-1": histogram(250, 1)})),
    ]
    summary = lag_summary(obs, Phase("before", 10.0, 30.0))
    # 200 changes written in [10, 30), every one within 40 ms; the polls said 900 ms.
    assert summary.dynamodb_p99_by_pair_ms["us-east-1:eu-west-1"] == 40.0
    # Pairs without a histogram keep the polled p99, and say so.
    assert summary.dynamodb_p99_by_pair_ms["eu-west-1:us-east-1"] == 900.0
    assert "eu-west-1:us-east-1" in summary.dynamodb_p99_polled_pairs
    assert "us-east-1:eu-west-1" not in summary.dynamodb_p99_polled_pairs


def test_a_pipeline_that_restarted_in_the_phase_falls_back_to_the_polled_figures() -> None:
    from hemisphere.drill.phases import Phase
    from hemisphere.drill.report import lag_summary

    restarted = {"le_ms": [10], "counts": [1, 0]}
    earlier = {"le_ms": [10], "counts": [7, 0]}
    obs = Observations(started=0.0, locations=LOCATIONS, primary="us-east-1", ended=60.0)
    obs.status += [
        StatusPoll(9.0, with_histograms(healthy(120.0), {"eu-west-1": earlier})),
        StatusPoll(20.0, with_histograms(healthy(120.0), {"eu-west-1": restarted})),
    ]
    summary = lag_summary(obs, Phase("before", 10.0, 30.0))
    assert summary.dynamodb_p99_by_pair_ms["us-east-1:eu-west-1"] == 120.0
    assert "us-east-1:eu-west-1" in summary.dynamodb_p99_polled_pairs


def test_the_dynamodb_lag_at_a_kill_is_of_the_changes_just_before_it() -> None:
    from hemisphere.drill.rpo import dynamodb_lag_at

    def histogram(at_40_ms: int, at_30_s: int) -> dict[str, Any]:
        return {"le_ms": [40, 30_000], "counts": [at_40_ms, at_30_s, 0], "since": 1.0}

    def poll(at: float, counts: dict[str, Any], pending: float | None) -> StatusPoll:
        # Every pipeline reports 35 ms, but us-east-1 → eu-west-1's 30-s figure still holds
        # an outage 20 s before the kill (19 s); only that one reports its histogram.
        polled = with_histograms(healthy(35.0), {"eu-west-1": counts})
        us = polled["regions"]["us-east-1"]
        us["dynamodb_replication_lag_ms"]["eu-west-1"] = 19_000.0
        us["dynamodb_replication_pending_ms"] = {"eu-west-1": pending}
        return StatusPoll(at, polled)

    obs = Observations(started=0.0, locations=LOCATIONS, primary="us-east-1", ended=60.0)
    obs.status += [poll(30.0, histogram(10, 5), None), poll(45.0, histogram(60, 5), None)]
    # The 50 changes of the 10 s before the kill were all written within 40 ms.
    assert dynamodb_lag_at(obs, 50.0) == 40.0
    # A change still on its way at the kill is the lag.
    obs.status.append(poll(48.0, histogram(60, 5), 1_200.0))
    assert dynamodb_lag_at(obs, 50.0) == 1_200.0
    # Nothing written in the window and nothing waiting: the others' figures (35 ms).
    later = Observations(started=0.0, locations=LOCATIONS, primary="us-east-1", ended=60.0)
    later.status += [poll(30.0, histogram(60, 5), None), poll(45.0, histogram(60, 5), None)]
    assert dynamodb_lag_at(later, 50.0) == 35.0
    # Changes written above the histogram's last bound are not "not behind": the figure the
    # pipeline reported stands.
    beyond = Observations(started=0.0, locations=LOCATIONS, primary="us-east-1", ended=60.0)
    overflow = {"le_ms": [40, 30_000], "counts": [60, 5, 3], "since": 1.0}
    beyond.status += [poll(30.0, histogram(60, 5), None), poll(45.0, overflow, None)]
    assert dynamodb_lag_at(beyond, 50.0) == 19_000.0
