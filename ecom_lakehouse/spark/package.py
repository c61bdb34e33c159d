"""The Spark job's package: the modules the job imports (contracts, core, spark) as one zip
plus a two-line entry script, uploaded under ``scripts/<version>/`` in the lake's bucket.

The version is a hash of the content, so a new build never overwrites what a running job
reads: it goes to a new prefix, and an existing prefix already holds the same bytes. The zip
is uploaded before the entry script that imports it.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ecom_lakehouse.core.layout import SCRIPTS
from ecom_lakehouse.core.storage import Lake

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


# What the job imports: the contracts, the Dagster-free core and the job itself.
SHIPPED = ("__init__.py", "contracts", "core", "spark")


def build() -> SparkPackage:
    root = Path(__file__).resolve().parents[1]
    buffer = io.BytesIO()
    shipped = [root / name for name in SHIPPED]
    sources = [p for p in shipped if p.is_file()]
    sources += [p for folder in shipped if folder.is_dir() for p in folder.rglob("*.py")]
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
