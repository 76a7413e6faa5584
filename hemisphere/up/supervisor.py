"""Child processes of `hemisphere up`: started so that they die with it, stopped gently or
killed hard (a region's outage), each logging to a file of its own.

Every child gets its own process group (Ctrl-C in the terminal reaches `up` alone, which
stops the children in order) and PR_SET_PDEATHSIG=SIGKILL: if `up` itself is killed, the
kernel kills them. The death signal follows the *thread* that forked, so children are only
ever started from the main thread (the control endpoint hands its work to it).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


class ChildFailedError(RuntimeError):
    """A child exited or did not become ready; the message names it and its log."""


def _die_with_parent(parent: int) -> None:
    """Runs in the child between fork and exec."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the prctl took effect
        os._exit(1)


class Child:
    """One child process: `argv` with `env`, output in `log_path`."""

    def __init__(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], log_path: Path
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("children start from the main thread (PR_SET_PDEATHSIG)")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as output:
            output.write(f"\n--- {time.strftime('%H:%M:%S')} starting {self.name}\n".encode())
            output.flush()
            parent = os.getpid()
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=lambda: _die_with_parent(parent),
            )

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_http(self, url: str, timeout: float, *, ok: tuple[int, ...] = (200,)) -> None:
        """Until `url` answers one of `ok`; ChildFailedError if the child exits or the
        deadline passes (the last lines of its log say why)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                code = self.process.returncode if self.process is not None else None
                raise ChildFailedError(f"{self.name} exited ({code}); {self._tail()}")
            try:
                with urllib.request.urlopen(url, timeout=1) as answer:
                    if answer.status in ok:
                        return
            except urllib.error.HTTPError as error:
                if error.code in ok:
                    return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise ChildFailedError(f"{self.name} not ready at {url} after {timeout:g}s; {self._tail()}")

    def terminate(self, timeout: float = 15.0) -> None:
        """SIGTERM (a graceful stop), SIGKILL past `timeout`."""
        self.ask_to_stop()
        self.wait_stopped(timeout)

    def ask_to_stop(self) -> None:
        """SIGTERM to its process group, without waiting (stop several at once)."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)

    def wait_stopped(self, timeout: float = 15.0) -> None:
        process = self.process
        if process is None:
            return
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %gs: killing it", self.name, timeout)
            self.kill()

    def kill(self) -> None:
        """SIGKILL to the whole process group: an outage, nothing gets to clean up."""
        process = self.process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)

    def _tail(self, lines: int = 8) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return f"see {self.log_path}"
        return f"log {self.log_path}:\n    " + "\n    ".join(text)
