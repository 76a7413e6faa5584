"""What the local AWS endpoint spends on each request around the work itself: moto's server
with and without hemisphere/moto/request_overhead.py (kept connections, no access log line
for answers under 500, the host → service lookup and the action lookup kept), in one run.

    .venv/bin/python bench/local_endpoint.py [--requests 3000] [--rounds 3]

Two endpoints are started: `stock` has every other change of hemisphere/moto/server.py (the
program cache, in-process task messages, the GetRecords writer, the transaction fix) but not
those of request_overhead.py; `hemisphere` is `python -m hemisphere.moto.server` as every
command starts it.
Each gets a table with a stream (50 items) and a queue, then the same requests, the ones the
global drill sends most: GetRecords at the end of the stream (the replicators' and the
publisher's polls), GetItem, a conditional PutItem (a replicated write), and an empty
ReceiveMessage. One boto3 client each (keep-alive), sequential, the endpoints taking turns
in blocks. The figures are moto's CPU per request (utime+stime of its process, which a busy
machine disturbs least), the client's (boto3: a new connection per request costs it too),
the median wall time per request, and the ratio hemisphere ÷ stock.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from procs import Processes, free_port, process_cpu_seconds

# What `stock` installs: every change of hemisphere/moto/server.py but request_overhead.py's.
STOCK = """
import sys
from moto.server import main
from hemisphere.moto import server
from hemisphere.moto.transactions import install_transactions_by_item
install_transactions_by_item()
server.install_program_cache()
server.install_in_process_sqs()
server.install_fast_stream_records()
main(sys.argv[1:])
"""
TABLE = "bench"


class Endpoint:
    def __init__(self, name: str, url: str, pid: int) -> None:
        self.name, self.url, self.pid = name, url, pid
        config = Config(retries={"max_attempts": 1}, tcp_keepalive=True)
        make = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        ).client
        self.dynamodb: Any = make("dynamodb", endpoint_url=url, config=config)
        self.streams: Any = make("dynamodbstreams", endpoint_url=url, config=config)
        self.sqs: Any = make("sqs", endpoint_url=url, config=config)
        self.cpu_seconds = 0.0
        self.client_seconds = 0.0
        self.requests = 0
        self.wall: list[float] = []

    def prepare(self) -> list[Callable[[], object]]:
        """The table, its stream, 50 items and a queue; then the request mix."""
        self.dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        for n in range(50):
            item = {"pk": {"S": f"p-{n:04d}"}, "version": {"N": "1"}, "name": {"S": "x" * 40}}
            self.dynamodb.put_item(TableName=TABLE, Item=item)
        stream = self.dynamodb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
        shard = self.streams.describe_stream(StreamArn=stream)["StreamDescription"]["Shards"][0]
        iterator = [
            self.streams.get_shard_iterator(
                StreamArn=stream, ShardId=shard["ShardId"], ShardIteratorType="LATEST"
            )["ShardIterator"]
        ]
        queue = self.sqs.create_queue(QueueName="bench")["QueueUrl"]
        versions = itertools.count(2)

        def poll() -> object:
            # As a poller does: from where the last read ended (the puts' records, then none).
            answer = self.streams.get_records(ShardIterator=iterator[0], Limit=1000)
            iterator[0] = answer["NextShardIterator"]
            return answer

        def get() -> object:
            return self.dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "p-0007"}})

        def put() -> object:
            version = next(versions)
            return self.dynamodb.put_item(
                TableName=TABLE,
                Item={"pk": {"S": "r-0001"}, "version": {"N": str(version)}},
                ConditionExpression="attribute_not_exists(pk) OR version < :v",
                ExpressionAttributeValues={":v": {"N": str(version)}},
            )

        def receive() -> object:
            return self.sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0)

        # The drill's proportions, roughly: polls most, then reads and replicated writes.
        return [poll, poll, poll, get, get, put, receive]

    def block(self, mix: list[Callable[[], object]], requests: int) -> None:
        before, started = process_cpu_seconds(self.pid), time.perf_counter()
        client_before = time.process_time()
        for n in range(requests):
            mix[n % len(mix)]()
        self.wall.append((time.perf_counter() - started) / requests)
        self.client_seconds += time.process_time() - client_before
        self.cpu_seconds += process_cpu_seconds(self.pid) - before
        self.requests += requests


def start(procs: Processes, workdir: Path, name: str, argv: list[str]) -> Endpoint:
    port = free_port()
    log = workdir / f"{name}.log"
    process = procs.start(name, [*argv, "-H", "127.0.0.1", "-p", str(port)], log=log)
    url = f"http://127.0.0.1:{port}"
    endpoint = Endpoint(name, url, process.pid)
    deadline = time.monotonic() + 60
    while True:
        try:
            endpoint.dynamodb.list_tables()
            return endpoint
        except Exception:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{name} did not start; see {log}") from None
            time.sleep(0.3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="per endpoint and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--block", type=int, default=250, help="requests per turn")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Processes() as procs:
        workdir = Path(tmp)
        endpoints = [
            start(procs, workdir, "stock", [sys.executable, "-c", STOCK]),
            start(procs, workdir, "hemisphere", [sys.executable, "-m", "hemisphere.moto.server"]),
        ]
        mixes = [e.prepare() for e in endpoints]
        for endpoint, mix in zip(endpoints, mixes, strict=True):
            endpoint.block(mix, 100)  # warm-up, not counted
            endpoint.cpu_seconds, endpoint.client_seconds = 0.0, 0.0
            endpoint.requests, endpoint.wall = 0, []
        for _ in range(args.rounds):
            for _ in range(max(1, args.requests // args.block)):
                for endpoint, mix in zip(endpoints, mixes, strict=True):
                    endpoint.block(mix, args.block)
        print(
            f"{'endpoint':<12} {'requests':>8} {'moto CPU ms/req':>16} "
            f"{'client CPU ms/req':>18} {'wall ms/req':>12}"
        )
        for e in endpoints:
            cpu_ms = 1000 * e.cpu_seconds / e.requests
            client_ms = 1000 * e.client_seconds / e.requests
            wall_ms = 1000 * statistics.median(e.wall)
            print(
                f"{e.name:<12} {e.requests:>8} {cpu_ms:>16.3f} {client_ms:>18.3f} {wall_ms:>12.3f}"
            )
        stock, ours = endpoints
        ratio = (ours.cpu_seconds / ours.requests) / (stock.cpu_seconds / stock.requests)
        print(f"moto CPU per request, hemisphere ÷ stock: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
