"""The local AWS endpoint: moto's server, with its Step Functions emulator parsing each state
machine definition once instead of once per execution.

    python -m hemisphere.moto.server [moto.server's arguments]

moto (5.x) builds an execution's program by running its ANTLR parser over the definition at
every StartExecution: 55 ms of CPU for the checkout saga's ASL, the largest single cost of a
checkout on the local endpoint, paid on a thread that competes with every request moto
serves. Step Functions on AWS parses a definition when the state machine is created or
updated, never per execution. Here the parsed program is kept per definition text and each
execution gets a deep copy of it: executions never share a component, so nothing of one
execution's evaluation can leak into another's, exactly as with a fresh parse. The copy is
made by unpickling the program pickled once (0.48 ms for the checkout saga's, against 4.95 ms
for `copy.deepcopy`, 13 % of moto's CPU in the write bench); a program that cannot be pickled
is deep-copied as before.

The second change is how a Task state sends its message (`sqs:sendMessage.waitForTaskToken`,
the sagas' every step): moto builds a new boto3 client for each message and sends it over HTTP
back to its own server, a full request (a thread, parsing, signing) per saga step competing
with the workers' requests. Here the emulator's SQS client is made once per region and its
calls are served in-process by moto's own request router (moto's in-process mode, which its
test decorator uses), exactly what the HTTP request would have reached. Step Functions on AWS
delivers to SQS inside AWS too.

The third is DynamoDB Streams' GetRecords (the change-stream pollers call it several times a
second): moto 5.2 answers it through its generic, model-driven serializer, which spent 40 % of
moto's request CPU in the write benchmark walking every attribute of every record image. The
records are already in their wire shape (AttributeValue JSON), so here they are written with
json.dumps, timestamps as epoch seconds as the JSON protocol has them: the same document.

A GetRecords of the global table stand-in (the replicator) that finds nothing new waits up to
half a second for a record (hemisphere/moto/stream_wait.py): the replication that AWS does by
itself is told of a change, not polled for it. Other readers are answered at once.

The fourth is TransactWriteItems, which moto makes atomic by deep-copying every table it
names, items and whole stream, per transaction (hemisphere/moto/transactions.py): here it
checks every condition first and keeps an undo record of just the items it writes.

The rest (hemisphere/moto/request_overhead.py) is the cost of moto's HTTP server around every
request: a connection and a thread per request, an access log line, a search of every
service's URL patterns, Flask's debug helper; and (hemisphere/moto/repeated_work.py) work
repeated per evaluation that gives the same answer each time: JSONPath parsing, an item's
size check, a queue's attributes. The steps' SendMessage skips the client altogether
(hemisphere/moto/direct_sqs.py).

One change is for correctness, not speed: moto serves each request on a thread of its own and
its DynamoDB model has no lock, so a conditional write's check and write could be split by
another request's write; every DynamoDB action runs under one lock (hemisphere/moto/
atomic_items.py), as DynamoDB's writes are atomic.

Everything else is moto's server, unchanged.
"""

from __future__ import annotations

import base64
import calendar
import copy
import datetime
import json
import pickle
import sys
import threading
from collections import OrderedDict
from typing import Any, Final

# Definitions kept: every state machine of a deployment, with room for updated versions.
MAX_PROGRAMS: Final = 64


class ProgramCache:
    """Definition text -> its parsed program, least recently used dropped past `capacity`.
    Thread-safe: moto runs each execution on a thread of its own."""

    def __init__(self, parse: Any, capacity: int = MAX_PROGRAMS) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._parse = parse
        self._capacity = capacity
        # Definition -> the program pickled (bytes), or as parsed when it cannot be.
        self._programs: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.parses = 0  # how many definitions were parsed (for the tests and the bench)

    def program(self, definition: str) -> Any:
        """A private copy of `definition`'s program: parsed the first time, copied after."""
        with self._lock:
            parsed = self._programs.get(definition)
            if parsed is not None:
                self._programs.move_to_end(definition)
        if parsed is None:
            # Parsed outside the lock: two threads may both parse a new definition once;
            # the result is the same and one of them is kept.
            parsed = _pickled(self._parse(definition))
            with self._lock:
                self.parses += 1
                self._programs[definition] = parsed
                while len(self._programs) > self._capacity:
                    self._programs.popitem(last=False)
        if isinstance(parsed, bytes):
            return pickle.loads(parsed)  # our own bytes, pickled above
        return copy.deepcopy(parsed)


