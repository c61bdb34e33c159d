"""Where each table stands, from the lake alone: its rows, its last load, what waits in
``raw/`` for it (and for how long), what was rejected from it lately."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from ecom_lakehouse.contracts import DatasetContract, TableSpec
from ecom_lakehouse.contracts.history import REJECTED
from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.core.tables.history import attempts_of

# Commits that rewrite or clean a table without loading anything into it.
MAINTENANCE_OPERATIONS = {"OPTIMIZE", "VACUUM START", "VACUUM END", "SET TBLPROPERTIES"}
HISTORY_LOOKED_AT = 50
RECENT = timedelta(days=1)
# A check's latest outcome, in the order ``status`` lists them.
PASSED, FAILED, RUNNING, NOT_RUN = "passed", "failed", "pending", "not run"


@dataclass
class TableStatus:
    table: str
    rows: int | None = None  # None: no Delta table yet
    last_load: datetime | None = None  # the newest commit that loaded something
    waiting: int = 0  # files in the dataset's raw folder
    oldest_waiting: datetime | None = None
    rejected_files: int = 0  # whole files rejected in the last day
    rejected_rows: int = 0  # rows rejected in the last day
    attempts: dict[str, int] = field(default_factory=dict)  # last day's attempts by outcome
    checks: dict[str, str] = field(default_factory=dict)  # check -> PASSED, FAILED, ...
    dataset: bool = False  # a dataset's table (files land for it), not a KPI's or the history

    def summary(self, now: datetime) -> str:
        if self.rows is None:
            loaded = "no table yet"
        else:
            when = (
                f"{self.last_load:%Y-%m-%d %H:%M} UTC ({_age(now - self.last_load)} ago)"
                if self.last_load
                else "never"
            )
            loaded = f"{self.rows:,} rows, last load {when}"
        waiting = f"{self.waiting} file(s) waiting in raw/"
        if self.oldest_waiting is not None:
            waiting += f" (lag: the oldest landed {_age(now - self.oldest_waiting)} ago)"
        rejected = (
            f"rejected in the last day: {self.rejected_files} file(s), {self.rejected_rows} row(s)"
        )
        if self.attempts:
            said = ", ".join(f"{n} {outcome}" for outcome, n in sorted(self.attempts.items()))
            rejected += f" (attempts: {said})"
        parts = [loaded, waiting, rejected] if self.dataset else [loaded]
        if self.checks:
            parts.append("checks: " + _checks(self.checks))
        return f"{self.table}: " + "; ".join(parts)


def freshness_now(status: TableStatus, freshness: timedelta, now: datetime) -> str:
    """What the table's freshness check says now (its last load within ``freshness``): the
    instance's record of it is as old as the sensor's last look, which may predate a load."""
    fresh = status.last_load is not None and now - status.last_load <= freshness
    return PASSED if fresh else FAILED


def table_status(lake: Lake, spec: TableSpec, now: datetime | None = None) -> TableStatus:
    now = now or datetime.now(UTC)
    status = TableStatus(spec.name)
    try:
        uri = lake.url(layout.table_path(spec.name))
        table = DeltaTable(uri, storage_options=lake.storage_options())
    except TableNotFoundError:
        table = None
    if table is not None:
        actions = pa.table(table.get_add_actions(flatten=True))
        status.rows = int(pc.sum(actions.column("num_records")).as_py() or 0)
        status.last_load = _last_load(table)
    if not isinstance(spec, DatasetContract):
        return status
    contract, status.dataset = spec, True
    waiting = list(lake.list(layout.raw_key(contract.raw_folder + "/")))
    status.waiting = len(waiting)
    status.oldest_waiting = min((info.last_modified for info in waiting), default=None)
    columns = ["file", "status", "rows_rejected"]
    recent = attempts_of(lake, spec.name, columns, when="loaded_at", start=now - RECENT)
    if recent is not None:
        statuses = recent.column("status").to_pylist()
        files = recent.column("file").to_pylist()
        status.attempts = dict(Counter(statuses))
        status.rejected_files = len(
            {f for f, s in zip(files, statuses, strict=True) if s == REJECTED}
        )
        status.rejected_rows = int(pc.sum(recent.column("rows_rejected")).as_py() or 0)
    return status


def _last_load(table: DeltaTable) -> datetime | None:
    for commit in table.history(HISTORY_LOOKED_AT):
        if commit.get("operation") not in MAINTENANCE_OPERATIONS and "timestamp" in commit:
            return datetime.fromtimestamp(commit["timestamp"] / 1000, UTC)
    return None


def _checks(outcomes: dict[str, str]) -> str:
    """``2 passed, 1 running (freshness_check)``: passed ones counted, the others named."""
    said = []
    for outcome in (PASSED, FAILED, RUNNING, NOT_RUN):
        names = sorted(n for n, o in outcomes.items() if o == outcome)
        if names:
            named = "" if outcome == PASSED else f" ({', '.join(names)})"
            said.append(f"{len(names)} {outcome}{named}")
    return ", ".join(said)


def _age(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"
