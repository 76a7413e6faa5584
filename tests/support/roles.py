"""Run `hemisphere <role>` as a subprocess the way an orchestrator does: environment only,
output collected, probed over HTTP, stopped by a signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

API_KEY = "da2-rolesrolesrolesrolesroles"
IAM = ("AKIAROLESTEST", "roles-test-secret")


@dataclass
class Role:
    process: subprocess.Popen[str]
    port: int | None
    output: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def text(self) -> str:
        return "".join(self.output)

    def probe(self, path: str = "/readyz") -> httpx.Response | None:
        try:
            return httpx.get(f"{self.base}{path}", timeout=2)
        except httpx.HTTPError:
            return None

    def wait_ready(self, timeout: float = 90) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = self.probe()
            if answer is not None and answer.status_code == 200:
                body: dict[str, object] = answer.json()
                return body
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"not ready (exit {self.process.poll()}):\n{self.text}")

    def query(self, query: str) -> dict[str, object]:
        answer = httpx.post(
            f"{self.base}/graphql",
            json={"query": query},
            headers={"x-api-key": API_KEY},
            timeout=10,
        )
        body: dict[str, object] = answer.json()
        return body

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        return self.process.wait(timeout=timeout)

    def wait_exit(self, timeout: float = 60) -> int:
        code = self.process.wait(timeout=timeout)
        time.sleep(0.1)  # let the pump read the last lines
        return code


def clean_env(**variables: str) -> dict[str, str]:
    """The test's environment without any Hemisphere or backend setting, plus `variables`."""
    kept = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HEMISPHERE_", "AWS_")) and k not in ("DATABASE_URL", "REDIS_URL")
    }
    return kept | variables


def api_env(database_url: str, aws_endpoint: str, table: str, **more: str) -> dict[str, str]:
    """What `hemisphere api` needs; an empty `database_url` leaves DATABASE_URL unset."""
    return clean_env(
        DATABASE_URL=database_url,
        AWS_ENDPOINT_URL=aws_endpoint,
        AWS_ACCESS_KEY_ID="hemisphere-local",
        AWS_SECRET_ACCESS_KEY="hemisphere-local",
        HEMISPHERE_TABLE=table,
        HEMISPHERE_TOKEN_SECRET="roles-token-secret",
        HEMISPHERE_API_KEYS=API_KEY,
        HEMISPHERE_IAM_CREDENTIALS=":".join(IAM),
        **more,
    )


def start_role(
    args: list[str], env: dict[str, str], port: int | None = None, cwd: Path | None = None
) -> Role:
    command = [sys.executable, "-m", "hemisphere.cli", *args]
    if port is not None:
        command += ["--port", str(port)]
    process = subprocess.Popen(
        command,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    role = Role(process, port)

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            role.output.append(line)

    threading.Thread(target=pump, daemon=True).start()
    return role
