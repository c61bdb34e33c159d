"""Where KPI rows go besides their Delta table: DynamoDB in AWS (a shop reads them in real
time), nowhere locally.

A refresh tells the sink the rows it recomputed that are new or changed, and the keys of rows
it removed (a day that lost its last order), before it commits; a crash before the commit
pushes the same rows again, which changes nothing.
"""

from __future__ import annotations

import random
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import dagster as dg
import pyarrow as pa

from ecom_lakehouse.contracts import KpiTable
from ecom_lakehouse.resources.aws import aws_client

BATCH_ITEMS = 25  # what BatchWriteItem takes at most


class KpiSink(dg.ConfigurableResource, ABC):
    @abstractmethod
    def push(self, kpi: KpiTable, upserts: pa.Table, deletes: pa.Table) -> dict[str, object]:
        """Write ``upserts`` and remove ``deletes``; returns what was done, as metadata."""


class NoKpiSink(KpiSink):
    """The local default: the Delta table is where KPIs are read."""

    def push(self, kpi: KpiTable, upserts: pa.Table, deletes: pa.Table) -> dict[str, object]:
        return {}


class KpiPushFailed(Exception):
    pass


def dynamodb_value(value: object) -> object:
    """A KPI value as DynamoDB stores it: days as ``YYYY-MM-DD``, numbers as numbers."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


class DynamoDbKpiSink(KpiSink):
    """KPI rows upserted into DynamoDB tables (one per KPI table, keyed like it), in batches;
    unprocessed items retried with backoff, a bounded number of times."""

    tables: dict[str, str]  # KPI table -> DynamoDB table
    endpoint_url: str | None = None
    region: str | None = None
    max_attempts: int = 8

    def client(self) -> Any:
        return aws_client("dynamodb", self.endpoint_url, self.region)

    def push(self, kpi: KpiTable, upserts: pa.Table, deletes: pa.Table) -> dict[str, object]:
        table = self.tables.get(kpi.name)
        if table is None:
            return {}
        from boto3.dynamodb.types import TypeSerializer  # boto3 only where AWS is used

        serialize = TypeSerializer().serialize
        requests = [
            {"PutRequest": {"Item": {k: serialize(dynamodb_value(v)) for k, v in row.items()}}}
            for row in upserts.select(list(kpi.column_names)).to_pylist()
        ] + [
            {"DeleteRequest": {"Key": {k: serialize(dynamodb_value(v)) for k, v in row.items()}}}
            for row in deletes.select(list(kpi.key)).to_pylist()
        ]
        client = self.client()
        retries = sum(self._write(client, table, batch) for batch in _batches(requests))
        return {
            "dynamodb_table": table,
            "dynamodb_items_written": upserts.num_rows,
            "dynamodb_items_deleted": deletes.num_rows,
            "dynamodb_retries": retries,
        }

    def _write(self, client: Any, table: str, requests: list[dict]) -> int:
        """One batch, retrying what DynamoDB leaves unprocessed; returns the retries made."""
        pending = {table: requests}
        for attempt in range(self.max_attempts):
            unprocessed = client.batch_write_item(RequestItems=pending).get("UnprocessedItems")
            if not unprocessed:
                return attempt
            pending = unprocessed
            time.sleep(min(5.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.5))
        left = sum(len(v) for v in pending.values())
        raise KpiPushFailed(
            f"{table}: {left} items still unprocessed after {self.max_attempts} attempts "
            "(throttled); the KPI table was not committed: the next refresh pushes them again"
        )


def _batches(requests: Sequence[dict]) -> Iterator[list[dict]]:
    for start in range(0, len(requests), BATCH_ITEMS):
        yield list(requests[start : start + BATCH_ITEMS])
