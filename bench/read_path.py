"""Read-path benchmark: Hemisphere against four baselines, side by side, in one run.

    .venv/bin/python bench/read_path.py [--duration 10] [--runs 1] [--concurrency 32]
        [--queries product,products50] [--skip-peer] [--skip-mercurius] [--json OUT]

Targets, all on 127.0.0.1, each server pinned to core 0 and the load generator (wrk, one
thread) to core 1:

1. `hemisphere`: `hemisphere serve` on its embedded local stack (PostgreSQL unless
   DATABASE_URL is set, and a moto server child process, re-pinned to core 1 with wrk);
2. `strawberry`: a plain Strawberry app with default settings serving the same products from
   memory (bench/baseline_apps.py);
3. `starlette`: a bare Starlette endpoint returning the precomputed response bytes (the
   ceiling);
4. `peer`: amplify-appsync-simulator serving the contract (../shared/peers/appsync-sim beside
   this repository, or $PEER_DIR);
5. `mercurius`: Node, Fastify + mercurius with graphql-jit serving the same products from
   memory (bench/peers/mercurius_jit.js), byte for byte Hemisphere's answers.

For each query, the targets are interleaved (each warmed up, then measured) so that drift
affects all of them alike; then Hemisphere is loaded once more under py-spy to split its CPU
time per request between GraphQL, the store client, the HTTP server and the rest. See
bench/README.md for how to read the output.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from cpu_split import (
    CATEGORY_LABELS,
    MAIN_CATEGORIES,
    REST_CATEGORIES,
    Classifier,
    Split,
    split_cprofile,
    split_pyspy,
    top,
)
from procs import (
    CpuSnapshot,
    CpuUsage,
    Processes,
    WrkResult,
    child_with,
    find_pyspy,
    free_port,
    hemisphere_argv,
    pin_threads,
    post,
    run_wrk,
    serve_env,
    stop_pid,
    stop_process,
    tail,
    unwind_on_signals,
    wait_for_line,
    wait_http,
)

from hemisphere.localstack import MotoServer

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WRK_SCRIPT = BENCH / "post.lua"
# The peers live beside the repository (../shared/peers), wherever it is checked out (#9).
PEER_DIR = Path(os.environ.get("PEER_DIR") or REPO.parent / "shared" / "peers" / "appsync-sim")
PEER_SCHEMA = PEER_DIR.parent.parent / "contract" / "appsync-schema.graphql"
PEER_MODULES = Path(
    os.environ.get("PEER_MODULES")
    or Path(os.environ.get("TMPDIR", "/tmp")) / "hemisphere-peer-appsync-sim"
)
PEER_API_KEY = "da2-barsbarsbarsbarsbarsbars"
# The Node baseline is ours (bench/peers); its node_modules, like the peer's, never go into
# the repository: `npm ci` of its package-lock.json into a cache directory.
MERCURIUS_DIR = BENCH / "peers"
MERCURIUS_APP = MERCURIUS_DIR / "mercurius_jit.js"
MERCURIUS_MODULES = Path(
    os.environ.get("MERCURIUS_MODULES")
    or Path(os.environ.get("TMPDIR", "/tmp")) / "hemisphere-peer-mercurius"
)
MERCURIUS_PACKAGES = ("mercurius", "graphql-jit", "graphql", "fastify")
SERVER_CPU, LOAD_CPU = 0, 1
BANNER = "Press Ctrl-C to stop."
SEEDED_PRODUCTS = 240

QUERIES: dict[str, str] = {
    "product": 'query { product(id:"p-0001") { id name price { amount currency } } }',
    "products50": "query { products(limit: 50) { items { id name category "
    "price { amount currency } available } nextToken } }",
}
CATALOG_QUERY = (
    "query($t: String) { products(limit: 100, nextToken: $t) { items { id sku name description "
    "category price { amount currency } available updatedAt version } nextToken } }"
)
TARGETS: dict[str, str] = {
    "hemisphere": "Hemisphere serve",
    "strawberry": "Strawberry default",
    "starlette": "bare Starlette",
    "peer": "appsync-sim (node)",
    "mercurius": "mercurius-jit (node)",
}
LABEL_WIDTH = max(len(label) for label in TARGETS.values())


def body_of(query: str) -> str:
    """The JSON body, byte for byte the one the peer's bench.sh sends."""
    return json.dumps({"query": QUERIES[query]}, separators=(",", ":"))


# --- what a run is made of ----------------------------------------------------------------


@dataclass
class Target:
    key: str
    url: str
    api_key: str
    pid: int  # the server process, on SERVER_CPU
    helpers: dict[str, int] = field(default_factory=dict)  # its other processes, on LOAD_CPU
    response_bytes: dict[str, int] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return TARGETS[self.key]

    def pids(self) -> dict[str, int]:
        return {"server": self.pid, **self.helpers}


@dataclass
class Measurement:
    target: str
    query: str
    run: int
    wrk: WrkResult
    cpu: CpuUsage

    def cpu_ms_per_request(self, process: str = "server") -> float:
        used = self.cpu.processes.get(process, 0.0)
        return 1000.0 * used / self.wrk.requests if self.wrk.requests else float("nan")


@dataclass
class Profile:
    query: str
    profiler: str
    split: Split
    wrk: WrkResult
    cpu: CpuUsage
    rate: int

    def cpu_ms_per_request(self) -> float:
        used = self.cpu.processes["server"]
        return 1000.0 * used / self.wrk.requests if self.wrk.requests else float("nan")


