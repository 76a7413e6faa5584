"""The global table stand-in's stream reads wait for a change in the local endpoint, as AWS's
own replication is told of one.

A DynamoDB global table replicates inside AWS: a change is pushed to the other replicas by the
service, with no consumer polling a stream. Locally, `hemisphere replicator` stands in for that
by reading the region's stream (regions/replication.py), and a reader that polls adds its
poll interval to every change's lag, and its reads cost the endpoint CPU whether or not there
is anything to read. Measured under 4 checkouts a second (bench/steady_lag.py): the pipelines'
read lag was p50 36 ms and p99 80-120 ms, of a replication lag whose target is one-way + 100 ms.

So, in the local endpoint only, a GetRecords whose client names itself the global table's
replication (its User-Agent carries adapters.aws.REPLICATION_AGENT: the replicator's clients)
and finds nothing new waits up to WAIT_SECONDS for a record to be added to its shard, then
answers as GetRecords does. Every other reader (the stream publisher, whose production
counterpart polls AWS's DynamoDB Streams) is answered at once, as AWS answers it. AWS's
endpoint ignores the User-Agent, so the replicator's code is the same against either.
"""

from __future__ import annotations

import threading
from typing import Any, Final

from adapters.aws import REPLICATION_AGENT

# Below the replicator's read timeout (10 s) by far; an idle pipeline reads twice a second.
WAIT_SECONDS: Final = 0.5

_added = threading.Condition()


def install_stream_wait() -> None:
    """Shards announce each record they add; the stand-in's GetRecords waits for one."""
    from moto.dynamodb.models.table import StreamShard

    if getattr(StreamShard.add, "_announces", False):
        return
    add = StreamShard.add

    def add_and_announce(self: StreamShard, old: Any, new: Any) -> None:
        add(self, old, new)
        with _added:
            _added.notify_all()

    add_and_announce._announces = True  # type: ignore[attr-defined]
    StreamShard.add = add_and_announce  # type: ignore[method-assign]


def waits(user_agent: str | None) -> bool:
    """Whether a GetRecords from this client waits for a record."""
    return user_agent is not None and REPLICATION_AGENT in user_agent


def wait_for_records(backend: Any, iterator: str, timeout: float = WAIT_SECONDS) -> None:
    """Block until the shard of `iterator` (moto's DynamoDB Streams `backend` holds it) has a
    record at or past the iterator's position, or `timeout`. An unknown iterator returns at
    once: GetRecords answers it with moto's error."""
    position = backend.shard_iterators.get(iterator)
    if position is None:
        return
    shard = position.stream_shard

    def has_record() -> bool:
        return bool(shard.starting_sequence_number + len(shard.items) > position.sequence_number)

    with _added:
        _added.wait_for(has_record, timeout)
