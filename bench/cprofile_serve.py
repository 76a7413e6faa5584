"""`hemisphere serve` with a cProfile profiler that is off until asked: bench/read_path.py's
fallback when py-spy cannot attach to a process.

    python bench/cprofile_serve.py OUT_DIR serve --port P --data-dir D

SIGUSR1 starts profiling the main thread (where the event loop runs); SIGUSR2 stops it and
writes OUT_DIR/cprofile-<n>.prof (n = 1, 2, ...). While off, the profiler costs nothing.
"""

from __future__ import annotations

import cProfile
import signal
import sys
from pathlib import Path

from hemisphere.cli import main


def run(out_dir: Path, argv: list[str]) -> int:
    profiler = cProfile.Profile()
    dumps = 0

    def start(signum: int, frame: object) -> None:
        profiler.enable()

    def stop(signum: int, frame: object) -> None:
        nonlocal dumps
        profiler.disable()
        dumps += 1
        profiler.dump_stats(out_dir / f"cprofile-{dumps}.prof")
        profiler.clear()

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    return int(main(argv))


if __name__ == "__main__":
    sys.exit(run(Path(sys.argv[1]), sys.argv[2:]))
