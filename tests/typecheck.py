"""`just lint` type-checks the installed namespace: mypy over `beanpay.*`, as the wheel lays it out.

The folders stay at the top of the repository (api/, engine/, ...) and setuptools maps them into
`beanpay.*` at install time; mypy cannot follow that mapping (nor an editable install's import
hook), so this builds the wheel's layout as a tree of symlinks under .beanpay/typecheck, checks it,
and prints errors with the repository's own paths.
"""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parents[1]


def build_view(view: Path) -> dict[str, str]:
    """Symlink the package-dir mapping into `view`; returns view prefix -> repository prefix."""
    mapping: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    top = view / "beanpay"
    top.mkdir(parents=True, exist_ok=True)
    for old in top.iterdir():
        old.unlink()
    for entry in (ROOT / mapping["beanpay"]).iterdir():
        (top / entry.name).symlink_to(entry)
    rewrite = {f"{top}/": f"{mapping['beanpay']}/"}
    for package, folder in mapping.items():
        if package != "beanpay":
            (top / package.split(".", 1)[1]).symlink_to(ROOT / folder, target_is_directory=True)
            rewrite[f"{top}/{package.split('.', 1)[1]}/"] = f"{folder}/"
    # mypy prints paths under the working directory relative to it
    return {**rewrite, **{str(Path(k).relative_to(ROOT)) + "/": v for k, v in rewrite.items()}}


def main() -> int:
    view = ROOT / ".beanpay" / "typecheck"
    rewrite = build_view(view)
    os.environ["MYPYPATH"] = str(view)
    out, err, status = api.run(["--config-file", str(ROOT / "pyproject.toml"), "-p", "beanpay"])
    for prefix in sorted(rewrite, key=len, reverse=True):  # longest first: api/ before the kernel
        out = out.replace(prefix, rewrite[prefix])
    sys.stdout.write(out)
    sys.stderr.write(err)
    return status


if __name__ == "__main__":
    sys.exit(main())
