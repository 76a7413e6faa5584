"""SQS requests and time of the two queue workers (issue #11): the profile update worker
(100 updates, one at a time) and the saga worker (200 tasks, 8 at once), each over
SqsTaskQueue and a fake aiobotocore SQS client whose requests take 3 ms. With `--baseline REV`
the workers of that git revision run too, in the same run (their modules are read with
`git show` into a temporary directory): REV 4a0f415 is before the one loop.

    .venv/bin/python bench/queue_workers.py [--baseline 4a0f415]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import logging
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/ shadows packages

from adapters.eventbridge import DELETE_LINGER_SECONDS
from adapters.sqs import SqsTaskQueue
from workflows.profile_updates import profile_update_worker
from workflows.worker import saga_worker

ROOT = Path(__file__).resolve().parents[1]
REQUEST_SECONDS = 0.003
SAGA_STEPS = ("CreateOrder", "ReserveInventory", "AuthorizePayment", "CapturePayment")


class FakeSqs:
    """`bodies` waiting; counts receives and DeleteMessageBatch requests."""

    def __init__(self, bodies: list[str]) -> None:
        self.waiting = [
            {"Body": body, "ReceiptHandle": f"r{n}", "MessageId": f"m{n}"}
            for n, body in enumerate(bodies)
        ]
        self.waiting_at_start = list(self.waiting)
        self.receives = self.deletes = self.deleted = 0
        self.all_deleted = asyncio.Event()

    async def receive_message(self, MaxNumberOfMessages: int, **_: Any) -> dict[str, Any]:
        self.receives += 1
        await asyncio.sleep(REQUEST_SECONDS)
        if not self.waiting:
            await asyncio.sleep(3600)  # a long poll on an empty queue
        taken = self.waiting[:MaxNumberOfMessages]
        del self.waiting[:MaxNumberOfMessages]
        return {"Messages": taken}

    async def delete_message_batch(self, Entries: list[Any], **_: Any) -> dict[str, Any]:
        self.deletes += 1
        self.deleted += len(Entries)
        if self.deleted == len(self.waiting_at_start):
            self.all_deleted.set()
        await asyncio.sleep(REQUEST_SECONDS)
        return {}


class Store:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def apply_profile_update(self, request_id: str, command: object) -> str:
        await asyncio.sleep(self.seconds)
        return "applied"


class Answers:
    async def succeed(self, token: str, output: str) -> bool:
        await asyncio.sleep(REQUEST_SECONDS)
        return True

    async def fail(self, token: str, error: str, cause: str) -> bool:
        await asyncio.sleep(REQUEST_SECONDS)
        return True


def profile_bodies(n: int) -> list[str]:
    def detail(i: int) -> dict[str, str]:
        return {"requestId": f"r{i}", "customerId": "c-1", "idempotencyKey": f"k{i}", "name": "A"}

    return [json.dumps({"detail": detail(i)}) for i in range(n)]


def saga_bodies(n: int) -> list[str]:
    return [
        json.dumps({"step": SAGA_STEPS[i % 4], "input": {"orderId": f"o{i}"}, "taskToken": f"t{i}"})
        for i in range(n)
    ]


async def measure(label: str, bodies: list[str], worker_of: Callable[[FakeSqs], Any]) -> None:
    sqs = FakeSqs(bodies)
    started = time.monotonic()
    task = asyncio.create_task(worker_of(sqs).run())
    await sqs.all_deleted.wait()
    took = time.monotonic() - started
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    print(
        f"{label:44} {sqs.receives:4} receives {sqs.deletes:4} DeleteMessageBatch {took:6.2f} s",
        flush=True,
    )


def load_revision(revision: str, path: str, into: Path) -> ModuleType:
    source = subprocess.run(
        ["git", "show", f"{revision}:{path}"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    file = into / path.replace("/", "_")
    file.write_text(source)
    spec = importlib.util.spec_from_file_location(file.stem, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


async def main(baseline: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        old_profiles = old_sagas = None
        if baseline:
            old_profiles = load_revision(baseline, "workflows/profile_updates.py", Path(tmp))
            old_sagas = load_revision(baseline, "workflows/worker.py", Path(tmp))
        for seconds in (0.002, 0.02, 0.05):
            label = f"profile updates x100, {seconds * 1000:.0f} ms each"
            if old_profiles is not None:
                await measure(
                    f"{label} ({baseline})",
                    profile_bodies(100),
                    lambda sqs, s=seconds: old_profiles.ProfileUpdateWorker(
                        sqs, "q", Store(s), wait_seconds=0
                    ),
                )
            await measure(
                label,
                profile_bodies(100),
                lambda sqs, s=seconds: profile_update_worker(
                    SqsTaskQueue(sqs, "q", delete_linger=DELETE_LINGER_SECONDS), Store(s)
                ),
            )
        for seconds in (0.005, 0.03):
            label = f"saga tasks x200, {seconds * 1000:.0f} ms per step"

            def steps(s: float) -> Any:
                async def run(step: str, state: object) -> dict[str, Any]:
                    await asyncio.sleep(s)
                    return {}

                return run

            if old_sagas is not None:
                await measure(
                    f"{label} ({baseline})",
                    saga_bodies(200),
                    lambda sqs, s=seconds: old_sagas.TaskWorker(
                        SqsTaskQueue(sqs, "q"), Answers(), steps(s)
                    ),
                )
            await measure(
                label,
                saga_bodies(200),
                lambda sqs, s=seconds: saga_worker(SqsTaskQueue(sqs, "q"), Answers(), steps(s)),
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="a git revision whose workers run too")
    logging.basicConfig(level=logging.ERROR)  # the workers log every update
    asyncio.run(main(parser.parse_args().baseline))
