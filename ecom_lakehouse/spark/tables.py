"""Where the Spark job commits: Delta Lake through Spark SQL (Glue 5 / EMR 7, which ship the
Delta jars; the tests give local Spark the same versions), or delta-rs from the driver where a
Spark has no Delta jars. Both give the local engine's outcome and run the same checks
(``ecom_lakehouse_tests/test_engines.py`` holds them to the same table).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema

from ecom_lakehouse.contracts import SOURCE_FILE, Column, DatasetContract
from ecom_lakehouse.core.lake.uploads import Upload
from ecom_lakehouse.core.tables.evolution import TABLE_PROPERTIES, TABLE_PROTOCOL, columns_to_add
from ecom_lakehouse.core.tables.merge_spec import MergeOutcome, merge_statement
from ecom_lakehouse.spark.batch import ddl, key_range

# Delta Lake's idempotent writes for SQL DML: a commit carrying an (app id, version) at or below
# the one recorded in the table is skipped.
TXN_APP_ID = "spark.databricks.delta.write.txnAppId"
TXN_VERSION = "spark.databricks.delta.write.txnVersion"
SOURCE_VIEW = "ecom_lakehouse_batch"


def _properties(properties: Mapping[str, str]) -> str:
    return ", ".join(f"'{k}' = '{v}'" for k, v in properties.items())


def create_table_statement(contract: DatasetContract, ref: str) -> str:
    partitioned = f" PARTITIONED BY ({contract.partition_by})" if contract.partition_by else ""
    return (
        f"CREATE TABLE IF NOT EXISTS {ref} ({ddl(contract)}) USING DELTA{partitioned}"
        f" TBLPROPERTIES ({_properties({**TABLE_PROTOCOL, **TABLE_PROPERTIES})})"
    )


def add_columns_statement(ref: str, columns: Sequence[Column]) -> str:
    added = ", ".join(f"`{c.name}` {c.glue_type}" for c in columns)
    return f"ALTER TABLE {ref} ADD COLUMNS ({added})"


def evolve_table(spark: SparkSession, contract: DatasetContract, ref: str) -> list[Column]:
    """The columns the contract gained, added to the table, and the properties every table has,
    set where missing (as delta-rs does); a changed type refused (``core/tables/evolution.py``).
    Returns the columns added."""
    present = {f.name: f.dataType.simpleString() for f in spark.sql(f"SELECT * FROM {ref}").schema}
    missing = columns_to_add(
        contract.name,
        contract.table_columns,
        present,
        lambda: bool(spark.sql(f"SELECT 1 FROM {ref} LIMIT 1").take(1)),
    )
    if missing:
        spark.sql(add_columns_statement(ref, missing))
    configured = {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES {ref}").collect()}
    unset = {k: v for k, v in TABLE_PROPERTIES.items() if configured.get(k) != v}
    if unset:  # a table another engine (or an older version) made without them
        spark.sql(f"ALTER TABLE {ref} SET TBLPROPERTIES ({_properties(unset)})")
    return missing


def as_arrow(frame: DataFrame) -> pa.Table:
    """A DataFrame's rows as Arrow: Spark 3.5 (Glue 5) has no ``DataFrame.toArrow`` (4.0 does);
    its Arrow collect is what ``toPandas`` uses."""
    batches = frame._collect_as_arrow()
    return pa.Table.from_batches(batches, schema=None if batches else to_arrow_schema(frame.schema))


def _first(frame: DataFrame) -> int:
    """The first column of a one-row count."""
    row = frame.first()
    if row is None:
        raise ValueError("the query returned no row")
    return int(row[0])


class Tables(Protocol):
    def row_count(self, contract: DatasetContract) -> int: ...

    def merge(
        self, contract: DatasetContract, batch: DataFrame, uploads: Sequence[Upload]
    ) -> MergeOutcome: ...

    def table_ref(self, dataset: str) -> str: ...  # how the checks' SQL names a table

    def scalar(self, sql: str) -> int: ...  # a check's one number


class SparkDeltaTables:
    """Delta Lake through Spark SQL: ``delta.`<uri>``` tables, a MERGE with the upload's txn."""

    def __init__(self, spark: SparkSession, table_uri: Callable[[str], str]) -> None:
        self.spark = spark
        self.table_uri = table_uri
        self._ready: set[str] = set()  # tables created and evolved by this job

    def _ref(self, dataset: str) -> str:
        return f"delta.`{self.table_uri(dataset)}`"

    def _create(self, contract: DatasetContract) -> None:
        """Once per table and job: a load asks before, during and after its MERGE."""
        if contract.name in self._ready:
            return
        self.spark.sql(create_table_statement(contract, self._ref(contract.name)))
        evolve_table(self.spark, contract, self._ref(contract.name))
        self._ready.add(contract.name)

    def _last_commit(self, contract: DatasetContract) -> dict:
        row = self.spark.sql(f"DESCRIBE HISTORY {self._ref(contract.name)} LIMIT 1").first()
        return row.asDict() if row else {}

    def row_count(self, contract: DatasetContract) -> int:
        self._create(contract)
        return _first(self.spark.sql(f"SELECT count(*) FROM {self._ref(contract.name)}"))

    def merge(
        self, contract: DatasetContract, batch: DataFrame, uploads: Sequence[Upload]
    ) -> MergeOutcome:
        """One MERGE per upload, each carrying that upload's txn: Delta Spark's SQL writes take
        one application transaction per commit (delta-rs commits a batch at once)."""
        self._create(contract)
        inserted = updated = stale = 0
        version, before = 0, []
        for upload in uploads:
            rows = batch.where(F.col(SOURCE_FILE) == upload.file_key)
            committed, outcome = self._merge_upload(contract, rows, upload)
            version = outcome.table_version
            inserted, updated, stale = (
                inserted + outcome.inserted,
                updated + outcome.updated,
                stale + outcome.stale,
            )
            if committed:
                before.append(upload.file_key)
        return MergeOutcome(inserted, updated, stale, version, tuple(before))

    def _merge_upload(
        self, contract: DatasetContract, rows: DataFrame, upload: Upload
    ) -> tuple[bool, MergeOutcome]:
        before = self._last_commit(contract).get("version")
        rows.createOrReplaceTempView(SOURCE_VIEW)
        self.spark.conf.set(TXN_APP_ID, upload.txn_app_id(contract.name))
        self.spark.conf.set(TXN_VERSION, str(upload.txn_version))
        try:
            self.spark.sql(
                merge_statement(
                    contract, self._ref(contract.name), SOURCE_VIEW, key_range(rows, contract)
                )
            )
        finally:
            self.spark.conf.unset(TXN_APP_ID)
            self.spark.conf.unset(TXN_VERSION)
        commit = self._last_commit(contract)
        if commit.get("version") == before:  # skipped: this upload's txn was in the table
            return True, MergeOutcome(0, 0, 0, int(before or 0))
        metrics = commit.get("operationMetrics") or {}
        inserted = int(metrics.get("numTargetRowsInserted", 0))
        updated = int(metrics.get("numTargetRowsUpdated", 0))
        source_rows = int(metrics.get("numSourceRows", 0))
        stale = source_rows - inserted - updated
        return False, MergeOutcome(inserted, updated, stale, int(commit["version"]))

    def table_ref(self, dataset: str) -> str:
        return self._ref(dataset)

    def scalar(self, sql: str) -> int:
        return _first(self.spark.sql(sql))


