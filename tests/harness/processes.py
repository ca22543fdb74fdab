"""Processes a test or a bench starts itself (beanpay's services, a private node), stopped together."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from typing import Any


def stop_processes(procs: Iterable[subprocess.Popen[Any]], timeout: float = 20) -> None:
    """SIGTERM to every one at once (a clean stop flushes what each still buffers), then wait for each, and
    SIGKILL one that has not exited within `timeout`."""
    procs = list(procs)
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)
