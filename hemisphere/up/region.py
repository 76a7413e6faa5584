"""One region of `up`: its local AWS endpoint, its PostgreSQL node, its API and its
replicator. Started in that order, killed all at once (an outage), stopped gently in reverse.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from hemisphere.up import postgres
from hemisphere.up.layout import Layout, RegionPorts
from hemisphere.up.processes import api_child, replicator_child, worker_child
from hemisphere.up.provision import aws_endpoint_child, provision_region, write_region_control
from hemisphere.up.secrets import SharedSecrets
from hemisphere.up.supervisor import Child, ChildFailedError

log = logging.getLogger(__name__)

_REGION_QUERY = b'{"query": "{ region { region primaryRegion readOnly epoch } }"}'
# A busy two-core machine starts a Python process with the app's imports in seconds; the
# first start of a region also rebuilds its projections.
START_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class RegionContext:
    layout: Layout
    secrets: SharedSecrets
    base_env: dict[str, str]
    payments_url: str
    # `up`'s development token issuer, whose tokens every region verifies.
    token_issuer: str


class Region:
    def __init__(self, ports: RegionPorts, context: RegionContext) -> None:
        self.ports = ports
        self.context = context
        self.name = ports.name
        self.node = postgres.node_for(ports, context.layout.region_dir(ports.name))
        self.aws: Child | None = None
        self.api: Child | None = None
        self.replicator: Child | None = None
        # A promoted region's workers, beside its API (which was started as a secondary's).
        self.worker: Child | None = None
        self.down = True
        # What its PostgreSQL node is now: "primary", "replica" or None (not started).
        self.postgres_role: str | None = None
        self._reported: set[str] = set()

    @property
    def children(self) -> list[Child]:
        return [c for c in (self.api, self.worker, self.replicator, self.aws) if c is not None]

    # -- start, in order -------------------------------------------------------------------

    def start_aws(self) -> None:
        layout = self.context.layout
        self.aws = aws_endpoint_child(
            self.name, self.ports.aws, self.context.base_env, layout.log_dir
        )
        self.aws.start()
        self.down = False

    def provision(self, primary: str, epoch: int) -> None:
        """The region's template on its AWS endpoint, and the topology record as the world
        knows it (the endpoint keeps nothing across restarts)."""
        assert self.aws is not None
        self.aws.wait_http(f"{self.ports.aws_url}/moto-api/data.json", START_TIMEOUT_SECONDS)
        provision_region(self.ports.aws_url, self.name)
        write_region_control(self.ports.aws_url, self.name, primary, epoch)

    def start_postgres(self, primary: RegionPorts) -> dict[str, Any] | None:
        """Its node as the primary, or as a streaming replica of `primary` through the delay
        proxy of that link; the data dir tells what the node was. A node that was a primary
        and is not any more rejoins (rewind); returns what it had not replicated (lost)."""
        if primary.name == self.name:
            postgres.start_primary(self.node, list(self.ports.postgres_via.values()))
            self.postgres_role = "primary"
            return None
        upstream_port = self.ports.postgres_via[primary.name]
        lost: dict[str, Any] | None = None
        if not postgres.has_data(self.node):
            postgres.start_replica(self.node, upstream_port)  # a base backup
        elif not postgres.is_standby(self.node):
            # A primary that another region replaced while it was away: what it had that
            # the new primary lacks is reported, then it is rewound (never started as it is).
            lost = postgres.rejoin(self.node, upstream_port)
        else:
            # A standby, maybe of a primary that is not the primary any more: it follows this
            # one (rewound if it had gone past the new timeline's fork).
            lost = postgres.follow(self.node, upstream_port)
        self.postgres_role = "replica"
        return lost

    def start_api(self, primary: RegionPorts, *, rebuild: bool) -> None:
        """With the workers when it is the primary, unless a worker process runs them."""
        context = self.context
        self.api = api_child(
            self.ports,
            primary=primary,
            database_url=self.node.url(),
            secrets=context.secrets,
            payments_url=context.payments_url,
            base_env=context.base_env,
            token_issuer=context.token_issuer,
            log_dir=context.layout.log_dir,
            data_dir=context.layout.region_dir(self.name),
            rebuild=rebuild,
            workers=self.worker is None,
        )
        self.api.start()

    def start_worker(self) -> None:
        context = self.context
        self.worker = worker_child(
            self.ports,
            database_url=self.node.url(),
            secrets=context.secrets,
            payments_url=context.payments_url,
            base_env=context.base_env,
            token_issuer=context.token_issuer,
            log_dir=context.layout.log_dir,
            data_dir=context.layout.region_dir(self.name),
        )
        self.worker.start()

    def wait_believes(self, primary: str, epoch: int, api_key: str, timeout: float) -> None:
        """Until the region's API names `primary` at `epoch` (it reads the replicated control
        item every second): from then on it sends writes there."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            believed = believed_topology(self.ports.graphql_url, api_key)
            if believed and (believed.get("primaryRegion"), believed.get("epoch")) == (
                primary,
                epoch,
            ):
                return
            time.sleep(0.1)
        raise ChildFailedError(
            f"{self.name}'s API did not name {primary} the primary at epoch {epoch} "
            f"within {timeout:g}s"
        )

    def start_replicator(self) -> None:
        self.replicator = replicator_child(self.ports, self.context.layout, self.context.base_env)
        self.replicator.start()

    def wait_ready(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        assert self.api is not None
        self.api.wait_http(f"{self.ports.api_url}/readyz", timeout)

    def restart_api(self, primary: RegionPorts) -> None:
        """With another primary's settings (after a promotion): gently, then at once."""
        if self.api is not None:
            self.api.terminate()
        self.start_api(primary, rebuild=False)

    # -- stop ------------------------------------------------------------------------------

    def kill(self) -> None:
        """A hard outage: SIGKILL of every process of the region, PostgreSQL included."""
        for child in self.children:
            child.kill()
        postgres.kill(self.node)
        self.api = self.replicator = self.aws = self.worker = None
        self.down = True
        self._reported.clear()

    def stop(self) -> None:
        for child in self.children:
            child.ask_to_stop()
        for child in self.children:
            child.wait_stopped()
        postgres.stop(self.node)
        self.api = self.replicator = self.aws = self.worker = None
        self.down = True

    # -- observation -----------------------------------------------------------------------

    def healthy(self) -> bool:
        if self.down:
            return False
        try:
            with urllib.request.urlopen(f"{self.ports.api_url}/readyz", timeout=1) as answer:
                return bool(answer.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def readiness(self) -> dict[str, Any] | None:
        """The API's /readyz body (200 or 503), None when it does not answer."""
        if self.down:
            return None
        try:
            with urllib.request.urlopen(f"{self.ports.api_url}/readyz", timeout=1) as answer:
                body: dict[str, Any] = json.loads(answer.read())
                return body
        except urllib.error.HTTPError as error:
            try:
                body = json.loads(error.read())
                return body
            except ValueError:
                return {"status": "unready"}
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def report_deaths(self) -> None:
        """A child that died on its own (not by stop/kill) is said once, with its log."""
        for child in self.children:
            if (
                child.process is not None
                and not child.running()
                and child.name not in self._reported
            ):
                self._reported.add(child.name)
                print(
                    f"{time.strftime('%H:%M:%S')} {child.name} exited with "
                    f"{child.process.returncode}; see {child.log_path}",
                    flush=True,
                )


def believed_topology(
    graphql_url: str, api_key: str, timeout: float = 2.0
) -> dict[str, Any] | None:
    """What a region's API says of the topology (its GraphQL `region` field), None if it
    does not answer."""
    request = urllib.request.Request(
        graphql_url,
        data=_REGION_QUERY,
        headers={"content-type": "application/json", "x-api-key": api_key},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            body = json.loads(answer.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None
    believed = (body.get("data") or {}).get("region")
    return believed if isinstance(believed, dict) else None