class BenchError(RuntimeError):
    pass


# --- tools ---------------------------------------------------------------------------------


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    print("# wrk is missing: apt-get install -y wrk (as the peer's bench.sh does)")
    subprocess.run(["apt-get", "update"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, stdout=subprocess.DEVNULL)


def pyspy_can_attach(pyspy: str) -> bool:
    """Try on a throw-away child first: containers often forbid ptrace."""
    dummy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.3)
        probe = subprocess.run(
            [pyspy, "dump", "--pid", str(dummy.pid)], capture_output=True, timeout=20, check=False
        )
        return probe.returncode == 0
    except subprocess.TimeoutExpired:
        return False
    finally:
        stop_process(dummy, "py-spy probe")


def choose_profiler(wanted: str) -> tuple[str, str | None]:
    """("py-spy", path) | ("cprofile", None) | ("none", None)."""
    if wanted in ("none", "cprofile"):
        return wanted, None
    pyspy = find_pyspy()
    if pyspy is not None and pyspy_can_attach(pyspy):
        return "py-spy", pyspy
    if wanted == "py-spy":
        raise BenchError("py-spy cannot attach to a process here (ptrace refused?)")
    print("# py-spy cannot attach here: falling back to cProfile inside `hemisphere serve`")
    return "cprofile", None


def ensure_peer_modules() -> None:
    """node_modules in a writable cache outside the (read-only) peer folder, as bench.sh."""
    if (PEER_MODULES / "node_modules" / "amplify-appsync-simulator").is_dir():
        return
    print(f"# installing the peer's node_modules into {PEER_MODULES} (npm ci)")
    PEER_MODULES.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(PEER_DIR / name, PEER_MODULES / name)
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=PEER_MODULES, check=True)


