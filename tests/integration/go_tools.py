"""Command-line tools built once from their Go modules (the module proxy is what this machine reaches) and
cached next to btcd's binary, so a second run builds nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from beanpay.config import load_settings


def go_tool(module: str, name: str) -> str:
    """The path of `name`, `go install`ed from `module` (path@version) on first use."""
    out = load_settings().state_path / "cache" / "go-bin" / name
    if not out.exists():
        assert shutil.which("go"), f"Go is needed to build {name}"
        env = {**os.environ, "GOBIN": str(out.parent), "GOFLAGS": "-mod=mod"}
        subprocess.run(["go", "install", module], env=env, check=True, capture_output=True, timeout=1500)
    return str(Path(out))