def _pickled(program: Any) -> Any:
    """The program as bytes a copy is unpickled from, or itself when it cannot be pickled."""
    try:
        return pickle.dumps(program, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        return program


def install_program_cache(capacity: int = MAX_PROGRAMS) -> ProgramCache:
    """Make moto's execution workers take their program from a ProgramCache."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    cache = ProgramCache(lambda text: AmazonStateLanguageParser.parse(text)[0], capacity)

    def entrypoint(worker: ExecutionWorker) -> Any:
        return cache.program(worker._evaluation_details.state_machine_details.definition)

    ExecutionWorker._get_evaluation_entrypoint = entrypoint  # type: ignore[method-assign,assignment]
    return cache


class ClientCache:
    """(region, service) -> one client, made on first use. boto3 clients are thread-safe."""

    def __init__(self, make: Any) -> None:
        self._make = make
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def client(self, region: str, service: str, state_credentials: Any = None) -> Any:
        key = (region, service)
        with self._lock:
            found = self._clients.get(key)
            if found is None:
                found = self._clients[key] = self._make(region, service, state_credentials)
        return found


def install_in_process_sqs() -> ClientCache:
    """Serve the emulator's own SQS calls in-process, through one client per region."""
    from moto.core.models import botocore_stubber
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_sqs,
    )
    from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

    from hemisphere.moto.direct_sqs import DirectSqs

    # Requests of boto3 clients made in this process go to moto's backends directly. The
    # server's own HTTP requests never pass through botocore: nothing else changes.
    botocore_stubber.enabled = True
    cache = ClientCache(boto_client_for)

    def cached(region: str, service: str, state_credentials: Any = None) -> Any:
        client = cache.client(region, service, state_credentials)
        # The steps' SendMessage, on the backend itself (hemisphere/moto/direct_sqs.py).
        return DirectSqs(region, client) if service == "sqs" else client

    state_task_service_sqs.boto_client_for = cached  # type: ignore[attr-defined]
    return cache


def wire_value(value: object) -> object:
    """What the JSON protocol makes of the values json cannot write: a timestamp is epoch
    seconds to the millisecond, as moto's serializer writes it (its naive datetimes are
    UTC), a blob base64, a set a list."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.UTC)
        return calendar.timegm(value.timetuple()) + value.microsecond // 1000 / 1000
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not a wire value")


def install_fast_stream_records() -> None:
    """GetRecords written with json.dumps instead of moto's generic serializer; the global
    table stand-in's waits for a record (hemisphere/moto/stream_wait.py)."""
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    from hemisphere.moto import stream_wait

    stream_wait.install_stream_wait()

    def get_records(handler: DynamoDBStreamsHandler) -> str:
        iterator = handler._get_param("ShardIterator")
        limit = handler._get_param("Limit") or 1000
        if stream_wait.waits(handler.headers.get("User-Agent")):
            stream_wait.wait_for_records(handler.backend, iterator)
        records = handler.backend.get_records(iterator, limit)
        return json.dumps(records, default=wire_value)

    DynamoDBStreamsHandler.get_records = get_records  # type: ignore[assignment,method-assign]


def install_all() -> None:
    """Every change this module makes to moto (see the module docstring)."""
    from hemisphere.moto import atomic_items, repeated_work, request_overhead
    from hemisphere.moto.transactions import install_transactions_by_item

    atomic_items.install()
    install_transactions_by_item()
    install_program_cache()
    install_in_process_sqs()
    install_fast_stream_records()
    request_overhead.install_all()
    repeated_work.install_all()


def main(argv: list[str] | None = None) -> None:
    from moto.server import main as moto_main

    install_all()
    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
