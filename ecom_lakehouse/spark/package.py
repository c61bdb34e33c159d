"""The Spark job's package: the modules the job imports (contracts, core, spark) as one zip
plus a two-line entry script, uploaded under ``scripts/<version>/`` in the lake's bucket.

The version is a hash of the content, so a new build never overwrites what a running job
reads: it goes to a new prefix, and an existing prefix already holds the same bytes. The zip
is uploaded before the entry script that imports it.
"""

from __future__ import annotations

import ast
import hashlib
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ecom_lakehouse.core.lake.layout import SCRIPTS
from ecom_lakehouse.core.lake.storage import Lake

PACKAGE_ZIP = "ecom_lakehouse.zip"
ENTRY_SCRIPT = "spark_job.py"
ENTRY_SOURCE = '''"""The ecom-lakehouse Spark job (Glue script, EMR Serverless entryPoint)."""

from ecom_lakehouse.spark.job import main

main()
'''
_FIXED_TIME = (2020, 1, 1, 0, 0, 0)  # zip entries carry no build time: same code, same bytes


@dataclass(frozen=True)
class SparkPackage:
    version: str
    files: dict[str, bytes]  # name under scripts/<version>/ -> content, in upload order

    def uri(self, lake: Lake) -> str:
        return lake.url(f"{SCRIPTS}{self.version}")


# The modules the job starts from; the zip holds them and every module of this package they
# import (at any depth, in functions too), with their packages' __init__ files.
ENTRY_MODULES = ("ecom_lakehouse.spark.job",)


def shipped_modules(root: Path, entries: Sequence[str] = ENTRY_MODULES) -> list[Path]:
    """The source files of ``entries`` and of every ``ecom_lakehouse`` module they import."""
    package = root.name
    seen: set[Path] = set()
    pending = list(entries)
    while pending:
        source = _source(root, pending.pop())
        if source is None or source in seen:
            continue
        seen.add(source)
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                pending += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                pending.append(node.module)  # a name may be a module of it too:
                pending += [f"{node.module}.{alias.name}" for alias in node.names]
        pending = [name for name in pending if name.split(".")[0] == package]
    inits = {parent / "__init__.py" for path in seen for parent in path.parents
             if parent == root or root in parent.parents}  # fmt: skip
    return sorted(seen | inits)


def _source(root: Path, module: str) -> Path | None:
    """A module's file under ``root`` (the package), or None for a name that is no module."""
    parts = module.split(".")[1:]
    for candidate in (
        root.joinpath(*parts).with_suffix(".py"),
        root.joinpath(*parts, "__init__.py"),
    ):
        if parts and candidate.is_file():
            return candidate
    return None


def build() -> SparkPackage:
    root = Path(__file__).resolve().parents[1]
    buffer = io.BytesIO()
    sources = shipped_modules(root)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(sources):
            info = zipfile.ZipInfo(str(path.relative_to(root.parent)), date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    files = {PACKAGE_ZIP: buffer.getvalue(), ENTRY_SCRIPT: ENTRY_SOURCE.encode()}
    digest = hashlib.sha256()
    for name, content in files.items():
        digest.update(name.encode() + b"\0" + content)
    return SparkPackage(version=digest.hexdigest()[:12], files=files)


def upload(lake: Lake, package: SparkPackage) -> list[str]:
    """Upload what is missing; returns the keys written (none when the version is there)."""
    written = []
    for name, content in package.files.items():
        key = f"{SCRIPTS}{package.version}/{name}"
        if lake.head(key) is None:
            lake.write(key, content)
            written.append(key)
    return written
