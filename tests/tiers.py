"""`just test-lanes`: the drills tier beside every other tier, two pytest processes at once.

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
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

from beanpay.config import load_settings
from beanpay.deploy.devstack.ha.stack import NODES

DRILLS = "tests/drills"
# the drills' nodes, clear of the dev stack's ports (28xxx, 29xxx) and of the HA regions' (27000, 27500 up)
DRILL_PORTS = {"BEANPAY_ANVIL_PORT": "27800", "BEANPAY_BTCD_RPC_PORT": "27801", "BEANPAY_BTCD_P2P_PORT": "27802",
               "BEANPAY_LND_PORTS_BASE": "27810"}


def drills_env() -> dict[str, str]:
    shared = load_settings().state_path.resolve()
    state = shared / "drills"
    state.mkdir(parents=True, exist_ok=True)
    cache = state / "cache"
    if not cache.exists() and not cache.is_symlink():
        cache.symlink_to(shared / "cache")  # btcd, lnd, anvil, etcd, Patroni: built once for both
    return {**os.environ, "BEANPAY_STATE_DIR": str(state), **DRILL_PORTS}


def _prefixed(stream: IO[bytes], prefix: bytes) -> None:
    for line in stream:
        sys.stdout.buffer.write(prefix + line)
        sys.stdout.buffer.flush()


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM (a cancelled CI job) ends the lanes as Ctrl-C does


def _end(lanes: list[subprocess.Popen[bytes]], grace: float = 180) -> None:
    """One SIGINT to each lane still running, so pytest runs its teardown (session databases dropped, HA regions
    wiped), then SIGKILL what has not ended within `grace`."""
    for lane in lanes:
        if lane.poll() is None:
            lane.send_signal(signal.SIGINT)
    deadline = time.monotonic() + grace
    for lane in lanes:
        try:
            lane.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            lane.kill()
            lane.wait()


def main(argv: list[str]) -> int:
    pytest = str(Path(sys.executable).with_name("pytest"))
    env = drills_env()
    basetemp = Path(env["BEANPAY_STATE_DIR"]) / "pytest"
    signal.signal(signal.SIGTERM, _interrupted)
    # each lane in a session of its own: a Ctrl-C at the terminal reaches this runner only, which passes one
    # SIGINT on (a second would cut pytest's teardown short)
    drills = subprocess.Popen(
        [pytest, "-v", "-p", "no:cacheprovider", f"--basetemp={basetemp}", "--durations=5", DRILLS],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    assert drills.stdout is not None
    forward = threading.Thread(target=_prefixed, args=(drills.stdout, b"[drills] "), daemon=True)
    forward.start()
    rest = subprocess.Popen([pytest, "-q", f"--ignore={DRILLS}", *argv], start_new_session=True)
    try:
        ran, drilled = rest.wait(), drills.wait()
        forward.join(timeout=10)
    except KeyboardInterrupt:
        _end([rest, drills])
        raise
    finally:
        beanpay = str(Path(sys.executable).with_name("beanpay"))
        subprocess.call([beanpay, "dev", "down", *NODES], env=env, stdout=subprocess.DEVNULL)
    print(f"other tiers: {'passed' if ran == 0 else f'FAILED ({ran})'}; "
          f"drills: {'passed' if drilled == 0 else f'FAILED ({drilled})'}", flush=True)
    return ran or drilled


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
