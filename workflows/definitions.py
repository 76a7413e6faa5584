"""The sagas' state machines: the ASL files next to this module, as deployed.

The files hold the production time budget and one placeholder, `${TaskQueueUrl}`, which the
deployment substitutes (adapters/stepfunctions.ensure_state_machines here, CloudFormation's
DefinitionSubstitutions on AWS). A deployment that needs another budget (the tests: moto
really sleeps between retries) passes a SagaTiming; the structure is never changed.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domain.saga import CANCEL, CHECKOUT

DEFINITIONS_DIR = Path(__file__).parent
QUEUE_URL_PLACEHOLDER = "${TaskQueueUrl}"
SAGAS = (CHECKOUT, CANCEL)


@dataclass(frozen=True, slots=True)
class SagaTiming:
    """Overrides of the files' time budget, applied to every Task and every retrier alike;
    None keeps the file's value. All in whole seconds, as ASL requires."""

    task_heartbeat_seconds: int | None = None
    task_timeout_seconds: int | None = None
    retry_interval_seconds: int | None = None
    retry_max_delay_seconds: int | None = None
    execution_timeout_seconds: int | None = None


def load_definition(saga: str) -> dict[str, Any]:
    """The ASL of `saga` (domain.saga.CHECKOUT or CANCEL) as written in its file."""
    if saga not in SAGAS:
        raise ValueError(f"no state machine named {saga!r}")
    definition: dict[str, Any] = json.loads(
        (DEFINITIONS_DIR / f"{saga}.asl.json").read_text(encoding="utf-8")
    )
    return definition


def with_timing(definition: dict[str, Any], timing: SagaTiming) -> dict[str, Any]:
    """A copy of `definition` with `timing` applied."""
    result = copy.deepcopy(definition)
    if timing.execution_timeout_seconds is not None:
        result["TimeoutSeconds"] = timing.execution_timeout_seconds
    for state in result["States"].values():
        if state["Type"] != "Task":
            continue
        if timing.task_heartbeat_seconds is not None:
            state["HeartbeatSeconds"] = timing.task_heartbeat_seconds
        if timing.task_timeout_seconds is not None:
            state["TimeoutSeconds"] = timing.task_timeout_seconds
        for retrier in state.get("Retry", []):
            if timing.retry_interval_seconds is not None:
                retrier["IntervalSeconds"] = timing.retry_interval_seconds
            if timing.retry_max_delay_seconds is not None:
                retrier["MaxDelaySeconds"] = timing.retry_max_delay_seconds
    return result


def definitions(timing: SagaTiming | None = None) -> dict[str, str]:
    """Each saga's ASL text, ready for deployment but for `${TaskQueueUrl}`."""
    result: dict[str, str] = {}
    for saga in SAGAS:
        definition = load_definition(saga)
        if timing is not None:
            definition = with_timing(definition, timing)
        result[saga] = json.dumps(definition, indent=2)
    return result


def task_steps(definition: dict[str, Any]) -> dict[str, str]:
    """State name -> the `step` its task message names (the activity that runs it)."""
    return {
        name: state["Parameters"]["MessageBody"]["step"]
        for name, state in definition["States"].items()
        if state["Type"] == "Task"
    }
