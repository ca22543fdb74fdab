"""Compiled contract artifacts (contracts/artifacts, built by contracts/build.mjs)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

ARTIFACTS = Path(__file__).resolve().parents[2] / "contracts" / "artifacts"


@cache
def artifact(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ARTIFACTS / f"{name}.json").read_text())
    return data
