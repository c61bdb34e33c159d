"""The Spark job's batch logic: validated rows read, cast, checked and de-duplicated by the
dataset's contract, exactly as the local engine would load them.

Input is the validated Parquet the ``<dataset>_validated`` asset wrote (typed, one row per key
within a file). Several files may be loaded in one batch (a backfill): a key takes its values
from the latest upload, as loading the files one after another in upload order would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from ecom_lakehouse.contracts import DatasetContract

UPLOAD_VERSION = "_upload_version"
FILE_ROW = "_file_row"


class BatchRejected(Exception):
    """Rows that should have been rejected by validation reached the Spark job."""


@dataclass(frozen=True)
class ValidatedInput:
    uri: str  # the validated Parquet of one upload
    upload_version: int  # its last-modified time in ms: a later upload wins a key


def ddl(contract: DatasetContract) -> str:
    """The contract's schema as Spark DDL (Glue/Hive types are Spark SQL types)."""
    return ", ".join(f"`{c.name}` {c.glue_type}" for c in contract.columns)


def read_validated(spark: SparkSession, inputs: Sequence[ValidatedInput]) -> DataFrame:
    frames = [
        spark.read.parquet(item.uri)
        .withColumn(UPLOAD_VERSION, F.lit(item.upload_version).cast("bigint"))
        # increasing in file order: one file's row groups are read in order
        .withColumn(FILE_ROW, F.monotonically_increasing_id())
        for item in inputs
    ]
    batch = frames[0]
    for frame in frames[1:]:
        batch = batch.unionByName(frame)
    return batch


def _broken(contract: DatasetContract) -> list[Column]:
    """One count per broken contract promise: required values, then business rules."""
    counts = [
        F.sum(F.when(F.col(c.name).isNull(), 1).otherwise(0)).alias(f"{c.name}: required")
        for c in contract.columns
        if c.required
    ]
    counts += [
        F.sum(F.when(~F.coalesce(F.expr(rule.sql), F.lit(True)), 1).otherwise(0)).alias(
            f"rule {rule.name}"
        )
        for rule in contract.rules
    ]
    return counts


def prepare(batch: DataFrame, contract: DatasetContract) -> DataFrame:
    """The rows to merge: in the contract's types, one per key.

    Validated rows have passed every rule; one that breaks a rule here means the input is not
    what validation wrote, so the batch fails whole with the counts, and nothing is dropped."""
    typed = batch.select(
        *(F.col(c.name).cast(c.glue_type).alias(c.name) for c in contract.columns),
        UPLOAD_VERSION,
        FILE_ROW,
    )
    counts = typed.agg(*_broken(contract)).first()
    broken = {name: n for name, n in (counts.asDict() if counts else {}).items() if n}
    if broken:
        raise BatchRejected(
            f"{contract.name}: {sum(broken.values())} validated rows break the contract "
            f"({', '.join(f'{k}: {v}' for k, v in broken.items())}); validate the files again"
        )
    order = [
        F.col(UPLOAD_VERSION).desc(),
        *(F.col(c).desc_nulls_last() for c in contract.dedup_order),
        F.col(FILE_ROW).desc(),
    ]
    latest = Window.partitionBy(contract.primary_key).orderBy(*order)
    return (
        typed.withColumn("_rank", F.row_number().over(latest))
        .where(F.col("_rank") == 1)
        .select(*contract.column_names)
    )


def partition_values(batch: DataFrame, contract: DatasetContract) -> list[object]:
    if not contract.partition_by:
        return []
    rows = batch.select(contract.partition_by).distinct().collect()
    return [row[0] for row in rows]
