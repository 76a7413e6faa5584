"""`hemisphere serve` as a container runtime and a careless user treat it: SIGTERM to its PID
alone, SIGKILL, a second serve on the same data directory or port, a killed child."""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from gql import gql

from hemisphere.localstack import free_port
from tests.e2e.test_serve import Served, iam_client, start_serve
from tests.support.roles import clean_env, start_role

pytestmark = pytest.mark.e2e


@pytest.fixture
def own_tmp() -> Iterator[Path]:
    """A directory outside pytest's base temp: concurrent pytest runs on this machine prune
    each other's older base temps, which would pull the data from under a running server."""
    with tempfile.TemporaryDirectory(prefix="hemisphere-test-") as tmp:
        yield Path(tmp)


# Found without importing pgserver (its import warns about XDG_RUNTIME_DIR).
_PGSERVER = importlib.util.find_spec("pgserver")
assert _PGSERVER is not None and _PGSERVER.submodule_search_locations
PG_CONTROLDATA = Path(_PGSERVER.submodule_search_locations[0]) / "pginstall/bin/pg_controldata"


def family(served: Served) -> list[psutil.Process]:
    children: list[psutil.Process] = psutil.Process(served.process.pid).children(recursive=True)
    return children


def processes_of(data_dir: Path) -> list[str]:
    """Every live process whose command line names `data_dir` (the embedded PostgreSQL)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(proc.info["cmdline"] or ())
        if str(data_dir.resolve()) in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(cmdline)
    return found


def wait_gone(processes: list[psutil.Process], timeout: float = 15) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    return [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]


def cluster_state(data_dir: Path) -> str:
    out = subprocess.run(
        [str(PG_CONTROLDATA), str(data_dir / "postgres")], capture_output=True, text=True
    ).stdout
    return next(
        line.split(":", 1)[1].strip() for line in out.splitlines() if "cluster state" in line
    )


def upsert(served: Served, sku: str) -> None:
    iam_client(served).execute(
        gql(
            f'mutation {{ upsertProduct(input: {{sku: "{sku}", name: "{sku}", category: "garden",'
            ' price: {amount: 100, currency: "USD"}, available: 1}) { id } }'
        )
    )


def garden_skus(served: Served) -> set[str]:
    answer = httpx.post(
        served.url,
        headers={"x-api-key": served.api_key},
        json={"query": '{ products(category: "garden", limit: 100) { items { sku } } }'},
        timeout=10,
    ).json()
    return {p["sku"] for p in answer["data"]["products"]["items"]}


def readyz(served: Served) -> httpx.Response:
    try:
        return httpx.get(f"http://127.0.0.1:{served.port}/readyz", timeout=5)
    except httpx.ConnectError:
        raise AssertionError("serve is gone:\n" + "".join(served.output)) from None


def test_sigterm_to_the_serve_pid_alone_leaves_nothing_and_a_clean_cluster(own_tmp: Path) -> None:
    served = start_serve(own_tmp / "data")
    children = family(served)
    assert len(children) >= 3  # PostgreSQL (and its own workers), moto, the card simulator
    upsert(served, "TERM-1")
    started = time.monotonic()
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=20) == 0
    assert time.monotonic() - started < 10  # HEMISPHERE_SHUTDOWN_TIMEOUT's default
    assert wait_gone(children, timeout=1) == []
    assert processes_of(served.data_dir) == []
    assert cluster_state(served.data_dir) == "shut down"
    assert "Traceback" not in "".join(served.output)

    again = start_serve(served.data_dir)
    try:
        assert "TERM-1" in garden_skus(again)
        assert (
            "database system was interrupted" not in (served.data_dir / "postgres/log").read_text()
        )
    finally:
        assert again.stop() == 0


def test_sigkill_of_serve_takes_its_children_with_it(own_tmp: Path) -> None:
    served = start_serve(own_tmp / "data")
    children = family(served)
    served.process.kill()
    served.process.wait(timeout=10)
    assert wait_gone(children, timeout=15) == []
    assert processes_of(served.data_dir) == []
    # PostgreSQL got SIGINT from the kernel when its parent died: a fast, clean shutdown.
    assert cluster_state(served.data_dir) == "shut down"


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with tempfile.TemporaryDirectory(prefix="hemisphere-test-") as tmp:
        server = start_serve(Path(tmp) / "data")
        try:
            yield server
        finally:
            if server.process.poll() is None:
                server.stop()


def test_a_second_serve_on_the_same_data_dir_is_refused_naming_the_first(served: Served) -> None:
    second = start_role(
        ["serve", "--data-dir", str(served.data_dir)], clean_env(), port=free_port()
    )
    assert second.wait_exit(timeout=30) == 1
    assert second.text.strip().splitlines() == [
        f"hemisphere: {served.data_dir} is in use by another hemisphere serve "
        f"(pid {served.process.pid}); stop it or choose another --data-dir"
    ]


def test_a_serve_on_a_taken_port_is_refused_before_starting_anything(
    served: Served, tmp_path: Path
) -> None:
    second = start_role(
        ["serve", "--data-dir", str(tmp_path / "other")], clean_env(), port=served.port
    )
    assert second.wait_exit(timeout=30) == 1
    lines = second.text.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"hemisphere: port {served.port} on 127.0.0.1 is already in use")
    assert f"pid {served.process.pid}" in lines[0]
    assert not (tmp_path / "other" / "postgres").exists()


def test_a_killed_local_aws_endpoint_fails_readiness_then_is_restarted_and_rebuilt(
    served: Served,
) -> None:
    moto = next(p for p in family(served) if "moto.server" in " ".join(p.cmdline()))
    port = moto.cmdline()[moto.cmdline().index("-p") + 1]
    assert readyz(served).status_code == 200
    moto.kill()

    # Another check (the table's, read through the dead endpoint) may fail first on a busy
    # machine: wait for the one that names the child.
    deadline = time.monotonic() + 10
    while (answer := readyz(served)).status_code == 200 or (
        answer.json()["checks"].get("local-aws") == "ok"
    ):
        assert time.monotonic() < deadline, "readiness never noticed the dead child"
        time.sleep(0.1)
    assert answer.status_code == 503
    upsert(served, "DURING-OUTAGE")  # PostgreSQL took it; the projection follows the restart

    deadline = time.monotonic() + 90
    while readyz(served).status_code != 200:
        assert time.monotonic() < deadline, readyz(served).json()
        time.sleep(0.5)
    restarted = next(p for p in family(served) if "moto.server" in " ".join(p.cmdline()))
    assert restarted.pid != moto.pid and port in restarted.cmdline()

    product = httpx.post(
        served.url,
        headers={"x-api-key": served.api_key},
        json={"query": '{ product(id: "p-0001") { id } }'},
        timeout=10,
    ).json()
    assert product == {"data": {"product": {"id": "p-0001"}}}
    upsert(served, "AFTER-OUTAGE")
    deadline = time.monotonic() + 15
    while not {"DURING-OUTAGE", "AFTER-OUTAGE"} <= garden_skus(served):
        assert time.monotonic() < deadline, garden_skus(served)
        time.sleep(0.3)
    log = "".join(served.output)
    assert log.count("stopped unexpectedly (killed by SIGKILL)") == 1
    assert "is back" in log


def test_a_killed_embedded_postgres_is_restarted_on_its_data(served: Served) -> None:
    postmaster = next(p for p in family(served) if p.name() == "postgres" and "-D" in p.cmdline())
    assert readyz(served).status_code == 200
    postmaster.kill()

    # On a quiet machine the supervisor restarts PostgreSQL before the next readiness check
    # (every 2 s) runs, so a failed /readyz is not always observable: the log is.
    deadline = time.monotonic() + 30
    while "the embedded PostgreSQL is back" not in "".join(served.output):
        answer = readyz(served)
        if answer.status_code != 200:
            assert answer.json()["checks"]["embedded-postgres"] != "ok"
        assert time.monotonic() < deadline, "the supervisor never brought PostgreSQL back"
        time.sleep(0.1)

    deadline = time.monotonic() + 90
    while readyz(served).status_code != 200:
        assert time.monotonic() < deadline, readyz(served).json()
        time.sleep(0.5)
    upsert(served, "AFTER-PG-RESTART")  # the pool reconnected to the restarted server
    deadline = time.monotonic() + 15
    while "AFTER-PG-RESTART" not in garden_skus(served):
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert "the embedded PostgreSQL (pid" in "".join(served.output)
