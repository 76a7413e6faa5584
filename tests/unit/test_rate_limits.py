"""Per-caller rate limits: the GCRA arithmetic, the in-process limiter, and which keys a
request counts against."""

from __future__ import annotations

import pytest

from domain.auth import AuthMode, Caller
from domain.errors import BackendUnavailableError
from hemisphere.http.ports import Decision, Rate
from hemisphere.http.rate_limits import (
    InProcessRateLimiter,
    RateLimits,
    Throttle,
    gcra,
    retry_after_header,
)
from hemisphere.settings import Settings, SettingsError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_gcra_lets_a_burst_through_then_one_request_per_interval() -> None:
    rate, tat, now = Rate(per_second=10, burst=3), None, 0.0
    for _ in range(3):
        decision, tat = gcra(tat, now, rate)
        assert decision.allowed
    refused, unchanged = gcra(tat, now, rate)
    assert not refused.allowed and unchanged is None
    assert refused.retry_after_seconds == pytest.approx(0.1)
    decision, _ = gcra(tat, now + 0.1, rate)
    assert decision.allowed


async def test_the_in_process_limiter_keeps_one_allowance_per_key() -> None:
    clock = Clock()
    limiter, rate = InProcessRateLimiter(clock=clock), Rate(per_second=2, burst=2)
    assert [(await limiter.acquire("a", rate)).allowed for _ in range(3)] == [True, True, False]
    assert (await limiter.acquire("b", rate)).allowed  # another caller is untouched
    clock.now += 0.5
    assert (await limiter.acquire("a", rate)).allowed


async def test_it_forgets_the_least_recently_seen_keys() -> None:
    limiter, rate = InProcessRateLimiter(max_keys=2, clock=Clock()), Rate(1, 1)
    for key in ("a", "b", "c"):
        assert (await limiter.acquire(key, rate)).allowed
    assert (await limiter.acquire("a", rate)).allowed  # forgotten: a whole allowance again
    assert not (await limiter.acquire("c", rate)).allowed


async def test_a_caller_counts_against_its_key_or_its_identity() -> None:
    clock = Clock()
    limits = RateLimits(per_api_key=Rate(1, 1), per_identity=Rate(1, 2))
    throttle = Throttle(InProcessRateLimiter(clock=clock), limits)
    key = Caller(AuthMode.API_KEY, "da2-abcd")
    iam = Caller(AuthMode.AWS_IAM, "AKIAEXAMPLE")
    assert (await throttle.caller(key)).allowed and not (await throttle.caller(key)).allowed
    assert (await throttle.caller(iam)).allowed and (await throttle.caller(iam)).allowed
    assert not (await throttle.caller(iam)).allowed
    publisher = Caller(AuthMode.AWS_IAM, "AKIAPUB", stream_publisher=True)
    assert all([(await throttle.caller(publisher)).allowed for _ in range(10)])
    assert (await throttle.address("10.0.0.1")).allowed  # no address limit configured


async def test_a_limiter_that_does_not_answer_lets_requests_through() -> None:
    class Down:
        async def acquire(self, key: str, rate: Rate) -> Decision:
            raise BackendUnavailableError("Redis is down")

    throttle = Throttle(Down(), RateLimits(per_address=Rate(1, 1)))
    assert (await throttle.address("10.0.0.1")).allowed


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert retry_after_header(Decision(False, 0.2)) == "1"
    assert retry_after_header(Decision(False, 2.1)) == "3"


def test_settings_read_rate_and_burst() -> None:
    settings = Settings.from_env(
        {
            "HEMISPHERE_RATE_LIMIT_PER_ADDRESS": "50",
            "HEMISPHERE_RATE_LIMIT_PER_API_KEY": "5:20",
            "HEMISPHERE_RATE_LIMIT_PER_IDENTITY": "0",
        }
    )
    assert settings.rate_limit_per_address == (50.0, 100)
    assert settings.rate_limit_per_api_key == (5.0, 20)
    assert settings.rate_limit_per_identity is None
    with pytest.raises(SettingsError, match="HEMISPHERE_RATE_LIMIT_PER_API_KEY"):
        Settings.from_env({"HEMISPHERE_RATE_LIMIT_PER_API_KEY": "fast"})
