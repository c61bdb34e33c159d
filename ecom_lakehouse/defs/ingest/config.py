"""What an ingest run takes: its files (or its landing day's uploads), and its batch."""

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import dagster as dg
from pydantic import Field

from ecom_lakehouse.contracts import DatasetContract
from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.core.tables.history import files_landed_on
from ecom_lakehouse.names import names_of


def landing_days(start: str) -> dg.DailyPartitionsDefinition:
    """The days files land on (UTC), from ``start`` through today."""
    return dg.DailyPartitionsDefinition(start_date=start, end_offset=1, timezone="UTC")


class IngestFiles(dg.Config):
    """What an ingest run takes: the files listed (keys under raw/), else every upload that
    landed on the run's day."""

    files: list[str] = Field(
        default_factory=list,
        description=(
            "Files to take (keys under raw/, e.g. orders/orders_apr_2025.xlsx). Leave empty "
            "to re-process every upload that landed on the partition's day."
        ),
    )
    etags: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "The uploads the sensor started the run for (file -> ETag). A file found loaded, "
            "rejected or replaced by another run is skipped, not processed again. Leave empty "
            "to re-process the files from wherever they are (raw/, archived/ or rejected/)."
        ),
    )


def ingest_run_config(
    contract: DatasetContract, files: Sequence[str], etags: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The run config's ops section of an ingest run that takes ``files`` (with the uploads
    the sensor saw, ``etags``, or none: a re-process of each from wherever it is)."""
    config = IngestFiles(files=list(files), etags=dict(etags or {}))
    validated = names_of(contract).validated.to_python_identifier()
    return {"ops": {validated: {"config": config.model_dump()}}}


def run_files(
    context: dg.AssetExecutionContext, config: IngestFiles, lake: Lake, contract: DatasetContract
) -> list[str]:
    """The files the run takes: its config's, else the uploads that landed on its day."""
    if config.files:
        return config.files
    day = date.fromisoformat(context.partition_key)
    files = files_landed_on(lake, contract, day)
    context.log.info(f"{len(files)} upload(s) of {contract.name} landed on {day}")
    return files


def batch_id(context: dg.AssetExecutionContext) -> str:
    """The run's batch: the same for every step of a run and for its re-executions, which
    pick up what an earlier attempt validated."""
    return context.run.root_run_id or context.run.run_id


def dataset_tags(contract: DatasetContract) -> dict[str, str]:
    """The tags every asset of a dataset carries."""
    return {"dataset": contract.name}
