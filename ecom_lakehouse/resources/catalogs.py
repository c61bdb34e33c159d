"""The catalog analysts query: a DuckDB file locally, the Glue Data Catalog in AWS.

Each implementation registers a dataset's Delta table and opens a DuckDB connection in which
every registered table is a view (what ``ecom-lakehouse query`` uses).
"""

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from ecom_lakehouse.contracts import DatasetContract, TableSpec
from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.core.sql import duckdb_catalog, duckdb_sql
from ecom_lakehouse.resources.aws import aws_client

# Glue entries Athena engine v3 reads as native Delta tables; the columns mirror the Delta log
# so Lake Formation, views and column filters also work.
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
DELTA_PARAMETERS = {
    "table_type": "DELTA",
    "classification": "delta",
    "spark.sql.sources.provider": "delta",
    "EXTERNAL": "TRUE",
}


class Catalog(dg.ConfigurableResource, ABC):
    """Where analysts find the tables: registers a dataset's Delta table, and opens a DuckDB
    connection in which every registered table is a view (``ecom-lakehouse query``)."""

    @abstractmethod
    def register(self, lake: Lake, spec: TableSpec, every: Sequence[TableSpec]) -> dict[str, Any]:
        """Create or refresh the table's entry (among ``every`` table's: a catalog made whole
        is remade from them all); returns what was done, as metadata."""

    @abstractmethod
    def connect_for_query(self, lake: Lake) -> duckdb.DuckDBPyConnection: ...


class DuckDbCatalog(Catalog):
    """The local catalog: a DuckDB file of views, rebuilt whole and swapped in atomically; in
    the lake (``catalog/lakehouse.duckdb``) unless ``path`` puts it elsewhere."""

    path: str | None = None

    def _path(self) -> Path | None:
        return Path(self.path) if self.path else None

    def register(self, lake: Lake, spec: TableSpec, every: Sequence[TableSpec]) -> dict[str, Any]:
        entries = duckdb_catalog.rebuild_catalog(lake, every, self._path())
        mine = [e.name for e in entries if e.name in (spec.name, f"rejected_{spec.name}")]
        return {
            "catalog": duckdb_catalog.catalog_location(lake, self._path()),
            "views": ", ".join(mine) or "(none)",
        }

    def connect_for_query(self, lake: Lake) -> duckdb.DuckDBPyConnection:
        return duckdb_catalog.open_catalog(lake, self._path())


class GlueCatalog(Catalog):
    database: str
    endpoint_url: str | None = None
    region: str | None = None

    def _glue(self) -> Any:
        return aws_client("glue", self.endpoint_url, self.region)

    def table_input(self, lake: Lake, spec: TableSpec) -> dict[str, Any]:
        """The Glue entry of a table (Athena reads the schema from the Delta log; Trino too)."""
        location = lake.url(layout.table_path(spec.name)) + "/"
        glue = {c.name: {"Name": c.name, "Type": c.glue_type, "Comment": c.description}
                for c in spec.table_columns}  # fmt: skip
        partition_keys = [glue.pop(spec.partition_by)] if spec.partition_by else []
        columns = list(glue.values())
        return {
            "Name": spec.name,
            "Description": glue_description(spec),
            "TableType": "EXTERNAL_TABLE",
            "Parameters": DELTA_PARAMETERS,
            "PartitionKeys": partition_keys,
            "StorageDescriptor": {
                "Columns": columns,
                "Location": location,
                "InputFormat": PARQUET_INPUT,
                "OutputFormat": PARQUET_OUTPUT,
                "SerdeInfo": {
                    "SerializationLibrary": PARQUET_SERDE,
                    "Parameters": {"path": location},
                },
            },
        }

    def register(self, lake: Lake, spec: TableSpec, every: Sequence[TableSpec]) -> dict[str, Any]:
        """Create the database if missing; create the table, or update it when its location,
        columns or partition keys differ from the spec's."""
        glue = self._glue()
        with contextlib.suppress(glue.exceptions.AlreadyExistsException):
            glue.create_database(DatabaseInput={"Name": self.database})
        wanted = self.table_input(lake, spec)
        action = self._create_or_update(glue, wanted)
        return {
            "glue_database": self.database,
            "glue_table": spec.name,
            "location": wanted["StorageDescriptor"]["Location"],
            "action": action,
        }

    def _create_or_update(self, glue: Any, wanted: dict[str, Any]) -> str:
        """Concurrent writers register the same table: a create that loses the race to another
        writer's create falls back to comparing (and updating) the entry that writer made."""
        try:
            current = glue.get_table(DatabaseName=self.database, Name=wanted["Name"])["Table"]
        except glue.exceptions.EntityNotFoundException:
            try:
                glue.create_table(DatabaseName=self.database, TableInput=wanted)
                return "created"
            except glue.exceptions.AlreadyExistsException:
                current = glue.get_table(DatabaseName=self.database, Name=wanted["Name"])["Table"]
        if _same_entry(current, wanted):
            return "unchanged"
        glue.update_table(DatabaseName=self.database, TableInput=wanted)
        return "updated"

    def connect_for_query(self, lake: Lake) -> duckdb.DuckDBPyConnection:
        """DuckDB with a view per Delta table registered in the Glue database."""
        con = duckdb_sql.connect(lake)
        paginator = self._glue().get_paginator("get_tables")
        for page in paginator.paginate(DatabaseName=self.database):
            for table in page["TableList"]:
                if table.get("Parameters", {}).get("table_type", "").upper() != "DELTA":
                    continue
                location = table["StorageDescriptor"]["Location"].rstrip("/")
                con.execute(
                    f'CREATE OR REPLACE TEMP VIEW "{table["Name"]}" AS '
                    f"SELECT * FROM delta_scan('{location}')"
                )
        return con


def _same_entry(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    def shape(entry: dict[str, Any]) -> tuple:
        sd = entry.get("StorageDescriptor", {})
        return (
            sd.get("Location"),
            [(c["Name"], c["Type"]) for c in sd.get("Columns", [])],
            [(c["Name"], c["Type"]) for c in entry.get("PartitionKeys", [])],
            {k: entry.get("Parameters", {}).get(k) for k in DELTA_PARAMETERS},
        )

    return shape(current) == shape(wanted)


def glue_description(spec: TableSpec) -> str:
    """The table's description, with its primary key where it has one (a dataset's)."""
    key = spec.key_label if isinstance(spec, DatasetContract) else None
    return f"{spec.description} Primary key: {key}." if key else spec.description
