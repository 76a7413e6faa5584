"""`hemisphere up`: start every region, keep them, stop or kill them, promote one.

Runs on the main thread: it forks every child (their death signal follows the forking
thread) and runs the control endpoint's actions one at a time between rounds of watching
(automatic promotion, children that died on their own).

It stays one module over 400 lines: the World owns every child process of the run, and
starting, watching, stopping and promoting must see the same ones.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import stat
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from hemisphere.local_issuer import LocalIssuer
from hemisphere.logs import TERMINAL_FORMAT, configure_logging
from hemisphere.settings import Settings, SettingsError
from hemisphere.up import postgres
from hemisphere.up.control import ActionQueue, ControlError, ControlServer
from hemisphere.up.layout import Layout, LayoutError, RegionPorts, write_topology
from hemisphere.up.processes import (
    base_environment,
    edges_child,
    payments_child,
    proxies_child,
)
from hemisphere.up.region import Region, RegionContext
from hemisphere.up.secrets import SharedSecrets, UpState, shared_secrets
from hemisphere.up.status import collect_status
from hemisphere.up.supervisor import Child, ChildFailedError
from regions.latency import LatencyMatrix, LatencyMatrixError, load

log = logging.getLogger(__name__)

# How long the control loop waits for an action before it looks at the regions again.
WATCH_INTERVAL_SECONDS = 0.5


@dataclass(frozen=True)
class UpOptions:
    regions: list[str]
    primary: str | None
    latency: str
    data_dir: Path
    base_port: int
    auto_promote_after: float | None = None


class Stopping(BaseException):
    """Ctrl-C or SIGTERM: unwind whatever is starting and stop everything."""


class World:
    """Every region and what lies between them."""

    def __init__(
        self,
        layout: Layout,
        latency: LatencyMatrix,
        secrets: SharedSecrets,
        state: UpState,
        auto_promote_after: float | None,
    ) -> None:
        self.layout = layout
        self.latency = latency
        self.secrets = secrets
        self.state = state
        self.auto_promote_after = auto_promote_after
        self.base_env = base_environment(dict(os.environ))
        self.shared: list[Child] = []
        self.payments_url = f"http://127.0.0.1:{layout.payments_port}"
        # One development issuer for every region (its key kept in the data dir, so tokens
        # outlive a restart of `up`); `hemisphere token --data-dir DATA_DIR` signs with it.
        self.issuer = LocalIssuer(layout.data_dir, layout.token_issuer_url)
        self.issuer.remember(layout.data_dir)
        context = RegionContext(
            layout=layout,
            secrets=secrets,
            base_env=self.base_env,
            payments_url=self.payments_url,
            token_issuer=self.issuer.issuer,
        )
        self.regions = {ports.name: Region(ports, context) for ports in layout.regions}
        self.actions = ActionQueue()
        self._unhealthy_since: float | None = None

    # -- start and stop everything ---------------------------------------------------------

    def start(self) -> None:
        layout = self.layout
        layout.log_dir.mkdir(parents=True, exist_ok=True)
        payments = payments_child(layout.payments_port, self.base_env, layout.log_dir)
        proxies = proxies_child(layout, self.latency, self.base_env, os.getpid())
        self.shared += [payments, proxies]
        payments.start()
        proxies.start()
        for region in self.regions.values():  # moto takes seconds to import: all at once
            region.start_aws()
        payments.wait_http(f"http://127.0.0.1:{layout.payments_port}/health", 60)
        primary = self.regions[self.state.primary]
        for region in self.regions.values():
            region.provision(self.state.primary, self.state.epoch)
        primary.start_postgres(self._primary_ports)
        for region in self.regions.values():
            if region is not primary:
                lost = region.start_postgres(self._primary_ports)
                if postgres.lost_anything(lost):
                    assert lost is not None
                    print(f"{region.name} rejoined; LOST: {postgres.describe_lost(lost)}")
        self.save_state()
        redriven = redrive(primary, self.payments_url)
        primary.start_api(self._primary_ports, rebuild=True)
        primary.wait_ready()
        for region in self.regions.values():
            if region is not primary:
                region.start_api(self._primary_ports, rebuild=True)
        for region in self.regions.values():
            region.start_replicator()
        for region in self.regions.values():
            if region is not primary:
                region.wait_ready()
        self._start_edges()
        self._write_topology()
        if redriven:
            print(f"Re-driving {len(redriven)} saga(s) left unfinished by the last run.")

    def _start_edges(self) -> None:
        edges = edges_child(self.layout, self.latency, self.base_env, os.getpid())
        self.shared.append(edges)
        edges.start()
        for ports in self.layout.regions:
            edges.wait_http(f"http://127.0.0.1:{ports.edge}/edge/status", 60)

    def stop(self) -> None:
        """Everything, gently and side by side: edges and APIs first (no new traffic; they
        drain), with the replicators; then the AWS endpoints and PostgreSQL; then what the
        regions shared."""
        edges = self.shared[2:]
        front = edges + [c for r in self.regions.values() for c in (r.api, r.replicator) if c]
        for child in front:
            child.ask_to_stop()
        for child in front:
            child.wait_stopped()
        for region in self.regions.values():
            region.stop()
        for child in self.shared[:2]:
            child.ask_to_stop()
        for child in self.shared[:2]:
            child.wait_stopped()

    @property
    def _primary_ports(self) -> RegionPorts:
        return self.layout.region(self.state.primary)

    def save_state(self) -> None:
        self.state.save(self.layout.data_dir)

    def _write_topology(self) -> None:
        write_topology(
            self.layout.data_dir,
            self.layout.topology(
                primary=self.state.primary,
                epoch=self.state.epoch,
                api_key=self.secrets.api_key,
                iam=self.secrets.iam,
                latency=self.latency.to_json(),
                token_issuer=self.issuer.issuer,
            ),
        )

    # -- the control endpoint's actions (main thread) --------------------------------------

    def status(self) -> dict[str, Any]:
        return collect_status(self)

    def stop_region(self, name: str) -> dict[str, Any]:
        region = self._region(name)
        if region.down:
            raise ControlError(f"{name} is already down")
        started = time.monotonic()
        region.kill()
        return {
            "region": name,
            "role": "down",
            "message": f"{name} is down (every process killed in "
            f"{time.monotonic() - started:.1f}s)",
        }

    def start_region(self, name: str) -> dict[str, Any]:
        region = self._region(name)
        if not region.down:
            raise ControlError(f"{name} is running")
        started = time.monotonic()
        primary = self.regions[self.state.primary]
        if region is not primary and primary.down:
            raise ControlError(
                f"the primary {primary.name} is down: promote a region (or start "
                f"{primary.name}) before {name} can follow it"
            )
        # Seconds from the start to the end of each step: where a slow return spends its time.
        timeline: dict[str, float] = {}

        def done(step: str) -> None:
            timeline[step] = round(time.monotonic() - started, 3)

        try:
            # The endpoint boots (a Python process importing moto: seconds of CPU) while
            # PostgreSQL starts or rewinds; the template waits for it after.
            region.start_aws()
            lost = region.start_postgres(self._primary_ports)
            done("postgres_started")
            self.save_state()
            region.provision(self.state.primary, self.state.epoch)
            done("aws_provisioned")
            redriven = redrive(region, self.payments_url) if region is primary else []
            region.start_api(self._primary_ports, rebuild=True)
            region.start_replicator()
            region.wait_ready()
            done("api_ready")
        except BaseException:
            region.kill()  # all or nothing: a half-started region stays down
            raise
        elapsed = time.monotonic() - started
        role = "primary" if region is primary else "secondary"
        message = (
            f"{name} is back as the {role} and serving after {elapsed:.1f}s (PostgreSQL "
            f"{timeline['postgres_started']:.1f}s, AWS endpoint provisioned "
            f"{timeline['aws_provisioned']:.1f}s, API ready {timeline['api_ready']:.1f}s)"
        )
        if lost is not None:
            message += f"; it rejoined by {lost['method']}"
        if redriven:
            message += f"; re-driving {len(redriven)} saga(s) its Step Functions lost"
        if postgres.lost_anything(lost):
            assert lost is not None
            message += f"; LOST writes it had not replicated: {postgres.describe_lost(lost)}"
        return {
            "region": name,
            "role": role,
            "seconds": round(elapsed, 3),
            "timeline": timeline,
            "lost_writes": lost,
            "redriven_sagas": redriven,
            "message": message,
        }

    def promote_region(self, name: str) -> dict[str, Any]:
        from hemisphere.up.promotion import promote

        region = self._region(name)
        if name == self.state.primary:
            raise ControlError(f"{name} is already the primary (epoch {self.state.epoch})")
        if region.down:
            raise ControlError(f"{name} is down: start it before promoting it")
        result = promote(self, region)
        self._write_topology()
        return result

    def _region(self, name: str) -> Region:
        try:
            return self.regions[name]
        except KeyError:
            raise ControlError(
                f"no region {name!r} (regions: {', '.join(self.regions)})", status=404
            ) from None

    # -- watching ---------------------------------------------------------------------------

    def watch(self) -> None:
        """One round: report children that died on their own; promote automatically when
        asked to and the primary stays unhealthy."""
        for region in self.regions.values():
            region.report_deaths()
        if self.auto_promote_after is None:
            return
        primary = self.regions[self.state.primary]
        if primary.healthy():
            self._unhealthy_since = None
            return
        now = time.monotonic()
        if self._unhealthy_since is None:
            self._unhealthy_since = now
            return
        if now - self._unhealthy_since < self.auto_promote_after:
            return
        candidates = self.latency.nearest_first(
            primary.name, [r.name for r in self.regions.values() if r is not primary]
        )
        for candidate in candidates:
            if self.regions[candidate].healthy():
                print(
                    f"The primary {primary.name} has been unhealthy for "
                    f"{self.auto_promote_after:g}s: promoting {candidate}.",
                    flush=True,
                )
                print(self.promote_region(candidate)["message"], flush=True)
                self._unhealthy_since = None
                return


def redrive(primary: Region, payments_url: str) -> list[str]:
    """The primary's Step Functions starts empty: its unfinished sagas are re-driven."""
    from hemisphere.up.promotion import redrive_orphaned_sagas

    return asyncio.run(redrive_orphaned_sagas(primary, payments_url))


