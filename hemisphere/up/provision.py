"""A region's local AWS endpoint, provisioned as an infrastructure template would deploy the
region: the projection table (with its stream), the saga state machines and their task
queue, the event bus and its profile-update route. Every region has them, so any region can
be promoted; only the primary runs sagas.

The same `ensure_*` functions the API runs at start, so a template and the code never
disagree on names or shapes."""

from __future__ import annotations

import asyncio
import sys
import time
import urllib.request
from pathlib import Path

from adapters.aws import StaticCredentials
from adapters.dynamodb.client import create_client as create_dynamodb_client
from adapters.dynamodb.table import ensure_table
from adapters.dynamodb.writer import DynamoProjectionWriter
from adapters.eventbridge import create_client as create_aws_client
from adapters.eventbridge import ensure_profile_update_route
from adapters.stepfunctions import create_client as create_sfn_client
from adapters.stepfunctions import ensure_state_machines
from domain.errors import BackendUnavailableError
from domain.model import RegionControl
from hemisphere.settings import Settings
from hemisphere.up.supervisor import Child
from workflows.definitions import definitions

LOCAL_AWS_CREDENTIALS = StaticCredentials("hemisphere-local", "hemisphere-local")
# A freshly started endpoint may take a while to answer its first calls on a busy machine.
PROVISION_TIMEOUT_SECONDS = 60.0


def aws_endpoint_child(region: str, port: int, env: dict[str, str], log_dir: Path) -> Child:
    """The local AWS endpoint (moto's server) of one region. MOTO_PORT must be its port: Step
    Functions' service integrations call back into localhost:$MOTO_PORT."""
    env = {
        **env,
        "MOTO_PORT": str(port),
        "AWS_ACCESS_KEY_ID": LOCAL_AWS_CREDENTIALS.access_key_id,
        "AWS_SECRET_ACCESS_KEY": LOCAL_AWS_CREDENTIALS.secret_access_key,
    }
    # The same endpoint `serve` runs: moto with state machines parsed once, task messages
    # sent in-process and stream records written directly (hemisphere/moto/server.py).
    argv = [sys.executable, "-m", "hemisphere.moto.server", "-H", "127.0.0.1", "-p", str(port)]
    return Child(f"{region} AWS endpoint", argv, env, log_dir / f"{region}-aws.log")


def enable_state_machine_execution(url: str) -> None:
    """moto executes state machines only when asked to."""
    request = urllib.request.Request(
        f"{url}/moto-api/config",
        data=b'{"stepfunctions": {"execute_state_machine": true}}',
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5):
        pass


async def _provision(url: str, region: str) -> None:
    defaults = Settings()
    credentials = LOCAL_AWS_CREDENTIALS
    async with (
        create_dynamodb_client(url, region, credentials) as dynamodb,
        create_sfn_client(url, region, credentials) as sfn,
        create_aws_client("sqs", url, region, credentials) as sqs,
        create_aws_client("events", url, region, credentials) as events,
    ):
        await ensure_table(dynamodb, defaults.table_name)
        await ensure_state_machines(
            sfn,
            sqs,
            definitions(),
            prefix=defaults.table_name,
            role_arn=defaults.state_machine_role_arn,
        )
        await ensure_profile_update_route(
            events, sqs, defaults.event_bus_name, f"{defaults.event_bus_name}-profile-updates"
        )


def provision_region(url: str, region: str, timeout: float = PROVISION_TIMEOUT_SECONDS) -> None:
    """Deploy the region's template on its (running) local AWS endpoint. Idempotent, so it
    is simply tried again while a freshly started endpoint is still too slow to answer."""
    enable_state_machine_execution(url)
    deadline = time.monotonic() + timeout
    while True:
        try:
            asyncio.run(_provision(url, region))
            return
        except BackendUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


async def _write_region_control(url: str, region: str, control: RegionControl) -> bool:
    async with create_dynamodb_client(url, region, LOCAL_AWS_CREDENTIALS) as dynamodb:
        writer = DynamoProjectionWriter(dynamodb, Settings().table_name)
        return await writer.put_region_control(control)


def write_region_control(url: str, region: str, primary: str, epoch: int) -> bool:
    """The topology record as the world knows it, in this region's table (it never lowers
    an epoch a replicated record already raised). Returns whether it was written."""
    return asyncio.run(_write_region_control(url, region, RegionControl(primary, epoch)))
