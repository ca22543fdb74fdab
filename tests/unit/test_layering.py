"""The folder layout is the architecture: a lower layer never imports a higher one.

kernel (beanpay/) < chains < indexer, engine (siblings) < api < cli. deploy (the dev stack and the
demo) is for developers and may use kernel, chains and engine helpers; nothing at runtime imports it.
Checked on the source with `ast`, including imports inside functions.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAPPING: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]

KERNEL = "beanpay"
ALLOWED: dict[str, set[str]] = {
    KERNEL: {KERNEL},
    "beanpay.contracts": {KERNEL},
    "beanpay.chains": {KERNEL, "beanpay.chains"},
    "beanpay.indexer": {KERNEL, "beanpay.chains", "beanpay.indexer"},
    "beanpay.engine": {KERNEL, "beanpay.chains", "beanpay.engine"},
    "beanpay.api": {KERNEL, "beanpay.chains", "beanpay.engine", "beanpay.api"},
    "beanpay.deploy": {KERNEL, "beanpay.chains", "beanpay.engine", "beanpay.deploy"},
    "beanpay.cli": set(MAPPING),
}
TOP_LEVEL = {folder for folder in MAPPING.values() if folder != "beanpay"}


def component(module: str) -> str:
    """The component (a key of ALLOWED) a beanpay module belongs to."""
    parts = module.split(".")
    candidate = ".".join(parts[:2])
    return candidate if candidate in MAPPING else KERNEL


def modules() -> list[tuple[str, Path]]:
    found = []
    for package, folder in MAPPING.items():
        base = ROOT / folder
        paths = base.glob("*.py") if package == KERNEL else base.rglob("*.py")
        for path in paths:
            rel = path.relative_to(base).with_suffix("")
            found.append((".".join([package, *rel.parts]).removesuffix(".__init__"), path))
    for path in (ROOT / "beanpay" / "events").glob("*.py"):
        found.append((f"beanpay.events.{path.stem}", path))
    return found


def imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize(("module", "path"), modules(), ids=lambda v: str(v) if isinstance(v, str) else "")
def test_each_module_imports_only_lower_layers(module: str, path: Path) -> None:
    if module == "beanpay.__main__":
        return  # `python -m beanpay`: the one-line hand-off to the composition root
    allowed = ALLOWED[component(module)]
    bad = [name for name in imports(path) if name.startswith("beanpay.") and component(name) not in allowed]
    assert not bad, f"{module} imports {bad}; {component(module)} may import only {sorted(allowed)}"


def test_nothing_imports_the_folders_as_top_level_packages() -> None:
    """`import api` would load a second copy of modules that are `beanpay.api` everywhere else."""
    offenders = []
    for path in [*ROOT.glob("*/**/*.py")]:
        if ".venv" in path.parts or ".beanpay" in path.parts:
            continue
        offenders += [f"{path.relative_to(ROOT)}: {name}" for name in imports(path)
                      if name.split(".")[0] in TOP_LEVEL]
    assert not offenders, offenders


def test_every_package_folder_is_in_the_wheel() -> None:
    """pyproject lists packages explicitly (a package-dir mapping cannot be discovered); a new
    sub-package missing from the list would be missing from the installed wheel."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = set()
    for package, folder in MAPPING.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            on_disk.add(".".join([package, *rel.parts]))
    data = set(config["package-data"]) - on_disk  # folders of data files, listed so setuptools ships them
    assert on_disk | data == listed
    for package in data:  # each holds the files its patterns name
        folder = ROOT / MAPPING[package.rsplit(".", 1)[0] if package.count(".") > 1 else "beanpay"]
        rel = package.split(".")[2:] if package.count(".") > 1 else package.split(".")[1:]
        assert any(list((folder.joinpath(*rel)).glob(p)) for p in config["package-data"][package]), package


def sql_loads(path: Path) -> list[str]:
    """The packages whose .sql a module loads (`queries.load("beanpay.x", "file.sql")`)."""
    return [node.args[0].value for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load"
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "queries"
            and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)]


def foreign_statements(path: Path, own: str) -> list[str]:
    """Another component's named statements this module reaches for: `from beanpay.engine.x import SQL`, or
    `x.SQL` of a module imported from another component."""
    tree = ast.parse(path.read_text())
    foreign: dict[str, str] = {}  # local name -> the other component's module
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.startswith("beanpay."):
            if component(node.module) == own:
                continue
            for alias in node.names:
                if alias.name == "SQL":
                    found.append(f"from {node.module} import SQL")
                foreign[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "SQL" and isinstance(node.value, ast.Name) \
                and node.value.id in foreign:
            found.append(f"{foreign[node.value.id]}.SQL")
    return found


@pytest.mark.parametrize(("module", "path"), modules(), ids=lambda v: str(v) if isinstance(v, str) else "")
def test_each_component_runs_only_its_own_sql(module: str, path: Path) -> None:
    """A component's statements are its own: the API calls engine functions, never engine statements."""
    own = component(module)
    loaded = [package for package in sql_loads(path) if component(package) != own]
    reached = foreign_statements(path, own)
    assert not loaded and not reached, f"{module} runs another component's SQL: {loaded + reached}"