def _check_ports_free(layout: Layout) -> None:
    ports = [layout.control_port, layout.payments_port]
    for region in layout.regions:
        ports += [region.edge, region.api, region.aws, region.postgres]
        ports += [*region.aws_via.values(), *region.postgres_via.values()]
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                raise SettingsError(
                    f"port {port} is in use (another `hemisphere up`?); choose --base-port"
                ) from None


def _plan(options: UpOptions) -> tuple[Layout, LatencyMatrix, UpState]:
    try:
        layout = Layout.plan(options.regions, options.base_port, options.data_dir.resolve())
        latency = load(options.latency)
        for a in layout.names:
            for b in layout.names:
                latency.rtt_ms(a, b)
    except (LayoutError, LatencyMatrixError) as error:
        raise SettingsError(str(error)) from None
    layout.data_dir.mkdir(parents=True, exist_ok=True)
    _check_reachable_by_postgres(layout.data_dir)
    state = UpState.load(layout.data_dir)
    if state is not None and state.primary in layout.names:
        if options.primary is not None and options.primary != state.primary:
            raise SettingsError(
                f"{layout.data_dir} records {state.primary} as the primary (epoch "
                f"{state.epoch}); promote {options.primary} with `hemisphere regions promote`"
            )
    else:
        default = "us-east-1" if "us-east-1" in layout.names else layout.names[0]
        primary = options.primary or default
        if primary not in layout.names:
            raise SettingsError(f"--primary {primary} is not one of --regions")
        state = UpState(primary=primary, epoch=1)
    return layout, latency, state


