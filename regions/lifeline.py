"""Child processes of `hemisphere up` (delay proxies, edge routers) that never outlive it.

A child started by `up` watches its parent: when the parent is gone (it was SIGKILLed, so it
could not stop its children) the child is re-parented, `os.getppid()` changes, and the child
stops itself. Polling is used rather than PR_SET_PDEATHSIG because that signal fires when the
*thread* that started the child exits, which would kill a child that an asyncio program starts
from a worker thread while the program is still running.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Coroutine
from typing import Any

POLL_SECONDS = 0.5


async def watch_parent(parent_pid: int, on_orphaned: Callable[[], object]) -> None:
    """Call `on_orphaned` once the parent `parent_pid` is no longer this process's parent."""
    while True:  # nothing signals a re-parenting: it can only be polled
        if os.getppid() != parent_pid:
            on_orphaned()
            return
        await asyncio.sleep(POLL_SECONDS)


async def run_until_stopped(work: Coroutine[Any, Any, None], parent_pid: int) -> None:
    """Run `work` until it ends, a stop signal arrives or the parent is gone (then `work` is
    cancelled and this returns normally: a stop is not a failure)."""
    running = asyncio.create_task(work)
    stop_on_signals(running.cancel)
    watcher = asyncio.create_task(watch_parent(parent_pid, running.cancel))
    try:
        await running
    except asyncio.CancelledError:
        if not running.cancelled():
            raise
    finally:
        watcher.cancel()


def stop_on_signals(stop: Callable[[], object]) -> None:
    """SIGTERM/SIGINT/SIGHUP run `stop` in the running loop (a graceful stop, exit 0)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop)
