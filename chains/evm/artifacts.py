"""Compiled contract artifacts (contracts/artifacts, built by contracts/build.mjs; package data)."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any


@cache
def artifact(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((files("beanpay.contracts") / "artifacts" / f"{name}.json").read_text())
    return data


def names() -> list[str]:
    """Every artifact shipped with the package."""
    return sorted(p.name.removesuffix(".json") for p in (files("beanpay.contracts") / "artifacts").iterdir()
                  if p.name.endswith(".json"))