def ensure_mercurius_modules() -> bool:
    """node_modules for bench/peers in MERCURIUS_MODULES, as package-lock.json pins them
    (installed again when the lock changed). False, said aloud, when node or npm is missing
    or the install fails: the run goes on without this target."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        print(f"# {' and '.join(missing)} not found: mercurius-jit (node) is left out")
        return False
    lock = MERCURIUS_DIR / "package-lock.json"
    installed = MERCURIUS_MODULES / "package-lock.json"
    if (
        installed.exists()
        and installed.read_bytes() == lock.read_bytes()
        and (MERCURIUS_MODULES / "node_modules" / "mercurius").is_dir()
    ):
        return True
    print(f"# installing mercurius-jit's node_modules into {MERCURIUS_MODULES} (npm ci)")
    MERCURIUS_MODULES.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(MERCURIUS_DIR / name, MERCURIUS_MODULES / name)
    result = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"], cwd=MERCURIUS_MODULES, check=False
    )
    if result.returncode != 0:
        # A copied lock without its modules must not pass for an install next time.
        installed.unlink(missing_ok=True)
        print(f"# npm ci failed (exit {result.returncode}): mercurius-jit (node) is left out")
        return False
    return True


# --- starting the targets ------------------------------------------------------------------


def start_hemisphere(procs: Processes, workdir: Path, profiler: str, endpoint: str) -> Target:
    """`endpoint`: embedded (serve's defaults: it starts its own moto and, without
    DATABASE_URL, its own PostgreSQL) or external (the configuration of a deployment: serve
    is handed an AWS endpoint it did not start, here a moto server of ours, and the
    DATABASE_URL and REDIS_URL of the environment)."""
    data_dir = workdir / "hemisphere"
    log = workdir / "hemisphere.log"
    port = free_port()
    # The embedded stack: serve starts moto itself only when AWS_ENDPOINT_URL is unset, and
    # writes <data-dir>/api-key only when no key is configured.
    env = serve_env()
    external_moto = None
    if endpoint == "external":
        if "DATABASE_URL" not in env:
            raise BenchError(
                "--endpoint external needs DATABASE_URL (a PostgreSQL serve did not start)"
            )
        # As the stack starts it (state machines executing, MOTO_PORT for their callbacks).
        external_moto = MotoServer()
        external_moto.start()
        procs.callback(external_moto.stop)
        env.update(
            AWS_ENDPOINT_URL=external_moto.url,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            # A table of its own: the database and Redis may be shared with other runs.
            HEMISPHERE_TABLE=f"bench-read-path-{port}",
        )
    serve_args = ["serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir)]
    if profiler == "cprofile":
        argv = [sys.executable, str(BENCH / "cprofile_serve.py"), str(workdir), *serve_args]
    else:
        argv = hemisphere_argv(*serve_args)

    leftovers: dict[str, int] = {}
    # Registered first, so it runs after serve has stopped (or failed to stop) its children.
    procs.callback(stop_leftovers, leftovers, data_dir, "DATABASE_URL" not in env)
    print(f"# starting hemisphere serve on :{port} (data in {data_dir}) ...", flush=True)
    process = procs.start(
        "hemisphere serve",
        argv,
        log=log,
        cpu=SERVER_CPU,
        env=env,
        cwd=REPO,
        stop_signal=signal.SIGINT,
        stop_timeout=60,
    )
    wait_for_line(log, BANNER, process, timeout=240)
    if external_moto is not None:
        moto = external_moto.pid
        assert moto is not None  # started above
    else:
        moto = child_with(process.pid, "moto.server")
        if moto is None:
            raise BenchError(f"no moto server child of hemisphere serve (pid {process.pid})")
        leftovers["moto"] = moto
    pin_threads(moto, {LOAD_CPU})
    api_key = (data_dir / "api-key").read_text().strip()
    url = f"http://127.0.0.1:{port}/graphql"
    wait_http(url, api_key, process, log, timeout=30)
    return Target("hemisphere", url, api_key, process.pid, helpers={"moto": moto})


def stop_leftovers(leftovers: dict[str, int], data_dir: Path, embedded_postgres: bool) -> None:
    """serve stops moto and its PostgreSQL on a clean exit; make sure of it."""
    if "moto" in leftovers:
        stop_pid(leftovers["moto"], "moto server")
    pidfile = data_dir / "postgres" / "postmaster.pid"
    if embedded_postgres and pidfile.exists():
        first = pidfile.read_text().split("\n", 1)[0].strip()
        if first.isdigit():
            stop_pid(int(first), "embedded PostgreSQL", signal.SIGINT, timeout=20)


def start_peer(procs: Processes, workdir: Path) -> tuple[Target, Callable[[], None]]:
    ensure_peer_modules()
    port = free_port()
    log = workdir / "appsync-sim.log"
    env = {**os.environ, "NODE_PATH": str(PEER_MODULES / "node_modules")}
    print(f"# starting appsync-sim on :{port} ...", flush=True)
    process = procs.start(
        "appsync-sim",
        ["node", str(PEER_DIR / "sim.js"), str(port), str(PEER_SCHEMA)],
        log=log,
        cpu=SERVER_CPU,
        env=env,
        cwd=PEER_MODULES,
    )
    url = f"http://127.0.0.1:{port}/graphql"
    target = Target("peer", url, PEER_API_KEY, process.pid)
    return target, lambda: wait_http(url, PEER_API_KEY, process, log, timeout=60)


def start_mercurius(
    procs: Processes, workdir: Path, data: Path
) -> tuple[Target, Callable[[], None]]:
    """bench/peers/mercurius_jit.js on the products of `data`; wait with the callable."""
    port = free_port()
    log = workdir / "mercurius-jit.log"
    env = {**os.environ, "NODE_PATH": str(MERCURIUS_MODULES / "node_modules")}
    print(f"# starting mercurius-jit on :{port} ...", flush=True)
    process = procs.start(
        "mercurius-jit",
        ["node", str(MERCURIUS_APP), str(port), str(data)],
        log=log,
        cpu=SERVER_CPU,
        env=env,
        cwd=MERCURIUS_MODULES,
    )
    url = f"http://127.0.0.1:{port}/graphql"
    target = Target("mercurius", url, "", process.pid)
    return target, lambda: wait_http(url, "", process, log, timeout=60)


def start_baseline(procs: Processes, workdir: Path, app: str, data: Path, loop: str) -> Target:
    port = free_port()
    log = workdir / f"{app}.log"
    argv = [
        sys.executable,
        str(BENCH / "baseline_apps.py"),
        app,
        "--port",
        str(port),
        "--data",
        str(data),
        "--loop",
        loop,
    ]
    print(f"# starting the {app} baseline on :{port} ...", flush=True)
    process = procs.start(app, argv, log=log, cpu=SERVER_CPU, cwd=REPO)
    url = f"http://127.0.0.1:{port}/graphql"
    wait_http(url, "", process, log, timeout=60)
    return Target(app, url, "", process.pid)


# --- data and checks -----------------------------------------------------------------------


def graphql(target: Target, body: str) -> tuple[dict[str, Any], bytes]:
    """The response document (HTTP 200, `data`, no `errors`) and its bytes."""
    status, raw = post(target.url, body, target.api_key)
    try:
        doc: dict[str, Any] = json.loads(raw)
    except ValueError as exc:
        raise BenchError(f"{target.label}: HTTP {status}, not JSON: {raw[:300]!r}") from exc
    if status != 200 or doc.get("errors") or not isinstance(doc.get("data"), dict):
        raise BenchError(f"{target.label}: HTTP {status}: {raw[:500]!r}")
    return doc, raw


def fetch_catalog(hemisphere: Target) -> list[dict[str, Any]]:
    """Every product, read once from the running Hemisphere, page by page."""
    products: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        body = json.dumps({"query": CATALOG_QUERY, "variables": {"t": token}})
        page = graphql(hemisphere, body)[0]["data"]["products"]
        products.extend(page["items"])
        token = page["nextToken"]
        if not token or not page["items"]:
            return products


def check_response(target: Target, query: str) -> tuple[dict[str, Any], bytes]:
    """data present, no errors, the right item; 50 items for products50. The document and
    the response's bytes."""
    doc, raw = graphql(target, body_of(query))
    target.response_bytes[query] = len(raw)
    data = doc["data"]
    if query == "product":
        product = data.get("product")
        if not isinstance(product, dict) or product.get("id") != "p-0001":
            raise BenchError(f"{target.label}: product(p-0001) came back as {product!r}")
    else:
        items = (data.get("products") or {}).get("items")
        if not isinstance(items, list) or len(items) != 50:
            count = len(items) if isinstance(items, list) else items
            raise BenchError(f"{target.label}: products(limit: 50) returned {count} items")
    return doc, raw


