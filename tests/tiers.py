"""`just test`'s pytest runs: the drills tier beside every other tier, two processes at once.

The drills spend most of their time waiting on whole stacks to start, fail over and settle, and the other
tiers most of theirs on one core, so side by side they take about as long as the longer of the two. They must
not share chains: a drill mines a block every second, and other tests count confirmations, stop automining and
reorg anvil and btcd. So the drills get chain and Lightning nodes of their own: the dev stack's nodes started
from a second state dir (`.beanpay/drills`, sharing the built binaries) on ports of their own, stopped again at
the end. Their HA stacks already have ports of their own (BEANPAY_HA_*_PORTS_BASE).

`python -m tests.tiers [pytest options for the other tiers]`; exit status non-zero when either run fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

from beanpay.config import load_settings
from beanpay.deploy.devstack.ha.stack import NODES

DRILLS = "tests/drills"
# the drills' nodes, clear of the dev stack's ports (28xxx, 29xxx) and of the HA regions' (27000, 27500 up)
DRILL_PORTS = {"BEANPAY_ANVIL_PORT": "27800", "BEANPAY_BTCD_RPC_PORT": "27801", "BEANPAY_BTCD_P2P_PORT": "27802",
               "BEANPAY_LND_PORTS_BASE": "27810"}


def drills_env() -> dict[str, str]:
    shared = load_settings().state_path
    state = shared / "drills"
    state.mkdir(parents=True, exist_ok=True)
    cache = state / "cache"
    if not cache.is_symlink():
        cache.symlink_to(shared / "cache")  # btcd, lnd, anvil, etcd, Patroni: built once for both
    return {**os.environ, "BEANPAY_STATE_DIR": str(state), **DRILL_PORTS}


def _prefixed(stream: IO[bytes], prefix: bytes) -> None:
    for line in stream:
        sys.stdout.buffer.write(prefix + line)
        sys.stdout.buffer.flush()


def main(argv: list[str]) -> int:
    pytest = str(Path(sys.executable).with_name("pytest"))
    env = drills_env()
    basetemp = Path(env["BEANPAY_STATE_DIR"]) / "pytest"
    drills = subprocess.Popen(
        [pytest, "-v", "-p", "no:cacheprovider", f"--basetemp={basetemp}", "--durations=5", DRILLS],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert drills.stdout is not None
    forward = threading.Thread(target=_prefixed, args=(drills.stdout, b"[drills] "), daemon=True)
    forward.start()
    try:
        rest = subprocess.call([pytest, "-q", f"--ignore={DRILLS}", *argv])
        drilled = drills.wait()
        forward.join(timeout=10)
    finally:
        if drills.poll() is None:
            drills.kill()
        beanpay = str(Path(sys.executable).with_name("beanpay"))
        subprocess.call([beanpay, "dev", "down", *NODES], env=env, stdout=subprocess.DEVNULL)
    print(f"other tiers: {'passed' if rest == 0 else f'FAILED ({rest})'}; "
          f"drills: {'passed' if drilled == 0 else f'FAILED ({drilled})'}", flush=True)
    return rest or drilled


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
