"""`hemisphere up` with two regions, driven as an operator and a client would: write
forwarding, the loss of a secondary, the loss of the primary, the promotion of the secondary,
the return of the old primary (fenced, rejoined as a secondary) and its resync. Checkouts go
as the customer, with a token of `up`'s development issuer (contract v2), which every region
verifies: a restarted region and a promoted one too.

One `up` for the whole module (it takes tens of seconds to start); the steps run in order and
each leaves the world as the next expects. Every process is stopped at the end, and the test
checks that none survived, even when a step failed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from hemisphere.local_issuer import LocalIssuer, issuer_of

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

BASE_PORT = 27000
REGIONS = ("us-east-1", "eu-west-1")
PRIMARY, SECONDARY = REGIONS
START_TIMEOUT_SECONDS = 240
_BACKEND_VARIABLES = (
    "DATABASE_URL",
    "AWS_ENDPOINT_URL",
    "REDIS_URL",
    "HEMISPHERE_API_KEYS",
    "HEMISPHERE_IAM_CREDENTIALS",
    "HEMISPHERE_TOKEN_SECRET",
    "HEMISPHERE_REGION",
    "HEMISPHERE_PRIMARY_REGION",
)
T = TypeVar("T")

ORDER_FIELDS = "id status version total { amount currency }"
CHECKOUT = f"""
mutation Checkout($input: CheckoutInput!) {{ checkout(input: $input) {{ {ORDER_FIELDS} }} }}
"""
ORDER = f"query Order($id: ID!) {{ order(id: $id) {{ {ORDER_FIELDS} }} }}"
PRODUCT = "query P($id: ID!) { product(id: $id) { id available version } }"
REGION = "{ region { region primaryRegion readOnly epoch } }"
CUSTOMER = "query C($id: ID!) { customer(id: $id) { id } }"


@dataclass
class Up:
    process: subprocess.Popen[str]
    data_dir: Path
    output: list[str] = field(default_factory=list)
    # The order left in flight by the lost primary, and its product's stock before it.
    in_flight: tuple[str, int] = ("", 0)

    @property
    def topology(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((self.data_dir / "topology.json").read_text())
        return loaded

    def regions(self, *args: str, timeout: float = 240) -> str:
        """`hemisphere regions …` as an operator types it."""
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "hemisphere.cli",
                "regions",
                *args,
                "--data-dir",
                str(self.data_dir),
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr + self.log()
        return done.stdout

    def status(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.regions("status", "--json"))
        return loaded

    def log(self) -> str:
        return "\n--- hemisphere up output:\n" + "".join(self.output[-60:])

    def token(self, customer: str) -> str:
        """`hemisphere token CUSTOMER --data-dir DIR`, as the banner tells a user."""
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "hemisphere.cli",
                "token",
                customer,
                "--data-dir",
                str(self.data_dir),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout.strip()


class Region:
    """A region's GraphQL endpoint: checkouts as their customer, with a token of `up`'s issuer
    (as the shop's clients send them), queries signed with SigV4 (IAM, as a back office reads
    any customer's orders)."""

    def __init__(self, name: str, url: str, issuer: LocalIssuer, iam: str) -> None:
        self.name = name
        self.url = url
        self.issuer = issuer
        akid, secret = iam.split(":", 1)
        self._credentials = Credentials(akid, secret)
        self._client = httpx.Client(timeout=15)

    def call(
        self, query: str, variables: dict[str, Any] | None = None, *, iam: bool = False
    ) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables or {}})
        headers = {"content-type": "application/json"}
        if query.lstrip().startswith("mutation") and not iam:
            customer = str((variables or {})["input"]["customerId"])
            headers["authorization"] = self.issuer.token(customer)
        else:
            request = AWSRequest(method="POST", url=self.url, data=body, headers=headers)
            SigV4Auth(self._credentials, "appsync", self.name).add_auth(request)
            headers = dict(request.headers.items())
        answer = self._client.post(self.url, content=body, headers=headers)
        document: dict[str, Any] = answer.json()
        return document

    def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        document = self.call(query, variables)
        assert not document.get("errors"), document
        data: dict[str, Any] = document["data"]
        return data

    def close(self) -> None:
        self._client.close()


