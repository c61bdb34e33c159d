"""The Spark job's batch logic: validated rows read, cast, checked and de-duplicated by the
dataset's contract, exactly as the local engine would load them.

Input is a validated batch the ``<dataset>_validated`` asset wrote: the typed rows of its files
(one row per key within a file), each with where it came from (the audit columns), and a
manifest of the batch's uploads. Across the files of a batch a key takes the newest values (the
contract's sequence, then the later upload), as loading the files one after another would, in
any order.
"""

from __future__ import annotations

import json

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from ecom_lakehouse.contracts import LOADED_AT, SOURCE_FILE, SOURCE_VERSION, DatasetContract
from ecom_lakehouse.core.lake.uploads import Upload
from ecom_lakehouse.core.tables.merge_spec import KeyRange

FILE_ROW = "_file_row"


class BatchRejected(Exception):
    """Rows that should have been rejected by validation reached the Spark job."""


def ddl(contract: DatasetContract) -> str:
    """The table's schema as Spark DDL (Glue/Hive types are Spark SQL types)."""
    return ", ".join(f"`{c.name}` {c.glue_type}" for c in contract.table_columns)


def read_validated(spark: SparkSession, uri: str) -> DataFrame:
    """A validated batch's rows, numbered in file order (one file's row groups are read in
    order)."""
    return spark.read.parquet(uri).withColumn(FILE_ROW, F.monotonically_increasing_id())


def read_uploads(spark: SparkSession, manifest_uri: str) -> list[Upload]:
    """The uploads a validated batch's manifest lists (JSON lines)."""
    text = spark.read.text(manifest_uri).collect()
    return [Upload.from_dict(json.loads(row.value)) for row in text if row.value.strip()]


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
        # a batch validated before the contract gained a column reads NULL there
        *(
            (F.col(c.name) if c.name in batch.columns else F.lit(None))
            .cast(c.glue_type)
            .alias(c.name)
            for c in contract.validated_columns
        ),
        SOURCE_FILE,
        SOURCE_VERSION,
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
        *(F.col(c).desc_nulls_last() for c in contract.sequence_by),
        F.col(SOURCE_VERSION).desc(),
        F.col(SOURCE_FILE).desc(),
        F.col(FILE_ROW).desc(),
    ]
    latest = Window.partitionBy(*contract.key_columns).orderBy(*order)
    return (
        typed.withColumn("_rank", F.row_number().over(latest))
        .where(F.col("_rank") == 1)
        .withColumn(LOADED_AT, F.current_timestamp())
        .select(*(c.name for c in contract.table_columns))
    )


def key_range(batch: DataFrame, contract: DatasetContract) -> KeyRange | None:
    """The batch's key range for keys with exact statistics (numbers, dates), as delta-rs
    spells it into its MERGE (``core/tables/delta.py``)."""
    key = contract.column(contract.key_columns[0])  # a composite key: its first column prunes
    if key.type not in ("bigint", "int", "date"):
        return None
    row = batch.agg(F.min(key.name), F.max(key.name)).first()
    if row is None or row[0] is None:
        return None
    return KeyRange(row[0], row[1])
