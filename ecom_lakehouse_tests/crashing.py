"""The CLI, killed by SIGKILL at a named point: ``python -m ecom_lakehouse_tests.crashing POINT
ingest``. No exception handler, ``finally`` block or atexit hook runs, as when a machine dies.

Points (the process kills itself the first time it passes one):

- ``after_validation``: a batch's good rows are in ``validated/``, nothing merged yet;
- ``after_commit``: the Delta commit is in the table, the files are still in ``raw/``;
- ``during_archive``: the first file reached ``archived/`` (S3: copied, still in ``raw/`` too;
  a folder: renamed), the others are in ``raw/``;
- ``during_catalog_refresh``: half of the catalog's views are written.

(Inside the commit itself, between the data files and the log entry, is reached with a proxy
in front of S3: ``ecom_lakehouse_tests/s3_proxy.py``.)
"""

import os
import signal
import sys
from collections.abc import Callable
from typing import Any


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def after(owner: Any, name: str, when: Callable[..., bool] = lambda *a, **k: True) -> None:
    """Kill the process right after ``owner.name`` returns (when ``when`` says so)."""
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if when(*args, **kwargs):
            die()
        return result

    setattr(owner, name, wrapper)


def install(point: str) -> None:
    import obstore

    from ecom_lakehouse.core import pipeline
    from ecom_lakehouse.core.sql import duckdb_catalog
    from ecom_lakehouse.defs.ingest import validated

    if point == "after_validation":
        after(validated, "validate_batch")
    elif point == "after_commit":
        after(pipeline, "merge_batch")
    elif point == "during_archive":
        for move in ("copy", "rename"):
            after(obstore, move, lambda store, source, target, **kw: target.startswith("archived/"))
    elif point == "during_catalog_refresh":
        calls = []
        after(duckdb_catalog, "_view_sql", lambda entry: calls.append(entry) or len(calls) == 2)
    else:
        raise SystemExit(f"unknown crash point {point!r}")


if __name__ == "__main__":
    install(sys.argv[1])
    from ecom_lakehouse.cli import main

    main(sys.argv[2:], prog_name="ecom-lakehouse")
