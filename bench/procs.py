"""Processes and CPU accounting for bench/read_path.py: start servers pinned to a core, stop
them (always, in reverse order), read CPU ticks from /proc, run wrk and collect its figures."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- processes -----------------------------------------------------------------------------


class Processes(contextlib.ExitStack):
    """Every process started here is stopped when the `with` block ends, whatever happens
    (exception, Ctrl-C), last started first. Servers get their own session, so a Ctrl-C in the
    terminal reaches only this script, which then stops them in order."""

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log: Path,
        cpu: int | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        stop_signal: int = signal.SIGTERM,
        stop_timeout: float = 20.0,
    ) -> subprocess.Popen[bytes]:
        command = [*(["taskset", "-c", str(cpu)] if cpu is not None else []), *argv]
        with log.open("ab") as out:
            process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )
        self.callback(stop_process, process, name, stop_signal, stop_timeout)
        return process


def stop_process(
    process: subprocess.Popen[bytes],
    name: str,
    stop_signal: int = signal.SIGTERM,
    timeout: float = 20.0,
) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(stop_signal)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"# {name} (pid {process.pid}) did not stop in {timeout:.0f}s: killing it")
        process.kill()
        process.wait()


def stop_pid(pid: int, name: str, stop_signal: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    """Stop a process this benchmark started indirectly (a server's child), by its id."""
    try:
        proc = psutil.Process(pid)
        proc.send_signal(stop_signal)
        proc.wait(timeout=timeout)
    except psutil.NoSuchProcess:
        return
    except psutil.TimeoutExpired:
        print(f"# {name} (pid {pid}) did not stop in {timeout:.0f}s: killing it")
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()


def pin_threads(pid: int, cpus: set[int]) -> None:
    """sched_setaffinity on a pid moves only its main thread: move every thread."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError, FileNotFoundError):
            os.sched_setaffinity(int(tid), cpus)


def child_with(pid: int, marker: str) -> int | None:
    """The pid of a descendant of `pid` whose command line contains `marker`."""
    with contextlib.suppress(psutil.NoSuchProcess):
        for child in psutil.Process(pid).children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                if marker in " ".join(child.cmdline()):
                    return int(child.pid)
    return None


def wait_for_line(log: Path, text: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        if process.poll() is not None:
            raise RuntimeError(
                f"exited with {process.returncode} before printing {text!r}; "
                f"log {log}:\n{tail(log)}"
            )
        time.sleep(0.2)
    raise RuntimeError(f"did not print {text!r} within {timeout:.0f}s; log {log}:\n{tail(log)}")


def tail(path: Path, lines: int = 15) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


# --- HTTP ----------------------------------------------------------------------------------


def post(url: str, body: str, api_key: str, timeout: float = 10.0) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url,
        data=body.encode(),
        method="POST",
        headers={"content-type": "application/json", "x-api-key": api_key},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()


def wait_http(
    url: str, api_key: str, process: subprocess.Popen[bytes], log: Path, timeout: float
) -> None:
    """Until the server answers anything at all over HTTP."""
    deadline = time.monotonic() + timeout
    body = json.dumps({"query": "{ __typename }"})
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}; log {log}:\n{tail(log)}")
        try:
            post(url, body, api_key, timeout=2)
            return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s; log {log}:\n{tail(log)}")


# --- CPU accounting ------------------------------------------------------------------------


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads, live and dead), from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5)


def cores_busy_seconds() -> dict[int, tuple[float, float]]:
    """Per core: (busy, total) seconds since boot, from /proc/stat."""
    cores: dict[int, tuple[float, float]] = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if not re.fullmatch(r"cpu\d+", name):
            continue
        user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in values[:8])
        busy = user + nice + system + irq + softirq + steal
        cores[int(name[3:])] = (busy / CLK_TCK, (busy + idle + iowait) / CLK_TCK)
    return cores


@dataclass(frozen=True)
class CpuSnapshot:
    at: float
    processes: dict[str, float]
    cores: dict[int, tuple[float, float]]

    @classmethod
    def take(cls, pids: Mapping[str, int]) -> CpuSnapshot:
        return cls(
            time.monotonic(),
            {n: process_cpu_seconds(p) for n, p in pids.items()},
            cores_busy_seconds(),
        )


@dataclass(frozen=True)
class CpuUsage:
    seconds: float  # wall clock
    processes: dict[str, float]  # CPU seconds per named process
    cores_busy: dict[int, float]  # fraction of each core that was busy (anyone's work)

    @classmethod
    def between(cls, before: CpuSnapshot, after: CpuSnapshot) -> CpuUsage:
        cores: dict[int, float] = {}
        for core, (busy1, total1) in after.cores.items():
            busy0, total0 = before.cores.get(core, (busy1, total1))
            cores[core] = (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0
        return cls(
            after.at - before.at,
            {n: after.processes[n] - before.processes[n] for n in after.processes},
            cores,
        )

    def percent(self, name: str) -> float:
        return 100.0 * self.processes.get(name, 0.0) / self.seconds if self.seconds else 0.0


# --- wrk -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrkResult:
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    non2xx: int
    sockerr: int
    gql_errors: int  # HTTP 200 responses whose body carries "errors"
    cpu_seconds: float  # wrk's own CPU time (it shares core 1 with moto and py-spy)
    first_error: str = ""  # the start of the first such body

    @property
    def errors(self) -> int:
        return self.non2xx + self.sockerr + self.gql_errors


def run_wrk(
    url: str,
    body: str,
    api_key: str,
    *,
    script: Path,
    duration: float,
    connections: int,
    cpu: int,
    log: Path,
) -> WrkResult:
    argv = [
        "taskset",
        "-c",
        str(cpu),
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration:g}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    env = {**os.environ, "WRK_BODY": body, "API_KEY": api_key}
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:
            process.kill()
            process.wait()
            raise
        process.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text(errors="replace")
    match = re.search(r"^RESULT (.*)$", text, re.MULTILINE)
    if process.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed (exit {process.returncode}):\n{text}")
    values = dict(item.split("=", 1) for item in match.group(1).split())
    sample = re.search(r"^FIRST_ERROR (.*)$", text, re.MULTILINE)
    return WrkResult(
        rps=float(values["rps"]),
        p50_ms=float(values["p50_ms"]),
        p90_ms=float(values["p90_ms"]),
        p99_ms=float(values["p99_ms"]),
        max_ms=float(values["max_ms"]),
        requests=int(values["requests"]),
        non2xx=int(values["non2xx"]),
        sockerr=int(values["sockerr"]),
        gql_errors=int(values["gqlerr"]),
        first_error=sample.group(1) if sample else "",
        cpu_seconds=usage.ru_utime + usage.ru_stime,
    )


@contextlib.contextmanager
def unwind_on_signals() -> Iterator[None]:
    """Let SIGTERM and SIGHUP unwind like Ctrl-C does, so every server is stopped; and make
    SIGINT raise KeyboardInterrupt even when the shell started us with it ignored (`cmd &`)."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def find_pyspy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    if beside.exists():
        return str(beside)
    found = shutil.which("py-spy")
    if found:
        return found
    print("# py-spy is missing: pip install py-spy")
    result = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "py-spy"], check=False)
    return str(beside) if result.returncode == 0 and beside.exists() else None


def serve_env(**extra: str) -> dict[str, str]:
    """The environment a benchmark's `hemisphere serve` runs with: the embedded stack (serve
    starts moto itself only without AWS_ENDPOINT_URL, and writes <data-dir>/api-key only
    when no key is configured), unbuffered output, and `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("AWS_ENDPOINT_URL", "HEMISPHERE_API_KEYS", "HEMISPHERE_DATA_DIR")
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def hemisphere_argv(*args: str) -> list[str]:
    """The `hemisphere` command of this venv (its module when the script is missing)."""
    exe = Path(sys.executable).with_name("hemisphere")
    return [str(exe), *args] if exe.exists() else [sys.executable, "-m", "hemisphere.cli", *args]
