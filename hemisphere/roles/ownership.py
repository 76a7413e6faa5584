"""One owner per data directory: `serve` holds an exclusive lock on DATA_DIR/serve.lock for
as long as it runs (the kernel releases it when the process ends, however it ends), so a
second `serve` on the same directory is refused before it starts anything, naming the pid
of the first."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from hemisphere.roles.serving import StartupError

LOCK_FILE = "serve.lock"


@contextlib.contextmanager
def own_data_dir(data_dir: Path) -> Iterator[None]:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_FILE
    # Not inherited by children (Python's default): only this process holds the lock.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise StartupError(
                f"{data_dir} is in use by another hemisphere serve (pid {holder}); stop it "
                "or choose another --data-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)
