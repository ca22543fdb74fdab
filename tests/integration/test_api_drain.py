"""An API process asked to stop (SIGTERM, as a deploy or HAProxy's rolling restart does) first reports
itself unready for BEANPAY_API_DRAIN_SECONDS while it still serves, so a load balancer stops sending to
it before it closes; then it exits on its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from beanpay.deploy.drills.services import free_port

BEANPAY = str(Path(sys.executable).with_name("beanpay"))


def _get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - loopback
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.mark.timeout(120)
def test_a_stopping_api_reports_draining_while_it_still_serves_then_exits(settings) -> None:
    port = free_port()
    env = {**os.environ, "BEANPAY_DATABASE_URL": settings.dsn, "BEANPAY_API_PORT": str(port),
           "BEANPAY_METRICS_PORT": str(free_port()), "BEANPAY_API_DRAIN_SECONDS": "3",
           "BEANPAY_LOG_LEVEL": "warning"}
    api = subprocess.Popen([BEANPAY, "api"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if _get(base + "/readyz")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            raise AssertionError("the API never got ready")
        stopped = time.monotonic()
        api.terminate()
        time.sleep(0.5)
        status, body = _get(base + "/readyz")
        assert (status, body.get("status")) == (503, "draining")
        assert _get(base + "/healthz")[0] == 200  # still serving while it drains
        assert api.poll() is None
        api.wait(timeout=30)
        assert time.monotonic() - stopped >= 3  # it held on for the drain period
        assert api.returncode == 0
    finally:
        if api.poll() is None:
            api.kill()
            api.wait(timeout=10)