class DeltaRsTables:
    """delta-rs from the driver, with the checks' SQL on DuckDB: the local engine's own code,
    for where the Delta jars are not on the classpath. Its imports are local: a Glue or EMR
    image that commits with Spark need not have deltalake or DuckDB."""

    def __init__(self, lake_uri: str) -> None:
        from ecom_lakehouse.core.lake.storage import Lake

        self.lake = Lake(lake_uri)

    def _uri(self, contract: DatasetContract) -> str:
        from ecom_lakehouse.core.lake import layout

        return self.lake.url(layout.table_path(contract.name))

    def row_count(self, contract: DatasetContract) -> int:
        from ecom_lakehouse.core.tables.delta import table_row_count

        return table_row_count(self._uri(contract), self.lake.storage_options()) or 0

    def merge(
        self, contract: DatasetContract, batch: DataFrame, uploads: Sequence[Upload]
    ) -> MergeOutcome:
        from ecom_lakehouse.core.tables.delta import merge_batch

        return merge_batch(contract, self.lake, as_arrow(batch), uploads)

    def table_ref(self, dataset: str) -> str:
        from ecom_lakehouse.core.sql.duckdb_sql import delta_scan

        return delta_scan(self.lake, dataset)

    def scalar(self, sql: str) -> int:
        from ecom_lakehouse.core.sql.duckdb_sql import scalar

        return scalar(self.lake, sql)