def _check_reachable_by_postgres(data_dir: Path) -> None:
    """As root, PostgreSQL runs as an unprivileged user, which must be able to reach its data
    dir: say so at once rather than with initdb's "Permission denied" later."""
    if os.geteuid() != 0:
        return
    for directory in (data_dir, *data_dir.parents):
        if not directory.stat().st_mode & stat.S_IXOTH:
            raise SettingsError(
                f"PostgreSQL runs as an unprivileged user that cannot reach {data_dir}: "
                f"{directory} is private (chmod o+x {directory}, or choose another --data-dir)"
            )


def _raise_stopping(signum: int, frame: FrameType | None) -> None:
    # Once: the stop itself must not be interrupted by a second Ctrl-C.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Stopping


def run_up(options: UpOptions) -> int:
    configure_logging(
        Settings.from_env(os.environ),
        level=logging.WARNING,
        stream=sys.stderr,
        text_format=TERMINAL_FORMAT,
    )
    layout, latency, state = _plan(options)
    _check_ports_free(layout)
    secrets = shared_secrets(layout.data_dir, os.environ)
    world = World(layout, latency, secrets, state, options.auto_promote_after)
    signal.signal(signal.SIGINT, _raise_stopping)
    signal.signal(signal.SIGTERM, _raise_stopping)
    signal.signal(signal.SIGHUP, _raise_stopping)
    control = ControlServer(layout.control_port, world, world.actions, world.issuer)
    started = time.monotonic()
    print(
        f"Starting {len(layout.regions)} regions ({', '.join(layout.names)}; primary "
        f"{state.primary}, latency {latency.name}); logs in {layout.log_dir} ...",
        flush=True,
    )
    try:
        try:
            # Before any region: it serves the issuer's keys the regions fetch on a first token.
            control.start()
            world.start()
            print(banner(world, time.monotonic() - started), flush=True)
            while True:
                world.actions.run_pending(WATCH_INTERVAL_SECONDS)
                world.watch()
        except (ChildFailedError, postgres.PostgresError) as error:
            print(f"hemisphere up: {error}", file=sys.stderr, flush=True)
            return 1
    except Stopping:
        print("Stopping every region ...", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stopping = time.monotonic()
        world.actions.close()
        (layout.data_dir / "topology.json").unlink(missing_ok=True)
        world.stop()
        control.stop()  # after the last region: the issuer's keys are served till then
        state.save(layout.data_dir)
        print(f"Stopped in {time.monotonic() - stopping:.1f}s; data kept in {layout.data_dir}.")


def banner(world: World, seconds: float) -> str:
    layout = world.layout
    rows = [("REGION", "ROLE", "GRAPHQL")]
    for ports in layout.regions:
        role = "primary" if ports.name == world.state.primary else "secondary"
        rows.append((ports.name, role, ports.graphql_url))
    width = [max(len(row[i]) for row in rows) for i in range(2)]
    lines = ["", f"Hemisphere is up: {len(rows) - 1} regions in {seconds:.1f}s."]
    lines += ["  " + f"{a.ljust(width[0])}  {b.ljust(width[1])}  {c}" for a, b, c in rows]
    lines += ["", "  USER LOCATION   EDGE (nearest healthy region)"]
    lines += [f"  {ports.name.ljust(14)}  {ports.edge_url}" for ports in layout.regions]
    lines += [
        "",
        f"  API key:   {world.secrets.api_key}   (header x-api-key)",
        f"  IAM:       {world.secrets.iam}   (SigV4, service appsync)",
        f"  Tokens:    hemisphere token c-0001 --data-dir {layout.data_dir}   (header "
        f"Authorization; customers, orders and checkouts need one, every region accepts it)",
        f"  Epoch:     {world.state.epoch}",
        f"  Control:   {layout.control_url}   (hemisphere regions status|stop|start|promote "
        f"--data-dir {layout.data_dir})",
        f"  Topology:  {layout.data_dir / 'topology.json'}",
        "Press Ctrl-C to stop every region.",
        "",
    ]
    return "\n".join(lines)
