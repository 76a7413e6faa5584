"""Where a process tree's CPU goes: each descendant's share of a core over a window.

    .venv/bin/python bench/tree_cpu.py --pid "$(pgrep -f 'hemisphere up' | head -1)" --seconds 30

Reads utime+stime from /proc/<pid>/stat at the start and the end of the window, for the root
and every process below it (a process born during the window counts from zero), and prints
them largest first, with the command line shortened to what tells the processes apart. The
last line is the whole tree's CPU against the machine's (both cores, from /proc/stat).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from pathlib import Path

import psutil
from procs import cores_busy_seconds, process_cpu_seconds


def tree(root: int) -> list[int]:
    """`root` and every process below it (none when it is gone)."""
    with contextlib.suppress(psutil.NoSuchProcess):
        process = psutil.Process(root)
        return [root, *(child.pid for child in process.children(recursive=True))]
    return []


def cpu_seconds(pid: int) -> float | None:
    """procs.process_cpu_seconds, None for a process gone meanwhile."""
    try:
        return process_cpu_seconds(pid)
    except OSError:
        return None


def label(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [a.decode(errors="replace") for a in argv if a]
    # Drop the interpreter and long paths: keep the program's name and its arguments.
    shown = [Path(words[0]).name] if words else []
    for word in words[1:]:
        shown.append(Path(word).name if word.startswith("/") else word)
    return " ".join(shown)[:110]


def matching(pattern: str) -> list[int]:
    """Processes whose command line holds `pattern` (PostgreSQL daemonizes out of the tree)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if pattern.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def machine_busy_seconds() -> float:
    return sum(busy for busy, _ in cores_busy_seconds().values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pid", type=int, required=True, help="the root of the tree")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument(
        "--also", help="also every process whose command line holds this (e.g. the data dir)"
    )
    args = parser.parse_args()

    def processes() -> list[int]:
        found = set(tree(args.pid))
        for pid in matching(args.also) if args.also else []:
            found.update(tree(pid))
        return sorted(found - {os.getpid()})

    before = {pid: cpu_seconds(pid) for pid in processes()}
    machine_before, started = machine_busy_seconds(), time.monotonic()
    time.sleep(args.seconds)
    elapsed = time.monotonic() - started
    machine = (machine_busy_seconds() - machine_before) / elapsed
    rows = []
    for pid in processes():
        now = cpu_seconds(pid)
        if now is None:
            continue
        rows.append(((now - (before.get(pid) or 0.0)) / elapsed, pid, label(pid)))
    rows.sort(reverse=True)
    print(f"{'% core':>7}  {'pid':>7}  process")
    for share, pid, name in rows[: args.top]:
        print(f"{100 * share:7.1f}  {pid:7d}  {name}")
    total = sum(share for share, _, _ in rows)
    print(f"tree {100 * total:.0f} % of a core; machine {100 * machine:.0f} % (two cores = 200 %)")
    print(f"load average {os.getloadavg()[0]:.1f} over {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
