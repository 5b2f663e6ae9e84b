"""Production carries no dev tooling: `pip install .` (no extras) installs no moto and ships no `devtools`
(the local KMS, the traffic simulator, the demo), and production settings start — every module of the product
imported, `manage.py check --deploy` clean — with moto and `devtools` unimportable."""

from __future__ import annotations

import fnmatch
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.konnect_admin.test_settings import PRODUCTION_ENV, clean_environment

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PRODUCT_PACKAGES = ["konnect_admin", "encryption_keys", "debugger", "vault"]
DEV_ONLY = {"moto", "devtools"}
NOT_PRODUCTION = ["konnect_admin.settings_dev"]  # the development settings module refuses a production environment

# Run in a fresh interpreter under production settings: importing moto or devtools fails as if neither were
# installed; then every product module is imported and `manage.py check --deploy` runs.
PRODUCTION_WITHOUT_DEV_TOOLING = f"""
import importlib, pkgutil, sys

class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {DEV_ONLY!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (not installed in production)", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
for name in {sorted(DEV_ONLY)!r}:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError:
        pass
    else:
        sys.exit(f"{{name}} is still importable: the check below would prove nothing")

import django
django.setup()
for package in {PRODUCT_PACKAGES!r}:
    module = importlib.import_module(package)
    for found in pkgutil.walk_packages(module.__path__, prefix=package + "."):
        if found.name not in {NOT_PRODUCTION!r}:
            importlib.import_module(found.name)
from django.core.management import execute_from_command_line
execute_from_command_line(["manage.py", "check", "--deploy", "--fail-level", "WARNING"])
loaded = sorted(name for name in sys.modules if name.partition(".")[0] in {DEV_ONLY!r})
print("dev tooling loaded:", loaded)
"""


def test_production_settings_start_without_moto_or_devtools():
    result = subprocess.run(
        [sys.executable, "-c", PRODUCTION_WITHOUT_DEV_TOOLING], cwd=ROOT, capture_output=True, text=True, timeout=180,
        env=clean_environment({**PRODUCTION_ENV, "DJANGO_SETTINGS_MODULE": "konnect_admin.settings"}),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "dev tooling loaded: []" in result.stdout


def test_the_base_dependencies_do_not_include_moto():
    base = [Requirement(line) for line in PYPROJECT["project"]["dependencies"]]
    assert not {canonicalize_name(requirement.name) for requirement in base} & DEV_ONLY
    dev = {canonicalize_name(Requirement(line).name) for line in PYPROJECT["project"]["optional-dependencies"]["dev"]}
    assert "moto" in dev  # `make run` and `make test` install `.[dev]`: the local KMS still has its moto


def installed_closure(requirements: list[Requirement]) -> set[str]:
    """Every distribution `pip install` brings in for `requirements`, read from this environment's metadata
    (extras followed, environment markers evaluated here)."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = list(requirements)
    while todo:
        requirement = todo.pop()
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            lines = metadata.requires(requirement.name) or []
        except metadata.PackageNotFoundError:
            continue  # not for this platform (its marker is false here)
        for line in lines:
            dependency = Requirement(line)
            extras = {"", *requirement.extras}
            if dependency.marker is None or any(dependency.marker.evaluate({"extra": extra}) for extra in extras):
                todo.append(dependency)
    return {name for name, _extras in seen}


def test_pip_install_without_extras_brings_no_moto():
    closure = installed_closure([Requirement(line) for line in PYPROJECT["project"]["dependencies"]])
    assert {"django", "boto3", "botocore", "cryptography"} <= closure  # the walk did follow the dependencies
    assert "moto" not in closure
    # …whereas the dev extra does (the walk can find it).
    with_dev = installed_closure([Requirement(line) for line in PYPROJECT["project"]["optional-dependencies"]["dev"]])
    assert "moto" in with_dev


def test_the_wheel_ships_the_product_not_devtools():
    include = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    shipped = lambda name: any(fnmatch.fnmatchcase(name, pattern) for pattern in include)  # noqa: E731
    assert all(shipped(package) for package in PRODUCT_PACKAGES)
    assert not shipped("devtools") and not shipped("devtools.local_kms")
