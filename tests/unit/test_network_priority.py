"""regions.network_priority: the network's stand-ins ask for a higher priority, and run as
they are when they may not have it."""

from __future__ import annotations

import os

import pytest

from regions import network_priority


def test_the_priority_is_raised_when_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[int, int, int]] = []
    monkeypatch.setattr(os, "setpriority", lambda *args: asked.append(args))
    assert network_priority.run_as_network() is True
    assert asked == [(os.PRIO_PROCESS, 0, network_priority.NETWORK_NICENESS)]
    assert network_priority.NETWORK_NICENESS < 0  # ahead of the regions' processes


def test_without_the_privilege_it_runs_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "setpriority", refuse)
    assert network_priority.run_as_network() is False
