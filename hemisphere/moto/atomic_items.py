"""DynamoDB's writes are atomic on the local endpoint, as they are on AWS.

moto serves each request on a thread of its own, and its DynamoDB model has no lock: a
conditional PutItem reads the item, evaluates the condition against it, then writes. A thread
switch between the read and the write lets another request's write land in between, and both
conditions pass against the same old item: last writer wins by version (the projector's
writes, the global table stand-in's replicated writes) then keeps a lower version over a
higher one, and a lease or a checkpoint's fencing condition can let two holders through.
Measured in process (tests/unit/test_moto_atomic_items.py): six threads writing versions 1-6 of
one item, each only if newer, ended below 6 in 45 of 200 rounds with a 1 µs switch interval;
with Python's default interval (5 ms) it takes a busy machine, and then it is silent.

Here every DynamoDB action runs under one lock per process. moto's DynamoDB actions do no I/O,
only Python under the GIL, so serializing them costs no parallelism; the lock also keeps a Scan
or Query from iterating a table while another request changes it (a "dictionary changed size
during iteration" 500). DynamoDB Streams' reads (another handler) do not take it: the global
table stand-in's GetRecords waits for a record there (hemisphere/moto/stream_wait.py).
"""

from __future__ import annotations

import threading
from typing import Any

# Reentrant as a precaution: no DynamoDB action of moto's calls another today, but one that
# did on the same thread would deadlock on a plain lock, silently, in every test after it.
_actions = threading.RLock()


def install() -> None:
    """Run each of moto's DynamoDB actions under the process's DynamoDB lock."""
    from moto.dynamodb.responses import DynamoHandler

    if getattr(DynamoHandler.call_action, "_atomic", False):
        return
    call_action = DynamoHandler.call_action

    def call_action_atomically(handler: DynamoHandler) -> Any:
        with _actions:
            return call_action(handler)

    call_action_atomically._atomic = True  # type: ignore[attr-defined]
    DynamoHandler.call_action = call_action_atomically  # type: ignore[method-assign]