def check_same_bytes(target: Target, query: str, raw: bytes, reference: bytes) -> None:
    """A baseline must send Hemisphere's very bytes: same data, same key order, same
    nextToken, same JSON spacing; otherwise its req/s would be for another response."""
    if raw == reference:
        return
    at = next(
        (i for i, (a, b) in enumerate(zip(raw, reference, strict=False)) if a != b),
        min(len(raw), len(reference)),
    )
    start = max(0, at - 60)
    raise BenchError(
        f"{target.label} answers {query} with other bytes than Hemisphere "
        f"({len(raw)} vs {len(reference)} bytes; first difference at byte {at}):\n"
        f"  {target.label}: {raw[start : at + 60]!r}\n"
        f"  Hemisphere: {reference[start : at + 60]!r}"
    )


# --- measuring -----------------------------------------------------------------------------


def load(
    target: Target, query: str, args: argparse.Namespace, duration: float, log: Path
) -> WrkResult:
    """wrk on LOAD_CPU, one thread, `args.concurrency` connections, against `target`."""
    return run_wrk(
        target.url,
        body_of(query),
        target.api_key,
        script=WRK_SCRIPT,
        duration=duration,
        connections=args.concurrency,
        cpu=LOAD_CPU,
        log=log,
    )


def measure(
    target: Target,
    query: str,
    run: int,
    args: argparse.Namespace,
    workdir: Path,
    idle: Sequence[Target],
) -> Measurement:
    """Warm up, then measure `target`; the CPU of the `idle` targets is recorded too, under
    names starting with "idle ", so that what is left of the cores' busy time is the rest of
    the machine."""
    watched = target.pids()
    for other in idle:
        watched.update({f"idle {other.key} {name}": pid for name, pid in other.pids().items()})
    for pid in target.helpers.values():
        pin_threads(pid, {LOAD_CPU})  # threads born since the last pin
    if args.warmup > 0:
        warm = load(
            target, query, args, args.warmup, workdir / f"wrk-{target.key}-{query}-{run}-warmup.txt"
        )
        if warm.errors:
            print(f"#   warning: {warm.errors} errors during the warm-up of {target.label}")
    before = CpuSnapshot.take(watched)
    result = load(
        target, query, args, args.duration, workdir / f"wrk-{target.key}-{query}-{run}.txt"
    )
    after = CpuSnapshot.take(watched)
    m = Measurement(target.key, query, run, result, CpuUsage.between(before, after))
    extra = "".join(f"  {n} {m.cpu.percent(n):3.0f}%" for n in target.helpers)
    print(
        f"#   {query:<10} run {run}  {target.label:<{LABEL_WIDTH}} {result.rps:9.1f} req/s  "
        f"p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:8.2f} ms  "
        f"server {m.cpu.percent('server'):3.0f}%{extra}",
        flush=True,
    )
    if result.errors:
        print(
            f"#   warning: {result.errors} of {result.requests} responses were errors "
            f"(non-2xx {result.non2xx}, socket {result.sockerr}, GraphQL errors in a 200 "
            f"{result.gql_errors}){': ' + result.first_error if result.first_error else ''}",
            flush=True,
        )
    return m


def profile_hemisphere(
    target: Target,
    query: str,
    profiler: str,
    pyspy: str | None,
    args: argparse.Namespace,
    workdir: Path,
) -> Profile:
    """Load Hemisphere once more while a profiler watches its serve process."""
    duration = args.profile_duration
    wrk_log = workdir / f"wrk-hemisphere-{query}-profile.txt"
    classifier = Classifier(REPO)
    for pid in target.helpers.values():
        pin_threads(pid, {LOAD_CPU})
    if profiler == "py-spy":
        assert pyspy is not None
        out = workdir / f"pyspy-{query}.txt"
        spy_log = workdir / f"pyspy-{query}.log"
        argv = [
            "taskset",
            "-c",
            str(LOAD_CPU),
            pyspy,
            "record",
            "--pid",
            str(target.pid),
            "--format",
            "raw",
            "--rate",
            str(args.rate),
            "--duration",
            f"{duration:g}",
            "--nonblocking",
            "--full-filenames",
            "--nolineno",
            "-o",
            str(out),
        ]
        with spy_log.open("wb") as log:
            spy = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            time.sleep(0.5)  # attached before the load starts; idle samples are not recorded
            before = CpuSnapshot.take({"server": target.pid})
            result = load(target, query, args, duration, wrk_log)
            after = CpuSnapshot.take({"server": target.pid})
            spy.wait(timeout=30)
        finally:
            stop_process(spy, "py-spy")
        if spy.returncode != 0 or not out.exists():
            raise BenchError(f"py-spy failed (exit {spy.returncode}):\n{tail(spy_log)}")
        split = split_pyspy(out.read_text().splitlines(), classifier)
    else:
        # cprofile_serve.py numbers its dumps 1, 2, ...
        stats = workdir / f"cprofile-{len(list(workdir.glob('cprofile-*.prof'))) + 1}.prof"
        os.kill(target.pid, signal.SIGUSR1)
        time.sleep(0.2)
        before = CpuSnapshot.take({"server": target.pid})
        result = load(target, query, args, duration, wrk_log)
        after = CpuSnapshot.take({"server": target.pid})
        os.kill(target.pid, signal.SIGUSR2)
        split = split_cprofile(wait_for_dump(stats), classifier)
    usage = CpuUsage.between(before, after)
    print(
        f"#   {query:<10} profile  {target.label:<{LABEL_WIDTH}} {result.rps:9.1f} req/s under "
        f"{profiler}, server {usage.percent('server'):3.0f}%",
        flush=True,
    )
    return Profile(query, profiler, split, result, usage, args.rate)


