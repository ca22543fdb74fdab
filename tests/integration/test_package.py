"""`pip install .` (not editable) into a clean venv, run from another folder, gives a working beanpay:
one `beanpay` namespace and nothing else at the top level, its data files inside, state in the
working directory, nothing written to the home folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from beanpay.deploy.devstack.databases import create_database, drop_database

pytestmark = pytest.mark.late  # both cores for a minute or more: after the drills (tests/conftest.py)

ROOT = Path(__file__).resolve().parents[2]


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.mark.timeout(900)
async def test_the_wheel_installs_and_runs_outside_the_repository(stack, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BEANPAY_", "BCL_", "VIRTUAL_ENV", "PYTHON"))}
    env["HOME"] = str(tmp_path / "home")
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    (tmp_path / "home").mkdir()
    # built from the tracked files only: an in-tree build reuses setuptools' build/ folder, where a file
    # removed from the repository (a migration renamed, say) would linger and ship
    source = tmp_path / "source"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(source)],
        tmp_path, {**env, "HOME": os.environ.get("HOME", "/root")})
    (wheel,) = (tmp_path / "dist").glob("beanpay-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names if not n.startswith("beanpay-")}
    assert tops == {"beanpay"}, f"the wheel adds top-level packages {tops}"
    for data in ("beanpay/migrations/0001_foundation.sql", "beanpay/engine/sql/orders.sql", "beanpay/schema.sql",
                 "beanpay/api/pages/templates/checkout.html", "beanpay/api/pages/static/checkout.js",
                 "beanpay/contracts/artifacts/ForwarderFactory.json", "beanpay/py.typed"):
        assert data in names, data
    assert not any(n.startswith("beanpay/tests") for n in names)

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    run([*pip, "--require-hashes", "-r", str(ROOT / "requirements.lock")], tmp_path,
        {**env, "HOME": os.environ.get("HOME", "/root")})  # the pip cache lives in the real home
    run([*pip, "--no-deps", str(wheel)], tmp_path, env)

    work = tmp_path / "work"
    work.mkdir()
    beanpay = str(venv / "bin" / "beanpay")
    assert run([beanpay, "--version"], work, env).stdout.startswith("beanpay 0.1.0")
    assert run([str(venv / "bin" / "python"), "-m", "beanpay", "--version"], work, env).stdout.startswith("beanpay")
    no_api = subprocess.run([str(venv / "bin" / "python"), "-c", "import api"], cwd=work, env=env,
                            capture_output=True, text=True, check=False)
    assert no_api.returncode != 0, "installing beanpay must not add a top-level `api` package"

    dsn = await create_database(stack.dsn, "beanpay_wheel")
    try:
        migrated = run([beanpay, "migrate"], work, {**env, "BEANPAY_DATABASE_URL": dsn})
        assert "applied 0 migration(s)" in migrated.stdout  # create_database migrated it: the same files
        contracts = run([beanpay, "contracts", "--json"], work, env).stdout
        assert "ForwarderFactory" in contracts and "DepositForwarder" in contracts
    finally:
        await drop_database(stack.dsn, dsn)
    run([str(venv / "bin" / "python"), "-c", "import beanpay.chains.bitcoin.addresses"], work, env)  # bitcoinlib
    assert (work / ".beanpay" / "bitcoinlib").is_dir()
    site = next((venv / "lib").glob("python3*/site-packages"))
    assert not (site / ".beanpay").exists() and not (site / "beanpay" / ".beanpay").exists()
    assert (work / ".beanpay").is_dir(), "the state folder is the working directory's"
    assert not (tmp_path / "home" / ".bitcoinlib").exists(), "bitcoinlib wrote to the home folder"
