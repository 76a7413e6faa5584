"""Run the exported AppSync resolvers in Node (deploy/appsync/checks/harness) against the same
backends a Hemisphere under test uses, and compare what both answer."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hemisphere.appsync_export.export import Topology, write_export
from resolvers.schema import build_schema
from schema.export import export_sdl

ROOT = Path(__file__).resolve().parents[2]
CHECKS = ROOT / "deploy" / "appsync" / "checks"
HARNESS = CHECKS / "harness" / "run.mjs"
LOCK_TIMEOUT = 300


def require_node() -> str:
    """node, with the harness's npm packages installed (npm ci, pinned by the lock file)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js and npm are needed to execute the AppSync resolvers")
    marker = CHECKS / "node_modules" / ".package-lock.json"
    lock = CHECKS / "package-lock.json"
    if not marker.exists() or marker.stat().st_mtime < lock.stat().st_mtime:
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=CHECKS,
            check=True,
            timeout=LOCK_TIMEOUT,
        )
    return node


def export_to(out: Path) -> Path:
    write_export(out, export_sdl(build_schema()), Topology(("us-east-1",), "us-east-1"))
    return out


# util.authType()'s answers.
API_KEY_AUTHORIZATION = "API Key Authorization"
IAM_AUTHORIZATION = "IAM Authorization"
OIDC_AUTHORIZATION = "Open ID Connect Authorization"
USER_POOL_AUTHORIZATION = "User Pool Authorization"
LAMBDA_AUTHORIZATION = "Lambda Authorization"
ACCOUNT = "123456789012"


@dataclass(frozen=True)
class Identity:
    """A caller as AppSync hands it to the resolvers: util.authType() and ctx.identity (the
    shapes AppSync documents for each mode; null for the API key)."""

    auth_type: str
    identity: dict[str, Any] | None

    def as_json(self) -> dict[str, Any]:
        return {"type": self.auth_type, "identity": self.identity}


API_KEY_CALLER = Identity(API_KEY_AUTHORIZATION, None)
IAM_CALLER = Identity(
    IAM_AUTHORIZATION,
    {
        "accountId": ACCOUNT,
        "userArn": f"arn:aws:iam::{ACCOUNT}:user/operator",
        "username": "AIDAOPERATOR",
        "sourceIp": ["127.0.0.1"],
        "cognitoIdentityPoolId": None,
        "cognitoIdentityId": None,
    },
)


def oidc_caller(claims: dict[str, Any], issuer: str = "https://issuer.example.com") -> Identity:
    """An OPENID_CONNECT caller whose token carries `claims` (`sub` among them)."""
    return Identity(
        OIDC_AUTHORIZATION, {"claims": claims, "issuer": issuer, "sub": claims.get("sub")}
    )


def cognito_caller(customer_id: str | None, groups: tuple[str, ...] = ()) -> Identity:
    """A Cognito user pool caller; its customer id in `custom:customerId` (None: no claim)."""
    claims: dict[str, Any] = {"sub": "user-" + (customer_id or "none"), "token_use": "id"}
    if customer_id is not None:
        claims["custom:customerId"] = customer_id
    if groups:
        claims["cognito:groups"] = list(groups)
    return Identity(
        USER_POOL_AUTHORIZATION,
        {
            "sub": claims["sub"],
            "username": claims["sub"],
            "issuer": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_example",
            "claims": claims,
            "groups": list(groups) or None,
            "sourceIp": ["127.0.0.1"],
            "defaultAuthStrategy": "ALLOW",
        },
    )


def lambda_caller(resolver_context: dict[str, str]) -> Identity:
    """An AWS_LAMBDA caller: what its authorizer answered as resolverContext."""
    return Identity(LAMBDA_AUTHORIZATION, {"resolverContext": resolver_context})


@dataclass
class HarnessConfig:
    """What the harness's data sources point at (see harness/run.mjs)."""

    endpoint: str
    region: str
    table: str
    database_url: str
    env: dict[str, str]
    access_key_id: str = "hemisphere-local"
    bus_name: str = "hemisphere"
    # Step Functions of the primary region (default: the same local endpoint).
    step_functions_endpoint: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "region": self.region,
            "accessKeyId": self.access_key_id,
            "databaseUrl": self.database_url,
            "env": self.env,
            "dataSources": {
                "Projections": {"table": self.table},
                "PrimaryStepFunctions": {
                    "endpoint": self.step_functions_endpoint or self.endpoint,
                    "signingService": "states",
                },
                "ProfileUpdatesBus": {"busName": self.bus_name},
            },
        }


def run_harness(
    node: str, export_dir: Path, config: HarnessConfig, requests: list[dict[str, Any]]
) -> list[Any]:
    """Each request's answer, as AppSync would give it with the exported resolvers (a
    request's "auth": an Identity's as_json(); without one, the API key)."""
    config_path = export_dir / "harness-config.json"
    config_path.write_text(json.dumps(config.as_json()))
    done = subprocess.run(
        [node, str(HARNESS), str(export_dir), str(config_path)],
        input=json.dumps(requests),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"the harness failed ({done.returncode}):\n{done.stderr}")
    answers: list[Any] = json.loads(done.stdout)
    return answers