def wait_for_dump(path: Path, timeout: float = 30.0) -> Path:
    """Until the profiler's dump exists and stops growing."""
    deadline, size = time.monotonic() + timeout, -1
    while time.monotonic() < deadline:
        current = path.stat().st_size if path.exists() else -1
        if current > 0 and current == size:
            return path
        size = current
        time.sleep(0.3)
    raise BenchError(f"the cProfile dump {path} did not appear within {timeout:.0f}s")


# --- reporting -----------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


@dataclass
class Summary:
    """The median over runs of one target on one query."""

    target: str
    query: str
    runs: list[Measurement]

    def med(self, pick: Callable[[Measurement], float]) -> float:
        return median([pick(m) for m in self.runs])

    @property
    def rps(self) -> float:
        return self.med(lambda m: m.wrk.rps)

    @property
    def p50(self) -> float:
        return self.med(lambda m: m.wrk.p50_ms)

    @property
    def p99(self) -> float:
        return self.med(lambda m: m.wrk.p99_ms)

    def cpu_pct(self, process: str = "server") -> float:
        return self.med(lambda m: m.cpu.percent(process))

    def ms_per_req(self, process: str = "server") -> float:
        return self.med(lambda m: m.cpu_ms_per_request(process))

    @property
    def wrk_pct(self) -> float:
        return self.med(lambda m: 100.0 * m.wrk.cpu_seconds / m.cpu.seconds)

    def core_pct(self, core: int) -> float:
        return self.med(lambda m: 100.0 * m.cpu.cores_busy.get(core, 0.0))

    @property
    def idle_targets_pct(self) -> float:
        """CPU of the other (unloaded) targets' processes during the run."""
        return self.med(
            lambda m: sum(m.cpu.percent(n) for n in m.cpu.processes if n.startswith("idle "))
        )

    @property
    def machine_pct(self) -> float:
        """Busy time of the cores that none of our processes accounts for: other work on
        the machine, and the kernel's work not charged to a process (e.g. softirq)."""

        def rest(m: Measurement) -> float:
            ours = sum(m.cpu.percent(n) for n in m.cpu.processes)
            ours += 100.0 * m.wrk.cpu_seconds / m.cpu.seconds
            return max(0.0, 100.0 * sum(m.cpu.cores_busy.values()) - ours)

        return self.med(rest)

    @property
    def errors(self) -> int:
        return sum(m.wrk.errors for m in self.runs)

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "query": self.query,
            "runs": len(self.runs),
            "rps": self.rps,
            "p50_ms": self.p50,
            "p99_ms": self.p99,
            "server_cpu_pct": self.cpu_pct(),
            "server_cpu_ms_per_request": self.ms_per_req(),
            "moto_cpu_pct": self.cpu_pct("moto") if self.target == "hemisphere" else None,
            "moto_cpu_ms_per_request": self.ms_per_req("moto")
            if self.target == "hemisphere"
            else None,
            "wrk_cpu_pct": self.wrk_pct,
            "core0_busy_pct": self.core_pct(0),
            "core1_busy_pct": self.core_pct(1),
            "idle_targets_pct": self.idle_targets_pct,
            "machine_pct": self.machine_pct,
            "errors": self.errors,
        }


