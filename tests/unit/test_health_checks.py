"""Route 53-style health state: thresholds, transitions with timestamps, timeouts."""

from __future__ import annotations

import asyncio

import pytest

from regions.health import HealthChecker, ProbeOutcome, Transition


class ScriptedProbe:
    """Answers each region's probes from a list of outcomes (True = healthy), then repeats
    the last one; `hang` makes a region's probes never answer."""

    def __init__(self, script: dict[str, list[bool]]) -> None:
        self.script = script
        self.hang: set[str] = set()

    async def __call__(self, base_url: str) -> ProbeOutcome:
        region = base_url.removeprefix("http://")
        if region in self.hang:
            await asyncio.Event().wait()
        answers = self.script[region]
        ok = answers.pop(0) if len(answers) > 1 else answers[0]
        return ProbeOutcome(ok, "HTTP 200" if ok else "HTTP 503")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _checker(probe: ScriptedProbe, clock: FakeClock, threshold: int = 3) -> HealthChecker:
    targets = {region: f"http://{region}" for region in probe.script}
    return HealthChecker(
        targets, probe, interval=1.0, timeout=0.05, failure_threshold=threshold, clock=clock
    )


async def _rounds(checker: HealthChecker, clock: FakeClock, count: int) -> None:
    for _ in range(count):
        await checker.check_once()
        clock.now += 1.0


async def test_the_first_probe_decides_at_once() -> None:
    clock = FakeClock()
    checker = _checker(ScriptedProbe({"up": [True], "down": [False]}), clock)
    assert checker.healthy_regions() == set()
    transitions = await checker.check_once()
    assert checker.healthy_regions() == {"up"}
    assert sorted(transitions, key=lambda t: t.region) == [
        Transition("down", False, 1_000.0, "HTTP 503"),
        Transition("up", True, 1_000.0, "HTTP 200"),
    ]


async def test_a_healthy_region_turns_unhealthy_after_threshold_consecutive_failures() -> None:
    clock = FakeClock()
    checker = _checker(ScriptedProbe({"r": [True, False, False, False]}), clock)
    await _rounds(checker, clock, 3)  # healthy, then two failures: still healthy
    assert checker.is_healthy("r")
    await _rounds(checker, clock, 1)
    assert not checker.is_healthy("r")
    assert checker.transitions[-1] == Transition("r", False, 1_003.0, "HTTP 503")


async def test_isolated_failures_do_not_move_traffic() -> None:
    clock = FakeClock()
    script = [True, False, False, True, False, False, True, False, True]
    checker = _checker(ScriptedProbe({"r": script}), clock)
    await _rounds(checker, clock, 9)
    assert checker.is_healthy("r")
    assert len(checker.transitions) == 1  # only the first decision


async def test_an_unhealthy_region_comes_back_after_threshold_consecutive_successes() -> None:
    clock = FakeClock()
    checker = _checker(ScriptedProbe({"r": [False, True, True, False, True, True, True]}), clock)
    await _rounds(checker, clock, 6)
    assert not checker.is_healthy("r")
    await _rounds(checker, clock, 1)
    assert checker.is_healthy("r")
    assert [(t.healthy, t.at) for t in checker.transitions] == [(False, 1_000.0), (True, 1_006.0)]


async def test_a_probe_that_does_not_answer_within_the_timeout_is_a_failure() -> None:
    clock = FakeClock()
    probe = ScriptedProbe({"r": [True]})
    checker = _checker(probe, clock, threshold=2)
    await _rounds(checker, clock, 1)
    probe.hang.add("r")
    await _rounds(checker, clock, 2)
    assert not checker.is_healthy("r")
    assert checker.status()["r"]["detail"] == "timeout"


async def test_listeners_hear_each_transition_once() -> None:
    clock = FakeClock()
    heard: list[Transition] = []
    checker = _checker(ScriptedProbe({"r": [True, False, False, False, False]}), clock, 2)
    checker.subscribe(heard.append)
    await _rounds(checker, clock, 5)
    assert [t.healthy for t in heard] == [True, False]


class CountingProbe:
    """Always healthy; `enough` is set once it has answered `count` probes."""

    def __init__(self, count: int) -> None:
        self.remaining = count
        self.enough = asyncio.Event()

    async def __call__(self, base_url: str) -> ProbeOutcome:
        self.remaining -= 1
        if self.remaining <= 0:
            self.enough.set()
        return ProbeOutcome(True, "HTTP 200")


async def test_run_probes_repeatedly_until_cancelled() -> None:
    probe = CountingProbe(4)  # the 4th probe starts after the 3rd was recorded
    checker = HealthChecker({"r": "http://r"}, probe, interval=0.01, timeout=0.05)
    running = asyncio.create_task(checker.run())
    await asyncio.wait_for(probe.enough.wait(), 5)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert checker.is_healthy("r")
    assert checker.status()["r"]["consecutive_successes"] >= 3


@pytest.mark.parametrize(("interval", "timeout", "threshold"), [(0, 1, 3), (1, 0, 3), (1, 1, 0)])
def test_nonsense_settings_are_rejected(interval: float, timeout: float, threshold: int) -> None:
    with pytest.raises(ValueError):
        HealthChecker(
            {}, ScriptedProbe({}), interval=interval, timeout=timeout, failure_threshold=threshold
        )
