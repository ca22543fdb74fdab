"""The `beanpay` command as a subprocess, the way operators run it."""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from beanpay.deploy.devstack.redis import Redis
from beanpay.tokens import verify

BEANPAY = str(Path(sys.executable).with_name("beanpay"))


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BEANPAY, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})}, check=False)


def test_help_explains_commands() -> None:
    out = run("--help")
    assert out.returncode == 0
    for command in ("dev", "migrate", "token", "api", "relay", "run"):
        assert command in out.stdout
    assert "BEANPAY_" in out.stdout
    assert run("dev", "up", "--help").returncode == 0


def test_bad_config_exits_2_naming_the_variable() -> None:
    out = run("migrate", env={"BEANPAY_PG_PORT": "not-a-port"})
    assert out.returncode == 2
    assert "BEANPAY_PG_PORT='not-a-port'" in out.stderr


def test_token_is_verifiable_and_scoped(settings) -> None:
    shop = uuid.uuid4()
    out = run("token", "--role", "merchant", "--shop", str(shop))
    assert out.returncode == 0, out.stderr
    claims = verify(out.stdout.strip(), settings.jwt_secret)
    assert claims.role == "merchant" and claims.shops == [shop]
    missing = run("token", "--role", "staff")
    assert missing.returncode == 2 and "--shop is required" in missing.stderr


def test_dev_status_reports_running_services(stack) -> None:
    out = run("dev", "status", "postgres", "redis", "kafka", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert set(rows) == {"postgres", "redis", "kafka"}
    assert all(r["healthy"] and r["pid"] for r in rows.values())
    assert rows["postgres"]["version"].startswith("15")
    assert rows["redis"]["version"].startswith("7")
    assert rows["kafka"]["version"].startswith("4")
    bogus = run("dev", "up", "nosuchservice")
    assert bogus.returncode == 1 and "unknown service" in bogus.stderr


def test_dev_up_is_a_noop_when_running(stack) -> None:
    out = run("dev", "up", "postgres", "redis")
    assert out.returncode == 0
    assert out.stderr.count("already running") == 2


def test_migrate_twice_applies_nothing_new(settings) -> None:
    out = run("migrate", env={"BEANPAY_DATABASE_URL": settings.dsn})
    assert out.returncode == 0
    assert out.stdout.strip() == "applied 0 migration(s)"


def test_dev_up_restarts_a_crashed_service(stack) -> None:
    service = Redis(stack)
    pid = service.pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    for _ in range(50):
        if service.pid() is None:
            break
        time.sleep(0.1)
    assert service.pid() is None
    out = run("dev", "up", "redis")
    assert out.returncode == 0, out.stderr
    assert "started" in out.stderr
    assert service.pid() not in (None, pid) and service.healthy()
