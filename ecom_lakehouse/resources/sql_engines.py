"""Where the asset checks' SQL runs: DuckDB over the Delta tables locally, Athena in AWS.

Both take the same SQL from ``checks.py``; only the way a table is named differs.
"""

import time
from abc import ABC, abstractmethod

import dagster as dg

from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.core.sql import duckdb_sql
from ecom_lakehouse.core.sql.checks import SqlError
from ecom_lakehouse.resources.aws import aws_client


class SqlEngine(dg.ConfigurableResource, ABC):
    """Runs the asset checks' SQL: how a table is named, and a one-number query."""

    @abstractmethod
    def table_ref(self, lake: Lake, dataset: str) -> str: ...

    @abstractmethod
    def scalar(self, lake: Lake, sql: str) -> int:
        """The query's one number; raises SqlError when the query fails."""


class DuckDbSqlEngine(SqlEngine):
    """DuckDB, reading the Delta tables straight from the lake."""

    def table_ref(self, lake: Lake, dataset: str) -> str:
        return duckdb_sql.delta_scan(lake, dataset)

    def scalar(self, lake: Lake, sql: str) -> int:
        return duckdb_sql.scalar(lake, sql)


class AthenaSqlEngine(SqlEngine):
    """Athena (engine v3) over the Glue tables, in a workgroup with a result location."""

    database: str
    workgroup: str = "primary"
    output_location: str | None = None  # default: <lake>/athena-query-results/
    endpoint_url: str | None = None
    region: str | None = None
    poll_seconds: float = 0.5
    timeout_seconds: float = 300

    def table_ref(self, lake: Lake, dataset: str) -> str:
        return f'"{self.database}"."{dataset}"'

    def scalar(self, lake: Lake, sql: str) -> int:
        athena = aws_client("athena", self.endpoint_url, self.region)
        output = self.output_location or lake.url("athena-query-results/")
        execution_id = athena.start_query_execution(
            QueryString=sql,
            QueryExecutionContext={"Database": self.database},
            WorkGroup=self.workgroup,
            ResultConfiguration={"OutputLocation": output},
        )["QueryExecutionId"]
        deadline = time.monotonic() + self.timeout_seconds
        while True:
            status = athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"][
                "Status"
            ]
            if status["State"] == "SUCCEEDED":
                break
            if status["State"] in ("FAILED", "CANCELLED"):
                raise SqlError(f"Athena {status['State']}: {status.get('StateChangeReason', '')}")
            if time.monotonic() > deadline:
                athena.stop_query_execution(QueryExecutionId=execution_id)
                raise SqlError(f"Athena query {execution_id} timed out")
            time.sleep(self.poll_seconds)
        rows = athena.get_query_results(QueryExecutionId=execution_id)["ResultSet"]["Rows"]
        # The first row of a SELECT's result set is its header.
        if len(rows) < 2:
            raise SqlError(f"Athena query {execution_id} returned no row")
        return int(rows[1]["Data"][0]["VarCharValue"])
