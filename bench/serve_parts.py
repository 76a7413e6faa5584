"""Which part of `hemisphere serve` a CPU sample belongs to, for bench/write_path.py --profile.

`serve` on the embedded default is one process doing what AWS spreads over several services:
the API (AppSync), the saga steps (Lambda tasks of Step Functions), the outbox relay and the
projector (a stream consumer writing DynamoDB), the stream publisher (AppSync's subscription
delivery), the reconciler. Each py-spy sample (a stack, root first) goes to the part of its
*outermost* frame that names one: the task the work runs for (an asyncio task's stack starts
at its coroutine: uvicorn's request cycle for a request, `QueueWorker.run` for a saga step).
Samples with no such frame are the event loop's own (`loop`) or `other`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

# (part, path fragments of its entry frames), first match from the stack's root wins.
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("API (requests: GraphQL, the mutation)", ("/uvicorn/", "/starlette/", "hemisphere/http/")),
    ("saga steps (queue workers)", ("workflows/queue_worker.py", "workflows/activities.py")),
    ("outbox relay + projector", ("projections/relay.py", "projections/projector.py")),
    ("stream publisher", ("subscriptions/stream_publisher.py",)),
    ("reconciler", ("workflows/reconciler.py",)),
    ("profile updates", ("workflows/profile",)),
    ("read cache / change feed", ("projections/change_feed.py", "projections/read_cache.py")),
)
LOOP = "event loop (asyncio, between tasks)"
OTHER = "other"


def part_of(frames: list[str]) -> str:
    for frame in frames:
        for part, fragments in PARTS:
            if any(fragment in frame for fragment in fragments):
                return part
    if any("asyncio/" in frame for frame in frames):
        return LOOP
    return OTHER


def split(raw_lines: Iterable[str]) -> dict[str, float]:
    """py-spy `--format raw` lines ("frame;frame;... count") → each part's share (0..1)."""
    counts: Counter[str] = Counter()
    for line in raw_lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        counts[part_of(stack.split(";"))] += int(count)
    total = sum(counts.values())
    return {part: n / total for part, n in counts.most_common()} if total else {}