def print_report(
    targets: list[Target],
    queries: list[str],
    measurements: list[Measurement],
    profiles: list[Profile],
    args: argparse.Namespace,
) -> dict[str, Any]:
    summaries = {
        (t.key, q): Summary(
            t.key, q, [m for m in measurements if m.target == t.key and m.query == q]
        )
        for q in queries
        for t in targets
    }
    how = "median of" if args.runs > 1 else "one run of"
    print()
    print(
        f"== Read path at c={args.concurrency} ({how} {args.duration:g}s per cell, after a "
        f"{args.warmup:g}s warm-up; servers on core {SERVER_CPU}, wrk on core {LOAD_CPU})"
    )
    spread = args.runs > 1
    head = (
        f"{'query':<11} {'target':<{LABEL_WIDTH}} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>9} "
        f"{'srv cpu%':>8} {'cpu ms/req':>10} {'resp B':>7} {'errors':>6}"
    )
    print(head + ("  req/s min-max" if spread else ""))
    for q in queries:
        for t in targets:
            s = summaries[(t.key, q)]
            line = (
                f"{q:<11} {t.label:<{LABEL_WIDTH}} {s.rps:9.1f} {s.p50:8.2f} {s.p99:9.2f} "
                f"{s.cpu_pct():8.0f} {s.ms_per_req():10.3f} "
                f"{t.response_bytes.get(q, 0):7d} {s.errors:6d}"
            )
            if spread:
                rates = [m.wrk.rps for m in s.runs]
                line += f"  {min(rates):.0f}-{max(rates):.0f}"
            print(line)
    print(
        "(errors: non-2xx + socket errors and timeouts + HTTP 200s carrying GraphQL errors; "
        "req/s counts every response)"
    )
    for q in queries:
        for t in targets:
            s = summaries[(t.key, q)]
            if s.errors:
                served = sum(m.wrk.requests for m in s.runs)
                first = next((m.wrk.first_error for m in s.runs if m.wrk.first_error), "")
                print(
                    f"! {q} on {t.label}: {s.errors} of {served} responses were errors, and "
                    f"its req/s and cpu ms/req count them. First: {first[:240]}"
                )

    print()
    print(
        "== Where the CPU went during the measured runs (% of one core; the server alone on "
        f"core {SERVER_CPU}; moto, wrk and py-spy share core {LOAD_CPU})"
    )
    print(
        f"{'query':<11} {'target':<{LABEL_WIDTH}} {'server%':>8} {'moto%':>6} {'wrk%':>6} "
        f"{'core0 busy%':>11} {'core1 busy%':>11} {'idle%':>6} {'machine%':>8} "
        f"{'srv ms/req':>10} {'moto ms/req':>11}"
    )
    for q in queries:
        for t in targets:
            s = summaries[(t.key, q)]
            has_moto = "moto" in t.helpers
            moto_pct = f"{s.cpu_pct('moto'):6.0f}" if has_moto else f"{'-':>6}"
            moto_ms = f"{s.ms_per_req('moto'):11.3f}" if has_moto else f"{'-':>11}"
            print(
                f"{q:<11} {t.label:<{LABEL_WIDTH}} {s.cpu_pct():8.0f} {moto_pct} {s.wrk_pct:6.0f} "
                f"{s.core_pct(0):11.0f} {s.core_pct(1):11.0f} {s.idle_targets_pct:6.0f} "
                f"{s.machine_pct:8.0f} {s.ms_per_req():10.3f} {moto_ms}"
            )
    print(
        "(core N busy%: every process on that core, ours or not; idle%: the other, unloaded "
        "targets; machine%: busy time of both cores that none of our processes accounts "
        "for: other work on the machine, kernel time not charged to a process)"
    )
    for q in queries:
        if ("hemisphere", q) in summaries:
            print(f"  {q}: {bottleneck(summaries[('hemisphere', q)])}")

    ratios: list[dict[str, Any]] = []
    if any(t.key == "hemisphere" for t in targets):
        print()
        print(
            "== Hemisphere / baseline  (req/s ratio > 1: Hemisphere serves more; "
            "p50 ratio > 1: Hemisphere is slower;"
        )
        print(
            "   server CPU/request ratio > 1: Hemisphere's serve process spends more CPU per "
            "request, moto not counted)"
        )
        print(
            f"{'query':<11} {'baseline':<{LABEL_WIDTH}} {'req/s ratio':>11} {'p50 ratio':>10} "
            f"{'cpu/req ratio':>13}"
        )
        for q in queries:
            h = summaries[("hemisphere", q)]
            for t in targets:
                if t.key == "hemisphere":
                    continue
                b = summaries[(t.key, q)]
                rps_ratio, p50_ratio = ratio(h.rps, b.rps), ratio(h.p50, b.p50)
                cpu_ratio = ratio(h.ms_per_req(), b.ms_per_req())
                ratios.append(
                    {
                        "query": q,
                        "baseline": t.key,
                        "rps_ratio": rps_ratio,
                        "p50_ratio": p50_ratio,
                        "cpu_per_request_ratio": cpu_ratio,
                    }
                )
                print(
                    f"{q:<11} {t.label:<{LABEL_WIDTH}} {times(rps_ratio):>11} "
                    f"{times(p50_ratio):>10} {times(cpu_ratio):>13}"
                )

    for p in profiles:
        print_profile(p, summaries[("hemisphere", p.query)])
    return {"summaries": [s.to_json() for s in summaries.values()], "ratios": ratios}


def ratio(ours: float, theirs: float) -> float:
    """Hemisphere ÷ a baseline; nan when the baseline served nothing in its window (a short
    --duration on a busy machine), rather than a ZeroDivisionError that loses the report."""
    return ours / theirs if theirs else float("nan")


def times(value: float) -> str:
    return f"{value:.4f}x" if value < 0.01 else f"{value:.3f}x" if value < 0.1 else f"{value:.2f}x"


def bottleneck(s: Summary) -> str:
    server, core1 = s.cpu_pct(), s.core_pct(1)
    if server >= 90:
        return (
            f"Hemisphere's serve process is CPU-bound ({server:.0f}% of core {SERVER_CPU}); "
            f"moto used {s.cpu_pct('moto'):.0f}% of core {LOAD_CPU} besides wrk."
        )
    if core1 >= 90:
        return (
            f"Hemisphere's serve process used only {server:.0f}% of core {SERVER_CPU}: "
            f"core {LOAD_CPU} was {core1:.0f}% busy (moto {s.cpu_pct('moto'):.0f}% + wrk "
            f"{s.wrk_pct:.0f}%), so the local DynamoDB endpoint limits the rate."
        )
    return (
        f"neither core saturated (serve {server:.0f}%, core {LOAD_CPU} {core1:.0f}%): "
        "Hemisphere waits on I/O (moto's latency) with 32 requests in flight."
    )


