"""What every command shares: the instance it runs on, quiet logs, phase timings, and the
definitions' resources by type."""

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

import dagster as dg

from ecom_lakehouse.resources.settings import dagster_home

# Dagster's console log stays quiet (the CLI prints a line per file); the instance's event log,
# what the UI shows, is complete either way.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def instance_for_cli() -> dg.DagsterInstance:
    """The instance `dagster dev` uses when DAGSTER_HOME is set (runs then show in the UI);
    otherwise a throw-away one."""
    if dagster_home():
        return dg.DagsterInstance.get()
    return dg.DagsterInstance.ephemeral()


class Timings(dict[str, float]):
    """Seconds spent per phase (the fixed-cost benchmark reports where the time goes)."""

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self[name] = self.get(name, 0.0) + time.perf_counter() - started


@contextlib.contextmanager
def logging_disabled(level: int) -> Iterator[None]:
    logging.disable(level)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def resource_of(defs: dg.Definitions, name: str, kind: type | tuple[type, ...]) -> Any:
    """The definitions' resource ``name``, which must be a ``kind`` (else a clear error: the
    definitions were built by something else than ``build_defs``)."""
    resource = (defs.resources or {}).get(name)
    if not isinstance(resource, kind):
        raise TypeError(f"the definitions' {name!r} resource is not a {kind}: {resource!r}")
    return resource
