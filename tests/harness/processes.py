"""Processes a test or a bench starts itself (beanpay's services, a private node), stopped together."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from typing import Any


def stop_processes(procs: Iterable[subprocess.Popen[Any]], timeout: float = 20) -> list[subprocess.Popen[Any]]:
    """SIGTERM to every one at once (a clean stop flushes what each still buffers), then wait for each, and
    SIGKILL one that has not exited within `timeout`. Returns those it had to kill (a test of a clean stop
    asserts there are none)."""
    procs = list(procs)
    for p in procs:
        if p.poll() is None:
            p.terminate()
    killed = []
    for p in procs:
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)
            killed.append(p)
    return killed