def print_profile(p: Profile, s: Summary) -> None:
    ms = s.ms_per_req()
    split = p.split
    print()
    print(
        f"== Hemisphere service CPU per request, {p.query}: {ms:.3f} ms/request "
        f"(serve process only; the measured runs' CPU seconds / requests served)"
    )
    if p.profiler == "py-spy":
        seen = split.total / p.rate
        print(
            f"   split from py-spy: {split.total:.0f} samples at {p.rate} Hz (~{seen:.1f}s of "
            f"busy threads; /proc counted {p.cpu.processes['server']:.1f}s CPU over "
            f"{p.cpu.seconds:.1f}s), while wrk loaded it: {p.wrk.rps:.0f} req/s, "
            f"{p.cpu_ms_per_request():.3f} ms/request under sampling"
        )
    else:
        print(
            f"   split from cProfile self time ({split.total:.1f}s), while wrk loaded it: "
            f"{p.wrk.rps:.0f} req/s, {p.cpu_ms_per_request():.3f} ms/request under the "
            "profiler (its overhead inflates Python-heavy code)"
        )
    print(f"   {'category':<48} {'share':>6} {'ms/req':>7}")
    for category in MAIN_CATEGORIES:
        share = split.share(category)
        print(f"   {CATEGORY_LABELS[category]:<48} {100 * share:5.1f}% {share * ms:7.3f}")
    rest = split.rest_share()
    print(f"   {'the rest':<48} {100 * rest:5.1f}% {rest * ms:7.3f}")
    for category in REST_CATEGORIES:
        share = split.share(category)
        label = "  " + CATEGORY_LABELS[category].removeprefix("rest: ")
        print(f"   {label:<48} {100 * share:5.1f}% {share * ms:7.3f}")
    moto = s.ms_per_req("moto")
    print(
        f"   not in the figures above: moto (the local DynamoDB, pinned to core {LOAD_CPU}) "
        f"spent {moto:.3f} ms of CPU per request"
    )
    print("   where the CPU was (leaf frames, share of the profile):")
    for (frame, category), amount in top(split.leaves, 10):
        print(f"     {100 * amount / split.total:5.1f}%  {category:<7} {frame}")
    for category in (*MAIN_CATEGORIES, "project"):
        frames = top(split.frames.get(category, {}), 3)
        if frames:
            shown = ", ".join(f"{f} {100 * a / split.total:.1f}%" for f, a in frames)
            print(f"   top {category} entries: {shown}")


def node_version(modules: Path, name: str) -> str:
    """The version of an installed node module, "-" when it is not there."""
    package = modules / "node_modules" / name / "package.json"
    if not package.exists():
        return "-"
    return str(json.loads(package.read_text()).get("version", "-"))


def mercurius_packages() -> dict[str, str]:
    return {name: node_version(MERCURIUS_MODULES, name) for name in MERCURIUS_PACKAGES}


def environment() -> dict[str, Any]:
    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "-"

    def command(argv: list[str]) -> str:
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "-"

    return {
        "python": platform.python_version(),
        "packages": {
            d: version(d)
            for d in (
                "strawberry-graphql",
                "graphql-core",
                "starlette",
                "uvicorn",
                "aiobotocore",
                "moto",
                "py-spy",
            )
        },
        "node": command(["node", "-v"]),
        "amplify-appsync-simulator": node_version(PEER_MODULES, "amplify-appsync-simulator"),
        "node_packages": mercurius_packages(),
        "wrk": " ".join(command(["wrk", "--version"]).split()[:2]),
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
    }


