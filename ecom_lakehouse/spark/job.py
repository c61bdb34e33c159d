"""The Spark job: a validated batch's rows merged into its Delta table, every upload of it
recorded exactly once, reported back to Dagster through Pipes. Run by AWS Glue (the script the
job points at calls ``main``) or EMR Serverless (the same, as the entry point), with this
package on the Python path.

    --dataset orders --lakehouse-uri s3://bucket --batch-id <run id>
    [--tables spark|delta-rs] [--pipes s3|env]

``--pipes s3``: Pipes parameters on the command line, context and messages in S3 (Glue);
``--pipes env``: parameters in environment variables, messages on stdout for CloudWatch (EMR
Serverless). Unknown arguments (Glue adds its own) are ignored.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence

from dagster_pipes import (
    PipesCliArgsParamsLoader,
    PipesContext,
    PipesContextLoader,
    PipesDefaultContextLoader,
    PipesDefaultMessageWriter,
    PipesEnvVarParamsLoader,
    PipesMessageWriter,
    PipesParamsLoader,
    PipesS3ContextLoader,
    PipesS3MessageWriter,
    open_dagster_pipes,
)
from pyspark.sql import SparkSession

from ecom_lakehouse.contracts import CONTRACTS, DatasetContract
from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.core.sql.checks import evaluate_checks, table_checks
from ecom_lakehouse.core.tables.reporting import load_metadata
from ecom_lakehouse.spark.batch import prepare, read_uploads, read_validated
from ecom_lakehouse.spark.tables import DeltaRsTables, SparkDeltaTables, Tables

Transport = tuple[PipesParamsLoader, PipesContextLoader, PipesMessageWriter]


def _s3_transport() -> Transport:
    import boto3

    s3 = boto3.client("s3")
    return (
        PipesCliArgsParamsLoader(),
        PipesS3ContextLoader(s3),
        PipesS3MessageWriter(s3, interval=1),
    )


def _env_transport() -> Transport:
    return PipesEnvVarParamsLoader(), PipesDefaultContextLoader(), PipesDefaultMessageWriter()


PIPES: dict[str, Callable[[], Transport]] = {"s3": _s3_transport, "env": _env_transport}


def _spark_tables(spark: SparkSession, lake_uri: str) -> Tables:
    return SparkDeltaTables(
        spark, lambda dataset: f"{lake_uri.rstrip('/')}/{layout.table_path(dataset)}"
    )


TABLES: dict[str, Callable[[SparkSession, str], Tables]] = {
    "spark": _spark_tables,
    "delta-rs": lambda spark, lake_uri: DeltaRsTables(lake_uri),
}


def parse_args(argv: Sequence[str], datasets: Iterable[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ecom-lakehouse-spark-job", description=__doc__)
    parser.add_argument("--dataset", required=True, choices=sorted(datasets))
    parser.add_argument("--lakehouse-uri", required=True)
    parser.add_argument("--batch-id", required=True)
    parser.add_argument("--tables", default="spark", choices=sorted(TABLES))
    parser.add_argument("--pipes", default="s3", choices=sorted(PIPES))
    args, _ = parser.parse_known_args(argv)
    return args


def load(
    spark: SparkSession, contract: DatasetContract, args: argparse.Namespace, pipes: PipesContext
) -> None:
    """The batch ``args`` names merged into ``contract``'s table, reported through Pipes."""
    lake_uri = args.lakehouse_uri.rstrip("/")
    uploads = read_uploads(
        spark, f"{lake_uri}/{layout.batch_manifest_key(contract.name, args.batch_id)}"
    )
    rows = read_validated(
        spark, f"{lake_uri}/{layout.validated_batch_key(contract.name, args.batch_id)}"
    )
    batch = prepare(rows, contract)
    tables = TABLES[args.tables](spark, lake_uri)
    rows_before = tables.row_count(contract)
    outcome = tables.merge(contract, batch, uploads)
    if outcome.committed_before:
        pipes.log.info(
            f"already committed, not written again: {', '.join(outcome.committed_before)}"
        )
    expected_rows = rows_before + outcome.inserted
    engine = f"spark ({args.tables})"
    pipes.report_asset_materialization(
        metadata=load_metadata(outcome, uploads, engine, tables.row_count(contract))
    )
    for check in evaluate_checks(
        table_checks(contract), tables.scalar, tables.table_ref, expected_rows
    ):
        pipes.report_asset_check(
            check_name=check.name,
            passed=check.passed,
            severity=check.severity,
            metadata=check.metadata,
        )


def main(
    argv: Sequence[str] | None = None, contracts: Mapping[str, DatasetContract] = CONTRACTS
) -> None:
    """The job's entry point: the contracts it knows are the package's (what it shipped)."""
    args = parse_args(sys.argv[1:] if argv is None else argv, contracts)
    params_loader, context_loader, message_writer = PIPES[args.pipes]()
    with open_dagster_pipes(
        params_loader=params_loader, context_loader=context_loader, message_writer=message_writer
    ) as pipes:
        spark = SparkSession.builder.appName(f"ecom-lakehouse {args.dataset}").getOrCreate()
        spark.conf.set("spark.sql.session.timeZone", "UTC")  # the contracts' timestamps are UTC
        load(spark, contracts[args.dataset], args, pipes)


if __name__ == "__main__":
    main()
