"""Functions the worker-pool tests run inside worker processes (imported there by name)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def square(x: float) -> float:
    return x * x


def sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def fail(message: str) -> None:
    raise ValueError(message)


def shout(text: str) -> int:
    print(text, flush=True)
    return os.getpid()


def block_until(path: str) -> None:
    """Used as a warm-up 'module' stand-in: waits (bounded) for a file that the test never writes."""
    deadline = time.monotonic() + 30
    while not Path(path).exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def is_loaded(module: str) -> bool:
    import sys

    return module in sys.modules


def thread_count(pid: int) -> int:
    """OS threads of process `pid` (Linux /proc)."""
    return len(os.listdir(f"/proc/{pid}/task"))