# --- main ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Hemisphere's read path against Strawberry, bare Starlette, the "
        "AppSync simulator and Node mercurius + graphql-jit, with a CPU split of Hemisphere's "
        "requests."
    )
    parser.add_argument(
        "--duration", type=float, default=10.0, help="seconds of load per measurement (default 10)"
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="measurements per target and query; the table shows the median",
    )
    parser.add_argument("--concurrency", type=int, default=32, help="wrk connections (32)")
    parser.add_argument(
        "--queries",
        default=",".join(QUERIES),
        help=f"comma-separated subset of {','.join(QUERIES)}",
    )
    parser.add_argument(
        "--skip-peer", action="store_true", help="do not start amplify-appsync-simulator"
    )
    parser.add_argument(
        "--skip-mercurius",
        action="store_true",
        help="do not start the Node mercurius + graphql-jit baseline",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        metavar="OUT",
        help="also write every figure to this JSON file",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=3.0,
        help="seconds of unrecorded load before each measurement (3)",
    )
    parser.add_argument(
        "--profile-duration",
        type=float,
        default=10.0,
        help="seconds of load under the profiler per query (10; 0: no split)",
    )
    parser.add_argument("--rate", type=int, default=500, help="py-spy samples per second (500)")
    parser.add_argument(
        "--profiler",
        choices=["auto", "py-spy", "cprofile", "none"],
        default="auto",
        help="auto: py-spy, or cProfile if it cannot attach",
    )
    parser.add_argument(
        "--baseline-loop",
        choices=["asyncio", "uvloop"],
        default="asyncio",
        help="the baselines' event loop; asyncio is what `hemisphere serve` runs on (default)",
    )
    parser.add_argument(
        "--endpoint",
        choices=["embedded", "external"],
        default="embedded",
        help="embedded: serve's defaults (its own moto and PostgreSQL); external: a moto server "
        "started here as AWS_ENDPOINT_URL, and the environment's DATABASE_URL and REDIS_URL",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory (logs, wrk and py-spy output)"
    )
    args = parser.parse_args(argv)
    args.query_list = [q.strip() for q in args.queries.split(",") if q.strip()]
    unknown = [q for q in args.query_list if q not in QUERIES]
    if unknown or not args.query_list:
        parser.error(f"--queries: choose among {', '.join(QUERIES)}")
    if args.runs < 1 or args.duration <= 0 or args.concurrency < 1:
        parser.error("--runs, --duration and --concurrency must be positive")
    if args.profile_duration <= 0:
        args.profiler = "none"
    return args


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    if (os.cpu_count() or 1) < 2:
        raise BenchError("this benchmark needs 2 cores: servers on core 0, load on core 1")
    ensure_wrk()
    profiler, pyspy = choose_profiler(args.profiler)
    # Installed (or found missing) before anything starts: a failed npm ci costs no server.
    with_mercurius = not args.skip_mercurius and ensure_mercurius_modules()
    if with_mercurius:
        installed = ", ".join(f"{k} {v}" for k, v in mercurius_packages().items())
        print(f"# mercurius-jit (node): {installed}")
    queries: list[str] = args.query_list
    started = time.monotonic()
    with Processes() as procs:
        hemisphere = start_hemisphere(procs, workdir, profiler, args.endpoint)
        # The simulator starts while Hemisphere's catalog is read; it is awaited below.
        peer = None if args.skip_peer else start_peer(procs, workdir)
        catalog = fetch_catalog(hemisphere)
        if len(catalog) != SEEDED_PRODUCTS:
            print(f"# note: Hemisphere serves {len(catalog)} products, not {SEEDED_PRODUCTS}")
        reference = {q: check_response(hemisphere, q) for q in queries}
        # The ceiling sends Hemisphere's bytes as they came.
        responses = {body_of(q): raw.decode() for q, (_, raw) in reference.items()}
        next_tokens = {}
        if "products50" in reference:
            next_tokens["50"] = reference["products50"][0]["data"]["products"]["nextToken"]
        data = workdir / "baseline-data.json"
        data.write_text(
            json.dumps({"products": catalog, "next_tokens": next_tokens, "responses": responses})
        )
        # Node starts while the Python baselines do; it is awaited below.
        mercurius = start_mercurius(procs, workdir, data) if with_mercurius else None
        strawberry = start_baseline(procs, workdir, "strawberry", data, args.baseline_loop)
        starlette = start_baseline(procs, workdir, "starlette", data, args.baseline_loop)
        targets = [hemisphere, strawberry, starlette]
        for started_later in (peer, mercurius):
            if started_later is not None:
                target, wait_until_ready = started_later
                wait_until_ready()
                targets.append(target)
        for target in targets[1:]:
            for q in queries:
                _, raw = check_response(target, q)
                # The peer serves the simulator's own data: only its shape is checked.
                if target.key != "peer":
                    check_same_bytes(target, q, raw, reference[q][1])
        print(
            f"# all {len(targets)} targets answer both checks, the in-memory baselines with "
            f"Hemisphere's very bytes; started in "
            f"{time.monotonic() - started:.0f}s. Measuring ...",
            flush=True,
        )

        measurements: list[Measurement] = []
        profiles: list[Profile] = []
        for q in queries:
            for run_number in range(1, args.runs + 1):
                shift = (run_number - 1) % len(targets)  # a different target goes first
                for target in targets[shift:] + targets[:shift]:
                    idle = [t for t in targets if t is not target]
                    measurements.append(measure(target, q, run_number, args, workdir, idle))
            if profiler != "none":
                profiles.append(profile_hemisphere(hemisphere, q, profiler, pyspy, args, workdir))
        loadavg_end = os.getloadavg()
        report = print_report(targets, queries, measurements, profiles, args)
        print(
            f"\n# loadavg at end {loadavg_end[0]:.2f} {loadavg_end[1]:.2f} "
            f"{loadavg_end[2]:.2f}; total {time.monotonic() - started:.0f}s"
        )
        return {
            **report,
            "targets": [
                {
                    "key": t.key,
                    "label": t.label,
                    "url": t.url,
                    "pid": t.pid,
                    "helpers": t.helpers,
                    "response_bytes": t.response_bytes,
                }
                for t in targets
            ],
            "measurements": [
                {
                    "target": m.target,
                    "query": m.query,
                    "run": m.run,
                    "wrk": asdict(m.wrk),
                    "cpu": asdict(m.cpu),
                    "server_cpu_ms_per_request": m.cpu_ms_per_request(),
                }
                for m in measurements
            ],
            "profiles": [
                {
                    "query": p.query,
                    "profiler": p.profiler,
                    "rate": p.rate,
                    "wrk": asdict(p.wrk),
                    "cpu": asdict(p.cpu),
                    "cpu_ms_per_request": p.cpu_ms_per_request(),
                    "split": p.split.to_json(),
                }
                for p in profiles
            ],
            "loadavg_end": loadavg_end,
            "endpoint": args.endpoint,
        }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = environment()
    print(
        f"# read_path: duration {args.duration:g}s x {args.runs} run(s), c={args.concurrency}, "
        f"warm-up {args.warmup:g}s, queries {','.join(args.query_list)}, Hemisphere's AWS "
        f"endpoint {args.endpoint}; python "
        f"{env['python']}, "
        + ", ".join(f"{k} {v}" for k, v in env["packages"].items())
        + f"; node {env['node']}, simulator {env['amplify-appsync-simulator']}, "
        + ", ".join(f"{k} {v}" for k, v in env["node_packages"].items())
        + f", {env['wrk']}; "
        f"loadavg {' '.join(f'{x:.2f}' for x in env['loadavg_start'])}"
    )
    workdir = Path(tempfile.mkdtemp(prefix="hemisphere-read-path-"))
    ok = False
    try:
        with unwind_on_signals():
            results = run(args, workdir)
        ok = True
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        # BenchError, a server that would not start or answer, wrk or npm failing
        print(f"read_path: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("read_path: interrupted; every server is stopped", file=sys.stderr)
        return 130
    finally:
        if ok and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"# logs kept in {workdir}", file=sys.stderr)
    if args.json is not None:
        env["node_packages"] = mercurius_packages()  # installed during the run, maybe
        config = {k: v for k, v in vars(args).items() if k != "json"}
        config = {k: str(v) if isinstance(v, Path) else v for k, v in config.items()}
        args.json.write_text(
            json.dumps({"config": config, "environment": env, **results}, indent=2, default=str)
        )
        print(f"# figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