def eventually(check: Callable[[], T | None], seconds: float, what: str) -> T:
    deadline = time.monotonic() + seconds
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result is not None and result is not False:
                return result
        except (httpx.HTTPError, AssertionError, KeyError) as error:
            last = error
        time.sleep(0.2)
    raise AssertionError(f"not within {seconds}s: {what} (last error: {last!r})")


def place(region: Region, key: str, seconds: float = 30, **checkout: str) -> dict[str, Any]:
    """A checkout, retried with the same idempotency key while the region answers that it
    cannot reach the primary (what the error tells clients to do: on this loaded machine a
    forwarded call sometimes outlasts its 3 s deadline)."""

    def attempt() -> dict[str, Any] | None:
        document = region.call(CHECKOUT, checkout_input(key, **checkout))
        errors = document.get("errors") or []
        if errors and errors[0].get("errorType") in ("ReadOnlyRegion", "ServiceUnavailable"):
            return None
        assert not errors, document
        placed: dict[str, Any] = document["data"]["checkout"]
        return placed

    return eventually(attempt, seconds, f"checkout {key} accepted by {region.name}")


def checkout_input(
    key: str, customer: str = "c-0007", product: str = "p-0042", token: str = "tok_visa"
) -> dict[str, Any]:
    return {
        "input": {
            "customerId": customer,
            "paymentToken": token,
            "idempotencyKey": key,
            "lines": [{"productId": product, "quantity": 1}],
        }
    }


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that mention `text` (the data dir or a port)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().split(") ", 1)[1][0]
        except OSError:
            continue
        command = raw.replace(b"\0", b" ").decode(errors="replace")
        if text in command and state != "Z":
            found.append(f"{entry.name}: {command}")
    return found


