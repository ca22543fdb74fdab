"""Fault injection for crash tests: the process dies on the spot at a named point, the way a kill -9
or a power cut would take it there. Points are enabled with BEANPAY_FAULT_POINTS (refused in prod)."""

from __future__ import annotations

import os
import sys

from beanpay.config import Settings

ORDER_COMMITTED = "order.after_commit"  # an order's transaction committed; its response not yet sent


def point(settings: Settings, name: str) -> None:
    if name in settings.fault_points:
        sys.stderr.write(f"fault point {name}: exiting\n")
        sys.stderr.flush()
        os._exit(137)
