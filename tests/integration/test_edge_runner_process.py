"""`python -m regions.edge_runner` as `hemisphere up` runs it: the ready line, health
transitions on stderr, one-line errors, and no life after its parent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from hemisphere.localstack import free_port

pytestmark = pytest.mark.integration


def _spec(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "edges.json"
    path.write_text(json.dumps(document))
    return path


def test_serves_reports_ready_and_stops_on_sigterm(tmp_path: Path) -> None:
    # The only region is down: the edge still starts, reports it, and answers 503.
    port = free_port()
    spec = _spec(
        tmp_path,
        {
            "latency": "global",
            "regions": {"us-east-1": f"http://127.0.0.1:{free_port()}/graphql"},
            "edges": [{"location": "us-east-1", "listen": f"127.0.0.1:{port}"}],
        },
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "regions.edge_runner", "--spec", str(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        assert ready == {"ready": [{"location": "us-east-1", "listen": f"127.0.0.1:{port}"}]}
        response = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": "{ x }"})
        assert response.status_code == 503
        status = httpx.get(f"http://127.0.0.1:{port}/edge/status").json()
        assert status["choice"] is None
        assert status["regions"]["us-east-1"]["healthy"] is False
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        process.kill()
        process.wait()


def test_a_bad_spec_is_one_line_and_exit_2(tmp_path: Path) -> None:
    spec = _spec(tmp_path, {"regions": {"a": "http://127.0.0.1:1"}, "edges": [], "latency": "x"})
    result = subprocess.run(
        [sys.executable, "-m", "regions.edge_runner", "--spec", str(spec)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "neither a preset" in result.stderr


def test_an_unknown_latency_pair_is_refused_at_start(tmp_path: Path) -> None:
    spec = _spec(
        tmp_path,
        {
            "latency": "global",
            "regions": {"us-west-2": "http://127.0.0.1:1"},
            "edges": [{"location": "us-east-1", "listen": "127.0.0.1:0"}],
        },
    )
    result = subprocess.run(
        [sys.executable, "-m", "regions.edge_runner", "--spec", str(spec)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "us-east-1↔us-west-2" in result.stderr


def test_a_taken_port_is_one_line_and_exit_1(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        spec = _spec(
            tmp_path,
            {
                "regions": {"a": "http://127.0.0.1:1"},
                "edges": [{"location": "a", "listen": f"127.0.0.1:{port}"}],
            },
        )
        result = subprocess.run(
            [sys.executable, "-m", "regions.edge_runner", "--spec", str(spec)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_dies_with_its_parent(tmp_path: Path) -> None:
    spec = _spec(
        tmp_path,
        {
            "regions": {"a": "http://127.0.0.1:1"},
            "edges": [{"location": "a", "listen": "127.0.0.1:0"}],
        },
    )
    parent_code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-m', 'regions.edge_runner', '--spec', "
        f"{str(spec)!r}], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)\n"
        "print(child.pid, flush=True)\n"
        "print(child.stdout.readline(), end='', flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    assert "ready" in json.loads(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _alive(child_pid):
        time.sleep(0.1)
    assert not _alive(child_pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False
