"""Read what really reached Kafka with kcat, an independent client (not the code under test)."""

from __future__ import annotations

import json
import subprocess
from typing import Any


def read_topic(bootstrap: str, topic: str, keys: set[str]) -> list[dict[str, Any]]:
    """Every message of `topic` whose key is in `keys`, in partition-offset order."""
    out = subprocess.run(
        ["kcat", "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-J", "-q"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    # kcat ends each message with "\n"; splitlines() would also split inside payloads on \u2028, \x1c and such
    messages = [json.loads(line) for line in out.split("\n") if line.strip()]
    mine = [m for m in messages if m.get("key") in keys]
    mine.sort(key=lambda m: (m["partition"], m["offset"]))
    for m in mine:
        m["envelope"] = json.loads(m["payload"])
    return mine
