"""The test environment is what the lock names: every installed distribution at its locked version.

`make test` installs with `uv sync --locked` (exact: nothing more, nothing less); this catches a
package added by hand or an install that bypassed the lock, which would test what a fresh
machine never gets.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _locked_versions(lock: Path) -> dict[str, set[str]]:
    """Each package's locked versions: one, or one per Python-version split of the lock."""
    versions: dict[str, set[str]] = {}
    for package in tomllib.loads(lock.read_text())["package"]:
        versions.setdefault(_normalized(package["name"]), set()).add(package["version"])
    return versions


def test_every_installed_package_has_the_version_the_lock_names() -> None:
    locked = _locked_versions(ROOT / "uv.lock")
    installed = {
        _normalized(dist.metadata["Name"]): dist.version for dist in metadata.distributions()
    }
    unlocked = sorted(set(installed) - set(locked))
    assert not unlocked, f"installed but not in uv.lock: {unlocked}"
    differ = {n: (v, locked[n]) for n, v in installed.items() if v not in locked[n]}
    assert not differ, f"installed vs locked versions differ: {differ}"
    # the test set is installed: the tools this suite runs and the Spark extra
    assert {"pytest", "moto", "ruff", "pyspark", "dagster-pyspark"} <= set(installed)


def test_checkov_has_its_own_lock_with_the_version_the_tests_run() -> None:
    locked = _locked_versions(ROOT / "deploy" / "checkov" / "uv.lock")
    declared = tomllib.loads((ROOT / "deploy" / "checkov" / "pyproject.toml").read_text())
    (version,) = locked["checkov"]
    assert f"checkov=={version}" in declared["project"]["dependencies"]