def start_up(data_dir: Path) -> Up:
    env = {k: v for k, v in os.environ.items() if k not in _BACKEND_VARIABLES}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hemisphere.cli",
            "up",
            "--regions",
            ",".join(REGIONS),
            "--latency",
            "none",
            "--base-port",
            str(BASE_PORT),
            "--data-dir",
            str(data_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    up = Up(process, data_dir)
    ready = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            up.output.append(line)
            if line.startswith("Press Ctrl-C"):
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not ready.wait(0.5):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_up(up)
            raise AssertionError("hemisphere up did not start" + up.log())
    return up


def stop_up(up: Up) -> None:
    """SIGTERM (what Ctrl-C does), then make sure: SIGKILL the group if it hangs."""
    if up.process.poll() is None:
        up.process.send_signal(signal.SIGTERM)
        try:
            up.process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(up.process.pid, signal.SIGKILL)
            up.process.wait()


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    # Not under pytest's tmp dir: PostgreSQL runs as an unprivileged user (we are root in
    # CI) that must be able to reach its data dir, and pytest's base dir is private (0700).
    data_dir = Path(tempfile.mkdtemp(prefix="hemisphere-up-"))
    data_dir.chmod(0o755)
    try:
        yield from _running_up(data_dir)
    finally:
        # The processes' logs stay for whoever reads a failure.
        kept = tmp_path_factory.mktemp("up-logs")
        if (data_dir / "logs").is_dir():
            shutil.copytree(data_dir / "logs", kept, dirs_exist_ok=True)
        print(f"hemisphere up logs: {kept}")
        shutil.rmtree(data_dir, ignore_errors=True)


def _running_up(data_dir: Path) -> Iterator[Up]:
    running = start_up(data_dir)
    try:
        yield running
    finally:
        stop_up(running)
        # Nothing may outlive `up`: PostgreSQL's command lines name the data dir, the AWS
        # endpoints, proxies and APIs their ports.
        deadline = time.monotonic() + 15
        left: list[str] = []
        while time.monotonic() < deadline:
            left = processes_mentioning(str(data_dir)) + processes_mentioning(f"{BASE_PORT + 2}")
            if not left:
                break
            time.sleep(0.5)
        assert not left, "processes outlived hemisphere up:\n" + "\n".join(left)
        assert running.process.returncode == 0, running.log()


@pytest.fixture(scope="module")
def regions(up: Up) -> Iterator[dict[str, Region]]:
    topology = up.topology
    issuer = issuer_of(up.data_dir)
    assert issuer is not None, "hemisphere up left no issuer.json in its data dir"
    made = {
        name: Region(name, topology["regions"][name]["graphql"], issuer, topology["iam"])
        for name in REGIONS
    }
    yield made
    for region in made.values():
        region.close()


def order_in(region: Region, order_id: str, status: str) -> dict[str, Any] | None:
    order = region.data(ORDER, {"id": order_id})["order"]
    return order if order is not None and order["status"] == status else None


def edge_choice(up: Up, location: str) -> str | None:
    """Which region the location's edge sends a read to (its x-hemisphere-region)."""
    answer = httpx.post(
        up.topology["edge"][location],
        json={"query": REGION},
        headers={"x-api-key": up.topology["api_key"]},
        timeout=5,
    )
    if answer.status_code != 200 or answer.json().get("errors"):
        return None
    region: str = answer.json()["data"]["region"]["region"]
    return region


def test_topology_file_and_status(up: Up) -> None:
    topology = up.topology
    assert topology["primary"] == PRIMARY and topology["epoch"] == 1
    assert topology["regions"][SECONDARY]["graphql"] == f"http://127.0.0.1:{BASE_PORT + 11}/graphql"
    assert topology["regions"][SECONDARY]["realtime"] == (
        f"ws://127.0.0.1:{BASE_PORT + 11}/graphql/realtime"
    )
    assert topology["edge"] == {
        PRIMARY: f"http://127.0.0.1:{BASE_PORT}/graphql",
        SECONDARY: f"http://127.0.0.1:{BASE_PORT + 10}/graphql",
    }
    assert topology["api_key"] in "".join(up.output)

    def settled() -> dict[str, Any] | None:
        status = up.status()
        regions = status["regions"].values()
        if all(r["health"] == "healthy" and r["epoch"] == 1 for r in regions):
            return status
        return None

    status = eventually(settled, 60, "both regions healthy at epoch 1")
    assert status["regions"][PRIMARY]["role"] == "primary"
    assert status["regions"][SECONDARY]["role"] == "secondary"
    assert status["regions"][SECONDARY]["postgres_replay_lag_ms"] is not None


def test_a_token_of_up_is_accepted_by_every_region_and_the_key_reads_no_customer(
    up: Up,
) -> None:
    topology = up.topology
    assert topology["token_issuer"] == f"http://127.0.0.1:{BASE_PORT + 99}"
    assert f"hemisphere token c-0001 --data-dir {up.data_dir}" in "".join(up.output)
    discovery = httpx.get(topology["token_issuer"] + "/.well-known/openid-configuration").json()
    assert discovery["issuer"] == topology["token_issuer"]
    token = up.token("c-0001")
    for name in REGIONS:
        url = topology["regions"][name]["graphql"]
        body = {"query": CUSTOMER, "variables": {"id": "c-0001"}}
        mine = httpx.post(url, json=body, headers={"authorization": token}, timeout=15).json()
        assert mine == {"data": {"customer": {"id": "c-0001"}}}, (name, mine)
        other = {"query": CUSTOMER, "variables": {"id": "c-0002"}}
        theirs = httpx.post(url, json=other, headers={"authorization": token}, timeout=15)
        assert theirs.json()["errors"][0]["errorType"] == "Unauthorized", (name, theirs.text)
        keyed = httpx.post(url, json=body, headers={"x-api-key": topology["api_key"]}, timeout=15)
        assert keyed.json()["errors"][0]["errorType"] == "Unauthorized", (name, keyed.text)


def test_a_checkout_through_the_secondary_is_forwarded(regions: dict[str, Region]) -> None:
    placed = place(regions[SECONDARY], "e2e-up-forwarded")
    for region in regions.values():
        eventually(
            lambda region=region: order_in(region, placed["id"], "CONFIRMED"),  # type: ignore[misc]
            60,
            f"order {placed['id']} CONFIRMED in {region.name}",
        )


UPSERT = """mutation($input: ProductInput!) { upsertProduct(input: $input) { id name } }"""


def upsert(region: Region, sku: str) -> dict[str, Any]:
    """A catalog write (IAM), retried while the region cannot reach the primary."""

    def attempt() -> dict[str, Any] | None:
        product = {
            "sku": sku,
            "name": f"Lamp {sku}",
            "category": "garden",
            "price": {"amount": 4200, "currency": "USD"},
            "available": 3,
        }
        document = region.call(UPSERT, {"input": product}, iam=True)
        errors = document.get("errors") or []
        if errors and errors[0].get("errorType") in ("ReadOnlyRegion", "ServiceUnavailable"):
            return None
        assert not errors, document
        written: dict[str, Any] = document["data"]["upsertProduct"]
        return written

    return eventually(attempt, 30, f"upsertProduct {sku} accepted by {region.name}")


PRODUCT_NAME = "query N($id: ID!) { product(id: $id) { name } }"


def product_named(region: Region, product_id: str, name: str) -> bool:
    found = region.data(PRODUCT_NAME, {"id": product_id})["product"]
    return found is not None and found["name"] == name


def test_a_catalog_write_through_the_secondary_reaches_every_region(
    regions: dict[str, Region],
) -> None:
    """Write global for the catalog too: the secondary sends it to the primary's database
    (Aurora write forwarding's stand-in), and it comes back replicated."""
    written = upsert(regions[SECONDARY], "E2E-UP-FORWARDED")
    for region in regions.values():
        eventually(
            lambda region=region: product_named(region, written["id"], written["name"]),  # type: ignore[misc]
            60,
            f"product {written['id']} in {region.name}",
        )


def test_losing_the_secondary_moves_its_users_and_loses_no_write(
    up: Up, regions: dict[str, Region]
) -> None:
    eventually(lambda: edge_choice(up, SECONDARY) == SECONDARY, 30, "its edge serves its users")
    placed = place(regions[PRIMARY], "e2e-up-before-loss")
    eventually(lambda: order_in(regions[SECONDARY], placed["id"], "CONFIRMED"), 60, "replicated")

    up.regions("stop", SECONDARY)
    killed = time.monotonic()
    eventually(lambda: edge_choice(up, SECONDARY) == PRIMARY, 30, "users moved to the primary")
    print(f"secondary loss: users moved after {time.monotonic() - killed:.1f}s")
    assert up.status()["regions"][SECONDARY]["role"] == "down"
    # Every acknowledged write is still there.
    assert order_in(regions[PRIMARY], placed["id"], "CONFIRMED")

    started = time.monotonic()
    answer = up.regions("start", SECONDARY)
    print(f"secondary back and serving after {time.monotonic() - started:.1f}s: {answer.strip()}")
    assert "is back as the secondary" in answer and "API ready" in answer  # where it went
    eventually(lambda: edge_choice(up, SECONDARY) == SECONDARY, 30, "its users are back")
    eventually(lambda: order_in(regions[SECONDARY], placed["id"], "CONFIRMED"), 30, "resynced")


IN_FLIGHT_PRODUCT = "p-0099"


def test_losing_the_primary_makes_the_secondary_read_only(
    up: Up, regions: dict[str, Region]
) -> None:
    # An order in flight when the primary dies: its card never answers, so its saga is
    # retrying the authorization (seconds per attempt) when the region goes.
    stock = regions[PRIMARY].data(PRODUCT, {"id": IN_FLIGHT_PRODUCT})["product"]["available"]
    in_flight = place(
        regions[PRIMARY], "e2e-up-in-flight", product=IN_FLIGHT_PRODUCT, token="tok_timeout"
    )
    eventually(
        lambda: regions[SECONDARY].data(ORDER, {"id": in_flight["id"]})["order"],
        30,
        "the in-flight order replicated",
    )
    up.in_flight = (in_flight["id"], stock)
    up.regions("stop", PRIMARY)
    killed = time.monotonic()
    # Before any write finds out: its probe of the primary's Step Functions tells it, and
    # a frontend reading `region` can say so.
    eventually(
        lambda: regions[SECONDARY].data(REGION)["region"]["readOnly"],
        5,
        "the secondary says it is read-only",
    )
    print(f"primary loss: region {{ readOnly }} after {time.monotonic() - killed:.1f}s")

    def refused() -> bool:
        document = regions[SECONDARY].call(CHECKOUT, checkout_input("e2e-up-during-loss"))
        errors = document.get("errors") or []
        return bool(errors) and errors[0].get("errorType") == "ReadOnlyRegion"

    eventually(refused, 5, "the secondary refuses writes with ReadOnlyRegion")
    print(f"primary loss: read-only after {time.monotonic() - killed:.1f}s")
    # Reads are still served.
    assert regions[SECONDARY].data(PRODUCT, {"id": "p-0042"})["product"]["id"] == "p-0042"


def test_promoting_the_secondary_accepts_writes(up: Up, regions: dict[str, Region]) -> None:
    began = time.monotonic()
    print(up.regions("promote", SECONDARY).strip())
    order_id = place(regions[SECONDARY], "e2e-up-after-promotion")["id"]
    print(f"promote → first write accepted: {time.monotonic() - began:.1f}s")
    eventually(lambda: order_in(regions[SECONDARY], order_id, "CONFIRMED"), 60, "confirmed")
    status = up.status()
    assert status["primary"] == SECONDARY and status["epoch"] == 2
    assert status["regions"][SECONDARY]["role"] == "primary"
    assert up.topology["primary"] == SECONDARY
    region = regions[SECONDARY].data(REGION)["region"]
    assert region["primaryRegion"] == SECONDARY and region["epoch"] == 2
    assert region["readOnly"] is False
    # Catalog writes too, at once: the promoted region's API was not restarted.
    written = upsert(regions[SECONDARY], "E2E-UP-PROMOTED")
    eventually(
        lambda: product_named(regions[SECONDARY], written["id"], written["name"]),
        30,
        "the catalog write in the new primary",
    )
    # The order the lost primary left in flight is re-driven here and ends final, its
    # compensations done: the reserved stock is back.
    order_id, stock = up.in_flight
    eventually(lambda: order_in(regions[SECONDARY], order_id, "FAILED"), 120, "in-flight final")
    eventually(
        lambda: (
            regions[SECONDARY].data(PRODUCT, {"id": IN_FLIGHT_PRODUCT})["product"]["available"]
            == stock
        ),
        30,
        "its stock released",
    )


def test_the_old_primary_returns_fenced_and_resynchronized(
    up: Up, regions: dict[str, Region]
) -> None:
    started = time.monotonic()
    print(up.regions("start", PRIMARY).strip())
    print(f"old primary back and serving after {time.monotonic() - started:.1f}s")
    old = regions[PRIMARY]
    # It knows the newer epoch and that it is not the primary any more.
    region = eventually(
        lambda: (r := old.data(REGION)["region"])["epoch"] == 2 and r, 30, "epoch 2 seen"
    )
    assert region["primaryRegion"] == SECONDARY
    assert up.status()["regions"][PRIMARY]["role"] == "secondary"
    # It rejoined as a secondary that reaches the new primary: it can write (through it).
    eventually(lambda: not old.data(REGION)["region"]["readOnly"], 10, "writable again")
    # Its writes go to the new primary; nothing runs in its own region.
    placed = place(old, "e2e-up-through-old-primary")
    for region_client in regions.values():
        eventually(
            lambda r=region_client: order_in(r, placed["id"], "CONFIRMED"),  # type: ignore[misc]
            60,
            f"{placed['id']} confirmed in {region_client.name}",
        )
    # Resynchronized: the same orders and stock in both regions.
    for key in ("e2e-up-forwarded", "e2e-up-before-loss", "e2e-up-after-promotion"):
        order_id = place(regions[SECONDARY], key)["id"]
        same = [regions[name].data(ORDER, {"id": order_id})["order"] for name in REGIONS]
        assert same[0] == same[1], same
    eventually(
        lambda: (
            old.data(PRODUCT, {"id": "p-0042"})
            == regions[SECONDARY].data(PRODUCT, {"id": "p-0042"})
        ),
        30,
        "the same stock in both regions",
    )
